"""`tallinn audit`: the security audit from the command line, with baselines."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import WriteLibrary
from typer.testing import CliRunner

from tallinn.cli import app

runner = CliRunner()
DEPLOY = ("---\ndescription: Deploy\nallowed-tools: Read, Bash\n---\n"
          "```bash\nchmod 777 deploy.sh\n```\n")


def test_a_clean_library_passes(write_library: WriteLibrary) -> None:
    root = write_library({"commands/a/ok.md": "---\ndescription: Fine\n---\nReview it.\n"})
    result = runner.invoke(app, ["audit", "--library", str(root)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "security audit PASSED" in result.stderr


def test_findings_are_printed_and_a_high_one_exits_1(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": DEPLOY})
    result = runner.invoke(app, ["audit", "--library", str(root)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("commands/ops/deploy.md:3:22: S601 allowed-tools entry 'Bash'")
    assert lines[1].startswith("commands/ops/deploy.md:6:1: S203 `chmod 777`")
    assert "FAILED" in result.stderr
    assert "1 high, 1 medium, 0 low" in result.stderr
    assert runner.invoke(app, ["audit", "--library", str(root), "--exit-zero"]).exit_code == 0


def test_json_output(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": DEPLOY})
    result = runner.invoke(app, ["audit", "--library", str(root), "--json"])
    data = json.loads(result.stdout)
    assert data["status"] == "FAILED"
    assert data["counts"] == {"high": 1, "medium": 1, "low": 0}
    assert data["by_rule"] == {"S203": 1, "S601": 1}
    assert data["findings"][0] == {
        "code": "S601", "severity": "error", "confidence": "high",
        "path": "commands/ops/deploy.md", "line": 3, "col": 22,
        "message": data["findings"][0]["message"], "fix": None,
    }
    assert data["metrics"] == [{"name": "high-severity findings", "value": 1, "threshold": 0,
                                "status": "FAILED"}]


def test_write_a_baseline_justify_it_and_pass(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    root = write_library({"commands/ops/deploy.md": DEPLOY})
    path = tmp_path / "security-baseline.json"
    written = runner.invoke(app, ["audit", "--library", str(root), "--write-baseline", str(path)])
    assert written.exit_code == 1  # written, not yet justified
    assert "baseline of 2 findings written" in written.stderr
    data = json.loads(path.read_text())
    assert [e["reason"] for e in data["findings"]] == ["TODO: justify"] * 2

    still = runner.invoke(app, ["audit", "--library", str(root), "--baseline", str(path)])
    assert still.exit_code == 1
    assert "without a reason" in still.stderr

    for entry in data["findings"]:
        entry["reason"] = "deploy host is single-user; reviewed 2025-08"
    path.write_text(json.dumps(data))
    accepted = runner.invoke(app, ["audit", "--library", str(root), "--baseline", str(path),
                                   "--json"])
    assert accepted.exit_code == 0, accepted.output
    report = json.loads(accepted.stdout)
    assert report["findings"] == []
    assert {a["source"] for a in report["accepted"]} == {"baseline"}

    again = tmp_path / "again.json"
    rewritten = runner.invoke(app, ["audit", "--library", str(root), "--baseline", str(path),
                                    "--write-baseline", str(again)])
    assert rewritten.exit_code == 0
    assert [e["reason"] for e in json.loads(again.read_text())["findings"]] == [
        "deploy host is single-user; reviewed 2025-08"] * 2


def test_a_missing_baseline_is_a_usage_error(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    root = write_library({"commands/ops/deploy.md": DEPLOY})
    result = runner.invoke(app, ["audit", "--library", str(root),
                                 "--baseline", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "baseline file not found" in result.stderr
