"""What every CLI command shares: the app, options, consoles, exit codes, loading."""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from tallinn.library import Diagnostic, Library, Severity, load_library
from tallinn.settings import Settings
from tallinn.wording import plural

if TYPE_CHECKING:
    from rich.console import Console

    from tallinn.gates.perf import LoadDriver


class ExitCode(IntEnum):
    OK = 0
    PROBLEMS = 1
    USAGE = 2


def command_app(**options: Any) -> typer.Typer:
    """The Typer app one CLI module registers its commands on (see `tallinn.cli.COMMANDS`)."""
    from tallinn.cli.plainhelp import CommandApp

    return CommandApp(
        **options,
        add_completion=False,
        # Locals can hold tokens and prompt text; never print them.
        pretty_exceptions_show_locals=False,
        rich_markup_mode="rich",
    )


# Data goes to stdout; messages, tables for people and progress go to stderr.
_CONSOLES: dict[str, dict[str, Any]] = {
    "out": {"highlight": False, "soft_wrap": True},
    "err": {"stderr": True, "highlight": False},
}
# The width of a console that is not a terminal (a pipe, a file, CI's log): wide enough that no
# line is ever broken; a table is as wide as its content, never this wide.
UNWRAPPED_WIDTH = 100_000
RULE_WIDTH = 80
if TYPE_CHECKING:
    out: Console
    err: Console


def columns() -> int | None:
    """`$COLUMNS` as a width, or None when it is unset, empty or not a positive number."""
    value = os.environ.get("COLUMNS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def _console_class() -> type[Console]:
    from rich.console import Console, ConsoleDimensions

    class FittedConsole(Console):
        """A console as wide as `$COLUMNS`, else as its terminal; unbounded when it is neither.

        Rich falls back to 80 columns outside a terminal, which breaks error lines in the middle
        and drops table columns in CI logs and pipes. The width is worked out at each use, since
        one process (a test run) may print to a terminal, a pipe and a capture in turn.
        """

        @property
        def size(self) -> ConsoleDimensions:
            height = super().size.height
            given = columns()
            if given is not None:
                return ConsoleDimensions(given, height)
            if not self.is_terminal:
                return ConsoleDimensions(UNWRAPPED_WIDTH, height)
            return super().size

        @size.setter
        def size(self, new_size: tuple[int, int]) -> None:
            self._width, self._height = new_size

    return FittedConsole


def console(name: str) -> Console:
    """The console `out` or `err`, made on first use: a command that prints nothing, such as a
    running server, never loads Rich (1.5 MB of memory, 15 ms of start-up)."""
    made = globals().get(name)
    if made is None:
        made = globals()[name] = _console_class()(**_CONSOLES[name])
    return made


def rule(title: str, *, style: str, on: Console | None = None) -> None:
    """A horizontal rule with `title`, as wide as the console but never wider than 80 columns."""
    from rich.rule import Rule

    target = on or console("err")
    target.print(Rule(title, style=style), width=min(target.width, RULE_WIDTH))




def __getattr__(name: str) -> Any:
    """`from tallinn.cli.common import err` makes the console then (see `console`)."""
    if name in _CONSOLES:
        return console(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


LibraryOption = Annotated[
    Path | None,
    typer.Option(
        "--library",
        "-L",
        help="Library folder. Default: $TALLINN_LIBRARY, then $PROJECT_ROOT, then the starter.",
        metavar="PATH",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL (sqlite:///path or postgresql://...). Default: $TALLINN_STORE_URL, "
        "then <library>/.tallinn/state.db.",
        metavar="URL",
        show_default=False,
    ),
]


def fail(message: str, code: int = ExitCode.USAGE) -> NoReturn:
    from rich.markup import escape

    console("err").print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(int(code))


# The settings of the running invocation, set once by the root callback.
_invocation_settings: ContextVar[Settings | None] = ContextVar("tallinn_settings", default=None)


def begin_invocation() -> Settings:
    """Read the environment for this invocation; raises SettingsError for a bad variable."""
    current = Settings()
    _invocation_settings.set(current)
    return current


def settings() -> Settings:
    """The settings of this invocation: read from the environment once, by the root callback,
    and shared by every part of the command (a direct call outside a command reads anew)."""
    return _invocation_settings.get() or Settings()


def library_path(explicit: Path | None) -> Path:
    return settings().library_path(explicit)


def workers() -> int:
    """The processes a library of thousands of files is read by: `TALLINN_WORKERS`, else one
    per CPU."""
    from tallinn.library.parallel import default_workers

    return settings().workers or default_workers()


def load(explicit: Path | None, *, quiet: bool = False) -> Library:
    """Load the library, or exit 2 with one line when the folder is unusable."""
    current = settings()
    path = current.library_path(explicit)
    library = load_library(path, cache_dir=current.cache_dir(path), workers=workers())
    if library.errors and not quiet:
        console("err").print(
            f"[yellow]warning:[/yellow] {plural(len(library.errors), 'problem')} in {path}; "
            "files with errors are left out (run 'tallinn check')"
        )
    return library


def load_driver() -> LoadDriver | None:
    """The perf gate's `--load` driver, `tallinn.serve.run_load_test`; None without the server.

    Imported only when `--load` is given, so the other commands never load the MCP SDK.
    """
    try:
        from tallinn.serve import run_load_test
    except ImportError:
        return None
    driver: LoadDriver = run_load_test
    return driver


def print_diagnostics(diagnostics: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        colour = "red" if diagnostic.severity is Severity.ERROR else "yellow"
        location = f"{diagnostic.path}:{diagnostic.line}:{diagnostic.col}:"
        console("out").print(
            f"[bold]{location}[/bold] [{colour}]{diagnostic.code}[/{colour}] ",
            end="",
            markup=True,
        )
        console("out").print(diagnostic.message, markup=False)


def write_raw(text: str) -> None:
    """Write prompt text exactly: no markup, no wrapping."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()
