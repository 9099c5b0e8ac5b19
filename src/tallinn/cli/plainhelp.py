"""Help that reads like ordinary command-line help: `--json`, `--only GATE[,GATE]`, `NAME`.

Typer shows each parameter's Python type as its metavar (`--json <bool>`, `<list[str]>`) and
wraps a required argument in braces in the usage line (`{name}`). The classes here show what a
person types instead: nothing after a flag, the metavar given to the option, else its choices
(`[text|json]`) or its name in capitals; an argument as `NAME`, `[NAME]` when optional, with
`...` when it repeats. `CommandApp` makes every command of an app use them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

if TYPE_CHECKING:  # Typer's click (vendored in recent Typer) is private
    from typer._click import Context, Parameter

__all__ = ["CommandApp", "PlainCommand", "PlainGroup", "plain_params"]

Function = TypeVar("Function", bound=Callable[..., Any])


class PlainOption(TyperOption):
    """An option shown as `--name METAVAR`, or as `--name` alone when it is a flag."""

    def display_type_rich(self, ctx: Context) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        choices = self.type_descriptor.choices if self.type_descriptor.is_choice else None
        if choices:
            return "[" + "|".join(_choice(c) for c in choices) + "]"
        return (self.name or "value").upper()


class PlainArgument(TyperArgument):
    """An argument shown as `NAME` (`[NAME]` in the usage line when optional, `NAME...`
    when it repeats), never with its Python type."""

    def display_type_rich(self, ctx: Context) -> str | None:
        return None  # the name column already shows the metavar

    def _rich_display_name(self) -> str:
        return self.display_name_raw + ("..." if self.nargs != 1 else "")

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name + ("..." if self.nargs != 1 else "")


def _choice(value: object) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def plain_params(params: Iterable[Parameter]) -> None:
    """Make Typer's parameters show plain metavars (idempotent).

    Typer builds its own parameter classes and offers no hook to choose others; the classes
    here add no state, only override how a parameter is displayed, so switching the class of
    the built object is safe.
    """
    for param in params:
        if isinstance(param, TyperArgument) and not isinstance(param, PlainArgument):
            param.__class__ = PlainArgument
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
        elif isinstance(param, TyperOption) and not isinstance(param, PlainOption):
            param.__class__ = PlainOption


class PlainCommand(TyperCommand):
    """A command whose help shows plain metavars, `--help` included."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        plain_params(params)
        return params


class PlainGroup(TyperGroup):
    """A group whose help shows plain metavars, `--help` included."""

    def get_params(self, ctx: Context) -> list[Parameter]:
        params = super().get_params(ctx)
        plain_params(params)
        return params


class CommandApp(typer.Typer):
    """A Typer app whose commands are `PlainCommand`s and whose groups are `PlainGroup`s."""

    def __init__(self, **options: Any) -> None:
        options.setdefault("cls", PlainGroup)
        super().__init__(**options)

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **options: Any
    ) -> Callable[[Function], Function]:
        return super().command(name, cls=cls or PlainCommand, **options)
