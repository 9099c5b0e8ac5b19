"""S601 unrestricted-bash: `allowed-tools` lets a command run any shell command."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._permissions import allowed_tools
from tallinn.gates.rules.security._source import AuditFile
from tallinn.library import Severity


@rule("S601", "unrestricted-bash", "security", Severity.ERROR,
      "allowed-tools grants unrestricted Bash", confidence=Confidence.HIGH)
def unrestricted_bash(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags an `allowed-tools` entry that lets the command run any shell command without
    asking: `Bash`, `Bash(*)`, `Bash(:*)`.

    Why is this bad?
    Claude Code runs allowed tools without a confirmation. With unrestricted Bash, one
    injected line in a file the model reads (a README, an issue, a web page) is enough to
    run `curl ... | sh` or delete files, with nobody asked.

    Example:
    ```yaml
    allowed-tools: Read, Grep, Bash
    ```

    Use instead:
    ```yaml
    allowed-tools: Read, Grep, Bash(git diff:*), Bash(pytest:*)
    ```

    Fix safety:
    No automatic fix: list the commands the prompt needs.
    """
    for tool in allowed_tools(file) or ():
        if tool.unrestricted:
            yield file.finding(
                RULE, tool.offset,
                f"allowed-tools entry '{tool.text}' lets the command run any shell command "
                "unasked; allow only the commands it needs, e.g. Bash(git diff:*)",
            )


RULE = RULES["S601"]
