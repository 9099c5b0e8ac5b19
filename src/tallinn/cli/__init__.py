"""The `tallinn` command line: a thin front over the library, gates, server and operations."""

from __future__ import annotations

import typer

from tallinn.cli import audit as _audit  # noqa: F401
from tallinn.cli import gates as _gates  # noqa: F401
from tallinn.cli import library as _library  # noqa: F401  (registers commands)
from tallinn.cli import quality as _quality  # noqa: F401
from tallinn.cli import serve as _serve  # noqa: F401
from tallinn.cli import token as _token  # noqa: F401
from tallinn.cli import validate as _validate  # noqa: F401
from tallinn.cli.common import ExitCode, app

__all__ = ["ExitCode", "app", "main"]


def main() -> None:
    """Entry point of the `tallinn` console script."""
    app()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on internal errors."),
) -> None:
    """Prompt libraries as code."""
    app.pretty_exceptions_enable = debug
