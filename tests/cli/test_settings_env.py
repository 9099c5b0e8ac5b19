"""Settings from the environment: an empty variable is an unset one, for every setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.helpers import count_calls
from typer.testing import CliRunner

from tallinn import settings as settings_module
from tallinn.cli import app
from tallinn.settings import Settings

runner = CliRunner()


@pytest.mark.parametrize("name", [field.alias for field in Settings.model_fields.values()])
def test_an_empty_setting_means_unset(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting set to the empty string reads as if it were not set at all."""
    monkeypatch.setenv(name, "")
    assert Settings() == Settings.model_validate({})
    assert Settings().library_path() == Settings.model_validate({}).library_path()


def test_an_empty_no_cache_variable_does_not_stop_every_command(lib: Path) -> None:
    """`TALLINN_NO_CACHE=` (empty) lets commands run, and keeps the cache on."""
    result = runner.invoke(app, ["check", "-L", str(lib)], env={"TALLINN_NO_CACHE": ""})
    assert result.exit_code == 0, result.output
    assert (lib / ".tallinn" / "cache").is_dir()


def test_an_invalid_setting_is_still_a_usage_error(lib: Path) -> None:
    """A value that is there but wrong is still refused with one line and exit 2."""
    result = runner.invoke(app, ["check", "-L", str(lib)], env={"TALLINN_NO_CACHE": "nope"})
    assert result.exit_code == 2
    assert "TALLINN_NO_CACHE='nope'" in result.stderr


@pytest.mark.parametrize("command", [["check"], ["list"], ["gates", "--only", "docs"]])
def test_a_command_reads_the_environment_once(
    command: list[str], lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One invocation builds its settings once, at the edge, and every part of the command
    uses that one instance."""
    built = count_calls(monkeypatch, settings_module.Settings, "__init__")
    result = runner.invoke(app, [*command, "-L", str(lib)])
    assert result.exit_code in (0, 1), result.output
    assert built() == 1
