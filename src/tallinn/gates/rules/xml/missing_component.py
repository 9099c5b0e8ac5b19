"""V201 missing-component, checked by the composer; this module adds its fix."""

from __future__ import annotations

import re

from tallinn.gates.base import describe
from tallinn.gates.rules.xml._common import GATE, offset
from tallinn.library import Diagnostic, Edit, Fix, Library, Severity
from tallinn.library.compose import INCLUDE
from tallinn.library.legacy import component_name, native_include

CODE = "V201"

DOC = """
What it does
Checks that every include names a component of the library (`components/<group>/<name>.md`
is `group/name`), and says when the component exists but could not be loaded.

Why is this bad?
The include cannot be expanded, so the command is left out of the library. In a 2025-format
library these are the dangling includes: the gate counts them, and the distinct components
they name.

Example
```markdown
<include component="components/reporting/findings.md"/>
```

Use instead
```markdown
<include component="reporting/findings"/>
```

Fix safety
When the name is a 2025-style path (`components/group/name.md`) of a component that exists,
the fix writes its native name. The command does not load before the fix, and after it
renders exactly the component the path named, so the fix is safe. Other missing components
have no fix.
"""

RULE = describe(CODE, "An include names a component that does not exist", GATE,
                Severity.ERROR, "missing-component", DOC, fixable=True)

_NAMED = re.compile(r"component '([^']*)'")


def missing_name(diagnostic: Diagnostic) -> str | None:
    """The component a V201 diagnostic names, e.g. `git/commit`."""
    found = _NAMED.search(diagnostic.message)
    return found.group(1) if found else None


def fix(diagnostic: Diagnostic, text: str, library: Library) -> Fix | None:
    """Rewrite `component="components/x/y.md"` as `component="x/y"` when x/y exists."""
    at = offset(text, diagnostic.line, diagnostic.col)
    match = INCLUDE.match(text, at) if at is not None else None
    if match is None:
        return None
    written = match.group(1) if match.group(1) is not None else match.group(2)
    name = component_name(written)
    if name is None or name == written.strip() or name not in library.components:
        return None
    return Fix(f"write the include as {native_include(name)}",
               (Edit(match.start(), match.end(), native_include(name)),))
