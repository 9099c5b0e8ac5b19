"""D104 missing-argument-hint."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.docs._common import DocsCheck, Requirement
from tallinn.library import Command, Severity

CODE = "D104"


@rule(CODE, "missing-argument-hint", "docs", Severity.WARNING,
      "A command that takes arguments has no argument-hint")
def check(command: Command, ctx: DocsCheck) -> Iterator[Requirement]:
    """## What it does
    Checks that a command that takes arguments (declared ones, or `$ARGUMENTS`) has an
    `argument-hint`.

    ## Why is this bad?
    Claude Code shows the hint after the slash command as you type it. Without it a person
    has to open the file to learn what to type after `/review-file`.

    ## Example
    ```yaml
    arguments:
      - name: path
        description: File or folder to review
    ```

    ## Use instead
    ```yaml
    argument-hint: "<path>"
    arguments:
      - name: path
        description: File or folder to review
    ```
    """
    template = ctx.library.templates.get(command.name)
    takes = bool(command.arguments) or (template is not None and template.uses_all_arguments)
    if not takes:
        return
    finding = None
    if not (command.argument_hint or "").strip():
        where = ctx.marks.key("arguments") if command.arguments else ctx.marks.missing
        finding = ctx.finding(
            CODE, f"command '{command.name}' takes arguments but has no 'argument-hint'; "
            f"add one such as argument-hint: \"{_suggest(command)}\"", command, where,
        )
    yield Requirement(CODE, f"{command.name}: argument-hint", finding)


def _suggest(command: Command) -> str:
    """Given arguments `path` (required) and `focus`, return `<path> [focus]`."""
    if not command.arguments:
        return "<text>"
    return " ".join(f"<{a.name}>" if a.required else f"[{a.name}]" for a in command.arguments)
