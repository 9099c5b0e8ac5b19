"""Output outside a terminal: whole lines, whole tables; `COLUMNS` wins when it is set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tallinn.cli import app

runner = CliRunner()
LONG = "a-category-name-long-enough-to-pass-any-terminal-" * 4
COMMAND = """
    ---
    description: Say hello to someone who is there
    arguments:
      - {name: name, description: Who to greet, required: true}
    ---
    Hello, {{name}}.
    """
TESTS = """
    command: hello
    tests:
      - description: greets the name
        vars: {name: Ann}
        assert: [{type: contains, value: "Hello, Ann."}]
    """


@pytest.fixture
def lib(write_library: Any) -> Path:
    return Path(write_library({"commands/a/hello.md": COMMAND}))


def _tallinn(*args: str, columns: str | None = None) -> subprocess.CompletedProcess[str]:
    # Some test runners export COLUMNS=80 to children (curses); these runs set their own.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run([sys.executable, "-m", "tallinn", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_a_long_error_is_one_line_in_the_runner(lib: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a terminal, an error line longer than 80 columns is printed whole."""
    monkeypatch.delenv("COLUMNS", raising=False)
    result = runner.invoke(app, ["list", "-L", str(lib), "--category", LONG])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: no category '{LONG}' (categories: a)"]


def test_a_long_error_is_one_line_through_a_pipe(lib: Path) -> None:
    """A real process writing to a pipe prints the same long line unbroken."""
    result = _tallinn("list", "-L", str(lib), "--category", LONG)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: no category '{LONG}' (categories: a)"]


def test_columns_is_honoured_when_set(lib: Path) -> None:
    """With COLUMNS=60 the same message is wrapped to 60 columns."""
    result = _tallinn("list", "-L", str(lib), "--category", LONG, columns="60")
    lines = result.stderr.splitlines()
    assert len(lines) > 1
    assert max(len(line) for line in lines) <= 60
    assert "".join(lines).replace(" ", "") == (
        f"error: no category '{LONG}' (categories: a)".replace(" ", ""))


def test_the_gates_table_keeps_every_column_through_a_pipe(write_library: Any) -> None:
    """The gates summary wider than 80 columns keeps all seven columns and whole figure
    names when it goes to a pipe."""
    root = write_library({"commands/a/hello.md": COMMAND, "tests/hello.yaml": TESTS})
    result = _tallinn("gates", "-L", str(root), "--only", "xml,tests,docs")
    lines = result.stderr.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("gate "))
    assert header.split() == ["gate", "status", "figure", "value", "threshold", "findings",
                              "blocking"]
    assert len(header.rstrip()) > 80
    row = next(line for line in lines if "commands whose prompt tests all pass" in line)
    assert row.split()[-5:] == ["100%", ">=", "100%", "0", "0"]
