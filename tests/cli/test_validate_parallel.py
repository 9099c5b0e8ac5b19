"""`tallinn validate` with its load in worker processes prints what a serial run prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli.test_hostile_library_cli import hostile
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.library import parallel

runner = CliRunner()


def validate(root: Path, workers: str, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["validate", "--library", str(root), *extra],
                           env={"TALLINN_WORKERS": workers, "TALLINN_NO_CACHE": "1"})
    return result.exit_code, result.output


def test_hostile_files_are_reported_alike_in_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hostile file is named with its code, line and column, as in a serial run."""
    monkeypatch.setattr(parallel, "PARALLEL_FILES", 1)
    decoded: list[object] = []
    decode = parallel._decode
    monkeypatch.setattr(parallel, "_decode",
                        lambda encoded, known: decoded.append(1) or decode(encoded, known))
    root = hostile(tmp_path / "lib")
    serial = validate(root, "1", "--json")
    assert not decoded
    in_workers = validate(root, "2", "--json")
    assert len(decoded) == 2  # of 5 prompt files, the worker's share came back from it
    assert in_workers == serial
    assert serial[0] == 1
    found = {(f["path"], f["line"], f["col"], f["code"])
             for f in json.loads(serial[1])["findings"]}
    assert {("commands/a/ctrl.md", 2, 15, "V102"), ("commands/a/pipe.md", 1, 1, "V111"),
            ("commands/a/zero.md", 1, 1, "V111")} <= found
    assert validate(root, "2") == validate(root, "1")


def test_a_worker_count_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    """`TALLINN_WORKERS=0` (or any value but 1 to 64) stops before loading, exit 2."""
    code, output = validate(hostile(tmp_path / "lib"), "0")
    assert code == 2
    assert "TALLINN_WORKERS" in output
