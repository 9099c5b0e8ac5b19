"""S602 unpermitted-shell-command: a `` !`cmd` `` line that no allowed-tools entry permits."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._permissions import allowed_tools, permits
from tallinn.gates.rules.security._shell import parse
from tallinn.gates.rules.security._source import AuditFile, Kind
from tallinn.library import Severity


@rule("S602", "unpermitted-shell-command", "security", Severity.WARNING,
      "a `` !`command` `` line is not permitted by allowed-tools",
      confidence=Confidence.HIGH)
def unpermitted_shell_command(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    In commands, flags each `` !`cmd` `` line (Claude Code runs it when the command is invoked
    and puts its output in the prompt) whose command no `allowed-tools` entry permits:
    `` !`git status` `` needs `Bash(git status:*)` or `Bash(git status)`. Every command of a
    compound line (`git status && git diff`) must be permitted. Fenced blocks are examples
    and are not read.

    Why is this bad?
    A shell line the command does not declare either fails when the command runs, or,
    when someone widens the permissions to make it work, ends up as unrestricted `Bash`.
    Declaring each command keeps the permission as narrow as the need.

    Example:
    ```markdown
    ---
    description: Summarise my changes
    allowed-tools: Read
    ---
    Changes: !`git diff --stat`
    ```

    Use instead:
    ```markdown
    ---
    description: Summarise my changes
    allowed-tools: Read, Bash(git diff:*)
    ---
    Changes: !`git diff --stat`
    ```

    Fix safety:
    No automatic fix.
    """
    if file.kind is not Kind.COMMAND or not file.bang_commands:
        return
    tools = allowed_tools(file) or ()
    specs = [t.bash for t in tools if t.bash is not None]
    if any(t.unrestricted for t in tools):
        return  # S601 reports the permission itself
    for snippet in file.bang_commands:
        for command in parse(snippet.text).commands():
            text = command.text
            if not text.strip() or any(permits(spec, text) for spec in specs):
                continue
            hint = " ".join(text.split()[:2])
            yield file.finding(
                RULE, snippet.starts[0] - 2,
                f"shell line !`{snippet.text}` runs `{text}`, which no allowed-tools entry "
                f"permits; add Bash({hint}:*)",
            )


RULE = RULES["S602"]
