"""D103 command-without-example."""

from __future__ import annotations

from collections.abc import Iterator

from tallinn.gates.base import rule
from tallinn.gates.rules.docs._common import DocsCheck, Requirement
from tallinn.library import Command, Severity

CODE = "D103"


@rule(CODE, "command-without-example", "docs", Severity.WARNING,
      "A command has no example invocation")
def check(command: Command, ctx: DocsCheck) -> Iterator[Requirement]:
    """## What it does
    Checks that a command has at least one entry under `examples`.

    ## Why is this bad?
    An example shows how the arguments fit together, and it is checked: the loader renders
    it (V110), the performance gate benchmarks with it and the server's smoke test can use it.

    ## Example
    ```yaml
    description: Review a change for correctness, security and readability
    ```

    ## Use instead
    ```yaml
    description: Review a change for correctness, security and readability
    examples:
      - description: Review one module for security
        args: {path: src/auth.py, focus: security}
    ```
    """
    finding = None
    if not command.examples:
        finding = ctx.finding(
            CODE, f"command '{command.name}' has no example; add one under 'examples:'",
            command, ctx.marks.missing,
        )
    yield Requirement(CODE, f"{command.name}: an example", finding)
