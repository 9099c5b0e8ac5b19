"""S203 world-writable-permissions: `chmod 777` and other modes anyone may write."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity

_OCTAL = re.compile(r"^0*[0-7]?[0-7]{2}[2367]$")
_SYMBOLIC = re.compile(r"^(?P<who>[ugoa]*)(?P<op>[-+=])(?P<perms>[rwxXst]*)$")


@rule("S203", "world-writable-permissions", "security", Severity.WARNING,
      "chmod makes files writable by every user (chmod 777)", confidence=Confidence.HIGH)
def world_writable_permissions(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    In shell blocks and `` !`cmd` `` lines, flags `chmod` with a mode that lets every user
    write: `777`, `-R 777`, `666`, `o+w`, `a+rwx`.

    Why is this bad?
    Any local user or process can then change the files: replace a script that someone
    else runs, or plant code in a directory on a search path. It is the classic "fix" for a
    permission error that opens a hole instead.

    Example:
    ```bash
    chmod -R 777 /srv/app
    ```

    Use instead:
    ```bash
    chown -R app:app /srv/app
    chmod -R u=rwX,go=rX /srv/app
    ```

    Fix safety:
    No automatic fix.
    """
    for snippet, script in file.shell_scripts():
        for command in script.commands():
            if command.name != "chmod":
                continue
            mode = next((a.text for a in command.args
                         if not a.text.startswith("-") or _SYMBOLIC.match(a.text)), None)
            if mode is not None and _world_writable(mode):
                yield file.finding(
                    RULE, snippet.file_offset(command.offset),
                    f"`chmod {mode}` lets every user write; grant only what is needed "
                    "(e.g. 755 for directories, 644 for files)",
                )


def _world_writable(mode: str) -> bool:
    if _OCTAL.match(mode):
        return True
    for clause in mode.split(","):
        match = _SYMBOLIC.match(clause)
        if (match is not None and match["op"] in "+=" and "w" in match["perms"]
                and ("a" in match["who"] or "o" in match["who"])):
            return True
    return False


RULE = RULES["S203"]
