"""Render a composed command with arguments, strictly.

These rules are security properties: a value is validated against its declaration and then
inserted literally, once. Nothing in a value is ever expanded, so a value containing
`{{other}}`, `$ARGUMENTS` or an include stays exactly as given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from tallinn.library.compose import ALL_ARGUMENTS
from tallinn.library.errors import ArgumentError, RenderError
from tallinn.library.model import ArgType, Argument, ArgValue, Command, Library

_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def coerce(argument: Argument, value: object) -> ArgValue:
    """Check one value against its declaration and return it as the declared type.

    Strings (from the CLI or MCP) are converted; typed values must already fit.
    Raises `ValueError` with a message that does not name the argument.
    """
    kind = argument.type
    if kind is ArgType.INTEGER:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"expected an integer, got {_show(value)}")
        if isinstance(value, str):
            if not _INTEGER.fullmatch(value.strip()):
                raise ValueError(f"expected an integer, got {_show(value)}")
            value = int(value.strip())
        result: ArgValue = value
    elif kind is ArgType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"expected a number, got {_show(value)}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {_show(value)}") from None
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number, got {_show(value)}")
        result = int(number) if isinstance(value, int) else number
    elif kind is ArgType.BOOLEAN:
        if isinstance(value, bool):
            result = value
        elif isinstance(value, str) and value.strip().lower() in _TRUE:
            result = True
        elif isinstance(value, str) and value.strip().lower() in _FALSE:
            result = False
        else:
            raise ValueError(f"expected true or false, got {_show(value)}")
    else:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            if kind is ArgType.ENUM and isinstance(value, bool):
                value = str(value).lower()
            else:
                raise ValueError(f"expected a string, got {_show(value)}")
        result = str(value)
        if kind is ArgType.ENUM and result not in argument.enum:
            raise ValueError(f"{_show(result)} is not one of {', '.join(argument.enum)}")
    pattern = argument.compiled_pattern
    if pattern is not None and not pattern.fullmatch(format_value(result)):
        raise ValueError(f"does not match pattern {argument.pattern} (got {_show(result)})")
    return result


def _show(value: object) -> str:
    text = repr(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "...'"


def format_value(value: ArgValue) -> str:
    """The text inserted for a value: booleans as `true`/`false`, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(arguments: Sequence[Argument], given: Mapping[str, object]) -> dict[str, ArgValue]:
    """Validate `given` against the declarations; apply defaults. Raises `ArgumentError`."""
    declared = {a.name: a for a in arguments}
    for name in given:
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ArgumentError(name, f"unknown argument '{name}' (declared: {known})")
    values: dict[str, ArgValue] = {}
    for argument in arguments:
        value = given.get(argument.name)
        if value is None:
            if argument.required:
                raise ArgumentError(argument.name, f"missing required argument '{argument.name}'")
            if argument.default is not None:
                values[argument.name] = argument.default
            continue
        try:
            values[argument.name] = coerce(argument, value)
        except ValueError as exc:
            raise ArgumentError(argument.name, f"argument '{argument.name}': {exc}") from None
    return values


def render_command(
    library: Library,
    name: str,
    arguments: Mapping[str, object] | None = None,
    raw_arguments: str | None = None,
) -> str:
    """Render command `name` of `library`. Raises `RenderError` (or `NotFoundError`)."""
    from tallinn.library.errors import NotFoundError

    command = library.commands.get(name)
    if command is None:
        from tallinn.wording import close_matches

        close = close_matches(name, list(library.commands), n=3, cutoff=0.6)
        raise NotFoundError("command", name, close)
    return render(library, command, arguments or {}, raw_arguments)


def render(
    library: Library,
    command: Command,
    arguments: Mapping[str, object],
    raw_arguments: str | None = None,
) -> str:
    """Render a loaded command: validate, then fill every slot literally."""
    template = library.templates.get(command.name)
    if template is None:
        raise RenderError(f"command '{command.name}' was not composed")
    values = resolve(command.arguments, arguments)
    text: dict[str, str] = {}
    for slot in template.slots:
        if slot in text:
            continue
        if slot == ALL_ARGUMENTS:
            if raw_arguments is None:
                raw_arguments = " ".join(
                    format_value(values[a.name]) for a in command.arguments
                    if arguments.get(a.name) is not None
                )
            text[slot] = raw_arguments
        else:
            value = values.get(slot)
            text[slot] = "" if value is None else format_value(value)
    return template.fill(text)


def bind_positional(command: Command, words: Sequence[str]) -> dict[str, str]:
    """Given `["src/app.py", "security"]`, fill the declared arguments in order.

    A command that declares no arguments takes any words as `$ARGUMENTS` only.
    """
    if len(words) > len(command.arguments) and command.arguments:
        raise ArgumentError(
            "",
            f"command '{command.name}' takes at most {len(command.arguments)} positional "
            f"argument(s) ({', '.join(a.name for a in command.arguments)}); got {len(words)}",
        )
    return {a.name: w for a, w in zip(command.arguments, words, strict=False)}
