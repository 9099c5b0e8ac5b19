"""`--help` of every command reads like ordinary command-line help, with examples."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from tallinn.cli import COMMANDS, app

runner = CliRunner()
# A Python type where a metavar belongs: <bool>, <str>, <list[str]>, <int range>, {name}.
PYTHON_TYPE = re.compile(
    r"<(?:bool|str|int|float|path|file|dir|datetime|uuid|(?:list|tuple|dict)\[[^>]*\]"
    r"|[a-z]+ range|[a-z]+(?:\|[a-z]+)+)>"
    r"|\{[a-z_]+\}|\blist\[|\bNoneType\b"
)
EXAMPLED = ["check", "render", "gates", "serve", "token create", "validate"]


def every_command() -> Iterator[list[str]]:
    """Every command path, subcommands of groups included: ["token", "create"], ..."""
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup)
    for name in COMMANDS:
        command = root.commands[name]
        yield [name]
        if isinstance(command, TyperGroup):
            for sub in command.commands:
                yield [name, sub]


def _help(args: list[str]) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_is_walked() -> None:
    """The walk reaches the groups' subcommands too."""
    names = [" ".join(path) for path in every_command()]
    assert {"token create", "token revoke", "db upgrade", "gates", "smoke"} <= set(names)


@pytest.mark.parametrize("path", [[], *every_command()], ids=lambda p: " ".join(p) or "tallinn")
def test_no_python_type_is_shown_as_a_metavar(path: list[str]) -> None:
    """No option or argument of any command shows a Python type (`<bool>`, `{name}`, ...)."""
    text = _help(path)
    assert PYTHON_TYPE.findall(text) == []
    assert "--help" in text


def test_flags_and_metavars_read_as_ordinary_help() -> None:
    """Flags stand alone; options show what to type: GATE[,GATE], PATH, NAME=VALUE, URL."""
    gates = _help(["gates"])
    assert re.search(r"--only\s+GATE\[,GATE\]", gates)
    assert re.search(r"--library\s+-L\s+PATH", gates)
    assert re.search(r"--format\s+-f\s+FORMAT\s+Report format: text, json, markdown", gates)
    assert re.search(r"--json\s{2,}Same as --format json", gates)
    render = _help(["render"])
    assert "Usage: tallinn render [OPTIONS] NAME [ARG]..." in render
    assert re.search(r"--arg\s+-a\s+NAME=VALUE", render)
    assert "Usage: tallinn smoke [OPTIONS] URL" in _help(["smoke"])
    assert re.search(r"--strict\s{2,}Fail on warnings too", _help(["check"]))


@pytest.mark.parametrize("command", EXAMPLED)
def test_main_commands_show_examples(command: str) -> None:
    """The main commands' help carries an example or two of the command itself."""
    text = _help(command.split())
    assert "Examples:" in text
    assert re.search(rf"^\s+(?:claude mcp add tallinn -- )?tallinn {command}\b", text, re.M)
