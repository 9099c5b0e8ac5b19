"""Reading `allowed-tools` for the permission rules: entries, their places, Bash patterns.

Claude Code's Bash permissions: `Bash` alone allows every command, `Bash(git diff:*)` any
command starting with `git diff`, `Bash(git status)` exactly that command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tallinn.gates.rules.security._source import AuditFile

# The loader's own splitting, so the audit reads allowed-tools exactly as the loader does.
from tallinn.library.loader import split_tools

_BASH = re.compile(r"Bash\s*(?:\((?P<spec>.*)\))?", re.DOTALL)
_EVERYTHING = frozenset({"", "*", ":*", "**", "*:*"})


@dataclass(frozen=True, slots=True)
class Tool:
    """One `allowed-tools` entry and the file offset where it is written."""

    text: str
    offset: int

    @property
    def bash(self) -> str | None:
        """The pattern of a Bash entry (`git diff:*`; `""` for plain `Bash`), else None."""
        match = _BASH.fullmatch(self.text.strip())
        if match is None:
            return None
        return (match["spec"] or "").strip()

    @property
    def unrestricted(self) -> bool:
        spec = self.bash
        return spec is not None and spec.replace(" ", "") in _EVERYTHING


def allowed_tools(file: AuditFile) -> tuple[Tool, ...] | None:
    """The `allowed-tools` entries of a prompt file; None when it has no such key."""
    parsed = file.front_matter
    if parsed is None or "allowed-tools" not in parsed.data:
        return None
    value = parsed.data["allowed-tools"]
    if isinstance(value, str):
        entries = split_tools(value)
    elif isinstance(value, list):
        entries = [str(v).strip() for v in value if str(v).strip()]
    else:
        entries = [str(value)] if value is not None else []
    line, col = parsed.value_marks.get("allowed-tools", (file.body_line, 1))
    cursor = file.offset(line, col)
    tools = []
    for entry in entries:
        found = file.text.find(entry, cursor)
        if found >= 0:
            cursor = found + len(entry)
        tools.append(Tool(entry, found if found >= 0 else cursor))
    return tuple(tools)


def permits(spec: str, command: str) -> bool:
    """Whether the Bash pattern `spec` allows `command` (`git diff:*` allows `git diff x`)."""
    spec = spec.strip()
    if spec.replace(" ", "") in _EVERYTHING:
        return True
    if spec.endswith(":*"):
        prefix = spec[:-2].strip()
    elif spec.endswith("*"):
        prefix = spec[:-1].strip()
    else:
        return " ".join(command.split()) == " ".join(spec.split())
    return command == prefix or command.startswith(prefix + " ") or (
        not spec.endswith(":*") and command.startswith(prefix)
    )
