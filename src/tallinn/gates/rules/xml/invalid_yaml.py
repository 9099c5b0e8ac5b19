"""V102 invalid-yaml, checked by the loader; this module adds its fixes."""

from __future__ import annotations

import json
import re

from tallinn.gates.base import describe
from tallinn.gates.rules.xml._common import GATE, offset
from tallinn.library import Diagnostic, Edit, Fix, Library, Severity

CODE = "V102"

DOC = """
What it does
Checks that front matter is valid YAML and a mapping of keys to values. The common mistakes
get a message saying how to fix them: a value containing `: ` (YAML reads a new key), an
`argument-hint` starting with `[` (YAML reads a list), tabs used for indentation.

Why is this bad?
A file whose front matter does not parse is left out of the library. Claude Code and other
tools read the same front matter and may drop the keys silently. The gate still checks the
body's tags, includes and placeholder syntax; what needs the declared arguments (V301,
V302, V203) is checked once the front matter parses.

Example
```yaml
description: Review code: find bugs first
argument-hint: [path] [focus]
```

Use instead
```yaml
description: "Review code: find bugs first"
argument-hint: "[path] [focus]"
```

Fix safety
The fix quotes a one-line value that contains `: ` (or an `argument-hint` starting with
`[`), escaping what must be escaped, so that YAML reads exactly the text that was written;
or it replaces tabs that indent front matter with two spaces each. Front matter is never part
of the rendered prompt, so the fix is safe. It leaves values with a ` #` comment alone.
"""

RULE = describe(CODE, "Front matter is not valid YAML", GATE, Severity.ERROR, "invalid-yaml",
                DOC, fixable=True)

_KEY_VALUE = re.compile(
    r"(?P<lead>[ ]*(?:-[ ]+)?(?P<key>[A-Za-z0-9_][\w-]*):[ ]+)(?P<value>\S.*?)[ ]*$"
)
_TAB_AFTER_KEY = re.compile(r"^([ ]*(?:-[ ]+)?[\w-]+:)\t+")
_NOT_PLAIN = tuple("'\"|>&*!{%@`")


def fix(diagnostic: Diagnostic, text: str, library: Library) -> Fix | None:
    """Given a V102 diagnostic and its file's text, return the fix for it, if there is one."""
    if diagnostic.message.startswith("tabs are not allowed"):
        return replace_tabs(text)
    return quote_value(text, diagnostic.line)


def front_matter_end(text: str) -> int | None:
    """The 1-based line of the `---` closing the front matter, or None."""
    lines = text.split("\n")
    if not lines or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return index + 1
    return None


def quote_value(text: str, line: int) -> Fix | None:
    """Quote the value of the `key: value` front-matter line `line`, if it is safe to."""
    end = front_matter_end(text)
    start = offset(text, line, 1)
    if end is None or start is None or not 1 < line < end:
        return None
    source = text[start : text.find("\n", start)]
    match = _KEY_VALUE.fullmatch(source)
    if match is None:
        return None
    value, key = match.group("value"), match.group("key")
    if value.startswith(_NOT_PLAIN) or " #" in value:
        return None
    if value.startswith("[") and key != "argument-hint" and ": " not in value:
        return None
    if ": " not in value and not value.startswith("["):
        return None
    at = start + match.start("value")
    return Fix(f"quote the value of '{key}'",
               (Edit(at, at + len(value), json.dumps(value, ensure_ascii=False)),))


def replace_tabs(text: str) -> Fix | None:
    """Replace the tabs that indent front matter (or follow `key:`) with spaces."""
    end = front_matter_end(text)
    if end is None:
        return None
    edits: list[Edit] = []
    position = text.find("\n") + 1
    for source in text.split("\n")[1 : end - 1]:
        indent = len(source) - len(source.lstrip(" \t"))
        if "\t" in source[:indent]:
            edits.append(Edit(position, position + indent,
                              source[:indent].replace("\t", "  ")))
        after = _TAB_AFTER_KEY.match(source[indent:])
        if after is not None:
            at = position + indent + len(after.group(1))
            edits.append(Edit(at, position + indent + after.end(), " "))
        position += len(source) + 1
    if not edits:
        return None
    return Fix("indent front matter with spaces instead of tabs", tuple(edits))
