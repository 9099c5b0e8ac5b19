"""D101 short-command-description."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.docs._common import DocsCheck, Requirement
from tallinn.library import Command, Severity

CODE = "D101"


@rule(CODE, "short-command-description", "docs", Severity.WARNING,
      "A command's description is shorter than the useful minimum")
def check(command: Command, ctx: DocsCheck) -> Iterator[Requirement]:
    """## What it does
    Checks that a command's `description` has at least `min_description_length` characters
    (`[gates.docs]`, 20 by default).

    ## Why is this bad?
    The description is all a person sees in the slash-command menu and all a client sees in
    `prompts/list`. "Review" does not say what the command reviews or what it returns.

    ## Example
    ```yaml
    description: Review
    ```

    ## Use instead
    ```yaml
    description: Review a change for correctness, security and readability
    ```
    """
    minimum = ctx.settings.min_description_length
    length = len(command.description.strip())
    finding = None
    if length < minimum:
        finding = ctx.finding(
            CODE,
            f"the description of command '{command.name}' has {length} characters; write at "
            f"least {minimum} that say what it does",
            command, ctx.marks.key("description"),
        )
    yield Requirement(CODE, f"{command.name}: description", finding)
