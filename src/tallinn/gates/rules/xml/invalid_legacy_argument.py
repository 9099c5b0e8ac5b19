"""V406 invalid-legacy-argument: checked when a 2025-format file is read."""

from __future__ import annotations

from tallinn.gates.base import describe
from tallinn.gates.rules.xml._common import GATE
from tallinn.library import Severity
from tallinn.library.legacy import INVALID_ARGUMENT

CODE = INVALID_ARGUMENT

DOC = """
What it does
Checks the `<argument>` declarations of a 2025-format command against what Tallinn can
represent: a valid name given once, a known type (`string`, `integer`, `number`,
`boolean`), a default that fits the type, and not both `required="true"` and a default.
What does not fit is adjusted and reported: an unknown type (such as `object`) is read as a
string, an invalid default is left out, a required argument with a default is read as
optional with that default, and an argument with an invalid or repeated name is left out.

Why is this bad?
The declaration says something Tallinn cannot enforce, so the command would accept values
its author did not mean, or refuse values that the 2025 tools accepted.

Example
```xml
<argument name="limit" type="integer" required="false" default="unlimited">
```

Use instead
```xml
<argument name="limit" type="integer" required="false" default="100">
```

Fix safety
There is no automatic fix.
"""

RULE = describe(CODE, "A 2025-format argument declaration cannot be kept as written",
                GATE, Severity.WARNING, "invalid-legacy-argument", DOC)
