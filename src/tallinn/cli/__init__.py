"""The `tallinn` command line: a thin front over the library, gates, server and operations.

Each command lives in a module of its own and is imported only when it runs (or when help
lists it): `tallinn serve` never imports the gates, and `tallinn check` never imports the
MCP SDK. `COMMANDS` is the table of contents, in the order `tallinn --help` shows.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperGroup
from typer.exceptions import Abort, Exit, TyperException

if TYPE_CHECKING:  # for annotations only: Typer's click (vendored in recent Typer) is private
    from typer._click import Command, Context

from tallinn import __version__
from tallinn.cli.common import ExitCode, begin_invocation, console, fail
from tallinn.cli.plainhelp import PlainGroup
from tallinn.library import TallinnError

__all__ = ["COMMANDS", "ExitCode", "app", "main"]

COMMANDS: dict[str, str] = {
    "list": "library",
    "show": "library",
    "render": "library",
    "check": "library",
    "init": "library",
    "validate": "validate",
    "test": "quality",
    "audit": "audit",
    "docs-coverage": "quality",
    "bench": "quality",
    "gates": "gates",
    "export": "export",
    "serve": "serve",
    "smoke": "serve",
    "token": "token",
    "db": "token",
    "release": "release",
    "promote": "channel",
    "rollback": "channel",
    "channel": "channel",
    "rollout": "rollout",
    "audit-log": "audit_log",
    "errors": "errors",
    "events": "events",
    "feedback": "feedback",
    "import": "importing",
    "schema": "schema",
    "status": "status",
}


class _LazyCommands(MutableMapping[str, "Command"]):
    """The root group's commands: a name in `COMMANDS` is built from its module on first use."""

    def __init__(self, loaded: MutableMapping[str, Command]) -> None:
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> Command:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            module = importlib.import_module(f"tallinn.cli.{COMMANDS[name]}")
            built = typer.main.get_command(module.app)
            if isinstance(built, TyperGroup):
                self._loaded.update(built.commands)  # the module's other commands come along
            else:
                self._loaded[name] = built
        return self._loaded[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._loaded if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(name not in COMMANDS for name in self._loaded)


class LazyGroup(PlainGroup):
    """A Typer group that imports a command's module only when the command is needed, and
    turns any exception a command lets out into one line and exit 2 (the traceback only with
    `--debug`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _LazyCommands(self.commands)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)  # the names alone; help builds each command it shows

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Exit, Abort, TyperException, EOFError):  # exits, usage errors, Ctrl-D
            raise
        except BrokenPipeError:
            # The reader went away (`tallinn list | head`): nothing to tell it. Point stdout
            # at /dev/null so the interpreter's last flush does not fail again.
            with contextlib.suppress(OSError, ValueError):  # a captured stdout has no file
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise Exit(int(ExitCode.PROBLEMS)) from None
        except TallinnError as exc:  # the one place a deliberate error becomes a message
            if ctx.params.get("debug"):
                raise
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            print_unexpected(exc)
            raise Exit(int(ExitCode.USAGE)) from None


def print_unexpected(exc: Exception) -> None:
    """One line for an exception no command translated: what happened, and how to see more.

    A `TallinnError` is a message for people already; anything else is named by its type,
    since its text alone (`[Errno 28] No space left on device`) may not say what failed.
    """
    from rich.markup import escape

    text = " ".join(str(exc).split()) or "no message"
    if not isinstance(exc, TallinnError):
        text = f"unexpected {type(exc).__name__}: {text} (run 'tallinn --debug ...' for the " \
               "traceback)"
    console("err").print(f"[red]error:[/red] {escape(text)}", markup=True, highlight=False)


app = typer.Typer(
    name="tallinn",
    cls=LazyGroup,
    help="Prompt libraries as code: check, test, gate and serve a prompt library.",
    no_args_is_help=True,
    add_completion=False,
    # Locals can hold tokens and prompt text; never print them.
    pretty_exceptions_show_locals=False,
    rich_markup_mode="rich",
)


def main() -> None:
    """Entry point of the `tallinn` console script."""
    app()


def _print_version(value: bool) -> None:
    if value:
        print(f"tallinn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on internal errors."),
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True,
        callback=_print_version,
    ),
) -> None:
    """Prompt libraries as code."""
    app.pretty_exceptions_enable = debug
    # Read once here, so a bad environment variable is a usage error before any command
    # runs, and every part of the command sees the same settings (`common.settings()`).
    begin_invocation()
