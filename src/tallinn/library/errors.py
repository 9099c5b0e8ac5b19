"""Errors raised by Tallinn.

    TallinnError
    ├── LibraryError        a library could not be loaded or composed (carries diagnostics)
    ├── RenderError         a command could not be rendered with the given arguments
    │   └── ArgumentError   one argument is missing, unknown or invalid (names it)
    └── NotFoundError       no command or component by that name
"""

from __future__ import annotations

from collections.abc import Sequence

from tallinn.library.diagnostics import Diagnostic


class TallinnError(Exception):
    """Base class of every error Tallinn raises on purpose.

    Its message is written for people; the CLI prints it as one `error:` line (and any lines
    it lists) and exits with `exit_code`: 2, a usage error, unless a subclass says otherwise.
    """

    exit_code: int = 2


class LibraryError(TallinnError):
    """The library has problems; `diagnostics` lists each with its place."""

    def __init__(self, message: str, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.diagnostics = tuple(diagnostics)

    def __str__(self) -> str:
        lines = [self.args[0], *(str(d) for d in self.diagnostics)]
        return "\n".join(lines)


class RenderError(TallinnError):
    """A command could not be rendered, e.g. `RenderError("unknown command 'x'")`."""


class ArgumentError(RenderError):
    """One argument is wrong: `ArgumentError("tone", "'loud' is not one of calm, dry")`."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


class NotFoundError(TallinnError):
    """No command or component has that name."""

    def __init__(self, kind: str, name: str, suggestions: Sequence[str] = ()) -> None:
        hint = f" (did you mean {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"no {kind} named '{name}'{hint}")
        self.kind = kind
        self.name = name
