"""A body for an agent that does not substitute named arguments: `{name}` stands for a value,
and an `<arguments>` block before the text says what each argument is."""

from __future__ import annotations

from collections.abc import Sequence

from tallinn.export._base import ActiveSyntax, Loss, arguments_block, compose_body
from tallinn.library import Command, Library


def body(library: Library, command: Command, syntax: Sequence[ActiveSyntax],
         losses: list[Loss], lead: str, given: str | None = None,
         whole: str = "{arguments}") -> str:
    """The composed body with `{name}` for each argument and `whole` for `$ARGUMENTS`,
    led by an `<arguments>` block when the command declares any (`given` ends it)."""
    text = compose_body(library, command,
                        lambda name: whole if name == "$ARGUMENTS" else f"{{{name}}}",
                        syntax, losses)
    if not command.arguments:
        return text
    losses.append(Loss(command.name, "argument substitution",
                       "values are not substituted; {name} in the text and an <arguments> "
                       "block describe them, and types, enums and defaults are not checked"))
    return arguments_block(command, lead, given) + text
