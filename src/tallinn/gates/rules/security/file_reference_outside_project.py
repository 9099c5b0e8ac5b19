"""S603 file-reference-outside-project: `@/etc/passwd`, `@~/.ssh/id_rsa`, `@../x`."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

_REFERENCE = re.compile(r"(?<![\w.@/\\+-])@(?P<path>[^\s`'\"<>()\[\]{},;|*]+)")
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@rule("S603", "file-reference-outside-project", "security", Severity.ERROR,
      "an @file reference points outside the project", confidence=Confidence.HIGH)
def file_reference_outside_project(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags Claude Code file references (`@path`, which put the file's contents into the
    prompt) that point outside the project: absolute paths (`@/etc/passwd`, `@C:\\x`) and
    home paths (`@~/.ssh/id_rsa`) are high, paths that climb out with `..` (`@../x`)
    medium. E-mail addresses, `@handles`, code spans and fenced blocks are not read.

    Why is this bad?
    A command is run in many projects by many people; a reference outside the project reads
    whatever that path holds on their machine, credentials included, and sends it to the
    model.

    Example:
    ```markdown
    Compare with our shared settings in @~/.config/team/settings.json.
    ```

    Use instead:
    Reference files inside the project (`@docs/settings.md`), or take the path as an
    argument.

    Fix safety:
    No automatic fix.
    """
    if not file.is_prompt or "@" not in file.text:
        return
    for number, line in file.prose_lines():
        if "@" not in line:
            continue
        base = file.line_starts[number - 1]
        for match in _REFERENCE.finditer(line):
            path = match["path"].rstrip(".,:;!?")
            where = _outside(path)
            if where is None or file.in_code(base + match.start()):
                continue
            severity = Severity.WARNING if where == "outside the project" else Severity.ERROR
            yield file.finding(
                RULE, base + match.start(),
                f"file reference @{path} reads {where}; reference files inside the project",
                severity=severity,
            )


def _outside(path: str) -> str | None:
    if path.startswith("~"):
        return "from the user's home directory"
    if path.startswith("/") or _DRIVE.match(path):
        return "an absolute path"
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        return "outside the project"
    return None


RULE = RULES["S603"]
