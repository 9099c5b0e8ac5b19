"""V103 unquoted-argument-hint, checked by the loader; this module adds its fix."""

from __future__ import annotations

from tallinn.gates.base import describe
from tallinn.gates.rules.xml._common import GATE
from tallinn.gates.rules.xml.invalid_yaml import quote_value
from tallinn.library import Diagnostic, Fix, Library, Severity

CODE = "V103"

DOC = """
What it does
Checks that `argument-hint` is a string. Written unquoted, a hint starting with `[` is a
YAML list.

Why is this bad?
Claude Code shows the hint after the slash command; a list is shown wrongly or not at all.

Example
```yaml
argument-hint: [path]
```

Use instead
```yaml
argument-hint: "[path]"
```

Fix safety
The fix quotes the hint exactly as written. Front matter is never part of the rendered
prompt, so the fix is safe.
"""

RULE = describe(CODE, "argument-hint is written as a YAML list", GATE, Severity.ERROR,
                "unquoted-argument-hint", DOC, fixable=True)


def fix(diagnostic: Diagnostic, text: str, library: Library) -> Fix | None:
    """Quote the `argument-hint` value on the diagnostic's line."""
    return quote_value(text, diagnostic.line)
