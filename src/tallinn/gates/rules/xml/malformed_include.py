"""V202 malformed-include, checked by the composer; this module adds its fix."""

from __future__ import annotations

import re

from tallinn.gates.base import describe
from tallinn.gates.rules.xml._common import GATE, offset
from tallinn.library import Diagnostic, Edit, Fix, Library, Severity
from tallinn.library.legacy import component_name, native_include

CODE = "V202"

DOC = """
What it does
Checks that every `<include` in a body is the one include syntax,
`<include component="group/name"/>`, or is escaped as `\\<include` to be literal text.

Why is this bad?
A malformed include would reach the model as literal markup instead of the component, so the
command is left out of the library.

Example
```markdown
<include>components/reporting/findings.md</include>
```

Use instead
```markdown
<include component="reporting/findings"/>
```

Fix safety
The fix rewrites a 2025-style include, `<include>components/group/name.md</include>`, as
`<include component="group/name"/>`. It is safe when that component exists: the command
does not load before the fix, and after it renders exactly the component the 2025 include
named. When the component does not exist the fix is unsafe, since it only trades this error
for a missing component.
"""

RULE = describe(CODE, "An include is malformed", GATE, Severity.ERROR, "malformed-include",
                DOC, fixable=True)

_ELEMENT = re.compile(r"<include>\s*([^<>\s]+)\s*</include>")


def fix(diagnostic: Diagnostic, text: str, library: Library) -> Fix | None:
    """Rewrite the 2025-style include at the diagnostic's position, if it is one."""
    at = offset(text, diagnostic.line, diagnostic.col)
    match = _ELEMENT.match(text, at) if at is not None else None
    name = component_name(match.group(1)) if match is not None else None
    if match is None or name is None:
        return None
    return Fix(f"write the include as {native_include(name)}",
               (Edit(match.start(), match.end(), native_include(name)),),
               safe=name in library.components)
