"""An exception no command translates: one `error:` line and exit 2; the traceback with --debug."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import tallinn.cli.library
from tallinn.cli import app
from tallinn.library import TallinnError

runner = CliRunner()


def test_an_unexpected_exception_is_one_line_and_exit_2(
    lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception no command translates prints one `error:` line, no traceback, exit 2."""
    def broken(*args: object, **kwargs: object) -> str:
        raise PermissionError(13, "Permission denied", "/srv/prompts/out.txt")

    monkeypatch.setattr(tallinn.cli.library, "render", broken)
    result = runner.invoke(app, ["render", "hello", "Ann", "-L", str(lib)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines == ["error: unexpected PermissionError: [Errno 13] Permission denied: "
                     "'/srv/prompts/out.txt' (run 'tallinn --debug ...' for the traceback)"]
    assert "Traceback" not in result.output


def test_debug_lets_the_traceback_through(lib: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --debug the exception itself comes out, for its traceback."""
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("renderer on fire")

    monkeypatch.setattr(tallinn.cli.library, "render", broken)
    result = runner.invoke(app, ["--debug", "render", "hello", "Ann", "-L", str(lib)])
    assert isinstance(result.exception, RuntimeError)
    assert "error: unexpected" not in result.stderr


def test_a_tallinn_error_is_its_message_and_its_exit_code(
    lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deliberate error reaching the command group prints its message as is (no "unexpected")
    and exits with the code its class names."""
    class Refused(TallinnError):
        exit_code = 1

    def refused(*args: object, **kwargs: object) -> str:
        raise Refused("release 3 is not GO:\n  docs gate failed")

    monkeypatch.setattr(tallinn.cli.library, "render", refused)
    result = runner.invoke(app, ["render", "hello", "Ann", "-L", str(lib)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["error: release 3 is not GO:", "  docs gate failed"]
