"""`tallinn check` and `tallinn gates` on a library with hostile files: findings and exit 1,
never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from typer.testing import CliRunner

from tallinn.cli import app

runner = CliRunner()
GOOD = "---\ndescription: Say hello to the reader\n---\nHello.\n"


def hostile(root: Path) -> Path:
    (root / "commands/a").mkdir(parents=True)
    (root / "commands/a/ok.md").write_text(GOOD)
    (root / "commands/a/ctrl.md").write_text("---\ndescription: a\x01b\n---\nx\n")
    (root / "commands/a/lol.md").write_text(
        "---\ndescription: d\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "\n".join(f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 10)
                    + "]" for i in range(8))
        + "\n---\nx\n")
    os.mkfifo(root / "commands/a/pipe.md")
    (root / "commands/a/zero.md").symlink_to("/dev/zero")
    return root


def test_check_reports_each_hostile_file(tmp_path: Path) -> None:
    """`tallinn check` names each file with its code and exits 1; the good command loads."""
    root = hostile(tmp_path / "lib")
    result = runner.invoke(app, ["check", "--library", str(root)])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "commands/a/ctrl.md:2:15: V102" in out
    assert "commands/a/lol.md:" in out
    assert "V113" in out
    assert "commands/a/pipe.md:1:1: V111" in out
    assert "commands/a/zero.md:1:1: V111" in out
    assert "Traceback" not in out


def test_gates_say_no_go_on_files_the_audit_cannot_read(tmp_path: Path) -> None:
    """`tallinn gates` fails the security gate on files it cannot read (S902), in SARIF too."""
    root = hostile(tmp_path / "lib")
    args = ["gates", "--library", str(root), "--only", "xml,security", "--format", "sarif"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "S902" in result.output
    assert "Traceback" not in result.output
