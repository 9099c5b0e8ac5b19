"""V405 malformed-xml-document: checked when a 2025-format file is read."""

from __future__ import annotations

from tallinn.gates.base import describe
from tallinn.gates.rules.xml._common import GATE
from tallinn.library import Severity
from tallinn.library.legacy import MALFORMED_XML

CODE = MALFORMED_XML

DOC = """
What it does
Checks, in a library in the 2025 Tallinn format, that the XML document a file embeds
(`<command_file>` or `<prompt_component>`, up to its closing tag) is well-formed XML: tags
match and nest, attributes are quoted, comments hold no `--`, every `&` starts an entity.
The first error lxml finds is reported at its file line and column, and the file is left out
of the library.

Why is this bad?
The 2025 tools read the arguments, examples and includes of a command from this document.
When it does not parse, they read nothing, and the file's arguments and includes are lost.

Example
```xml
<prompt_component>
  <step name="Review">
    <description>Check the structure.</description>
</prompt_component>
```

Use instead
```xml
<prompt_component>
  <step name="Review">
    <description>Check the structure.</description>
  </step>
</prompt_component>
```

Fix safety
There is no automatic fix.
"""

RULE = describe(CODE, "The embedded XML document of a 2025-format file is not well-formed",
                GATE, Severity.ERROR, "malformed-xml-document", DOC)
