"""D102 undocumented-argument."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.docs._common import DocsCheck, Requirement
from tallinn.library import Command, Severity

CODE = "D102"


@rule(CODE, "undocumented-argument", "docs", Severity.WARNING,
      "A command argument has no description")
def check(command: Command, ctx: DocsCheck) -> Iterator[Requirement]:
    """## What it does
    Checks that every declared argument of a command has a `description`.

    ## Why is this bad?
    Clients show argument descriptions when they ask for values (`prompts/get` arguments,
    `tallinn show`). Without one, a person has to read the template to know what to pass.

    ## Example
    ```yaml
    arguments:
      - name: path
        required: true
    ```

    ## Use instead
    ```yaml
    arguments:
      - name: path
        description: File or folder to review
        required: true
    ```
    """
    for index, argument in enumerate(command.arguments):
        finding = None
        if not argument.description.strip():
            finding = ctx.finding(
                CODE, f"argument '{argument.name}' of command '{command.name}' has no "
                "description", command, ctx.marks.key("arguments", index),
            )
        yield Requirement(CODE, f"{command.name}: argument {argument.name}", finding)
