"""Messages a person can act on: counts, suggestions, settings, unexpected errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import HELLO
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.wording import plural

runner = CliRunner()

FAILING_TESTS = """
    command: hello
    tests:
      - description: greets the name
        vars: {name: Ann}
        assert: [{type: contains, value: "Hello, Ann."}]
      - description: wrong greeting one
        vars: {name: Ann}
        assert: [{type: contains, value: "Goodbye"}]
      - description: wrong greeting two
        vars: {name: Bo}
        assert: [{type: contains, value: "Farewell"}]
      - description: wrong greeting three
        vars: {name: Cy}
        assert: [{type: contains, value: "Ciao"}]
    """


def test_plural_counts_read_naturally() -> None:
    """One noun in the singular, every other count in the plural, irregular ones spelled."""
    assert plural(1, "command") == "1 command"
    assert plural(0, "command") == "0 commands"
    assert plural(2, "fix", "fixes") == "2 fixes"


@pytest.mark.parametrize(("only", "message"), [
    ("foo", "error: no gate named 'foo' (the gates are xml, tests, perf, security, docs)"),
    ("secrity", "error: no gate named 'secrity' (did you mean security?)"),
    ("xml,tets", "error: no gate named 'tets' (did you mean tests?)"),
    (",", "error: --only needs at least one gate name (the gates are xml, tests, perf, "
          "security, docs)"),
])
def test_an_unknown_gate_names_the_closest_one(lib: Path, only: str, message: str) -> None:
    """`--only` with a typo suggests the one closest gate; with nothing close, lists them."""
    result = runner.invoke(app, ["gates", "-L", str(lib), "--only", only])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [message]


def test_test_counts_a_command_passing_only_when_all_its_cases_pass(
    write_library: Any,
) -> None:
    """One passing case out of four does not make the command pass; the failures are counted."""
    root = write_library({"commands/a/hello.md": HELLO, "tests/hello.yaml": FAILING_TESTS})
    result = runner.invoke(app, ["test", "-L", str(root)])
    assert result.exit_code == 1
    assert "3 failed, 1 passed" in result.stderr
    assert ("commands whose cases all pass: 0 of 1 (0%, threshold 100%); 3 cases failed"
            in result.stderr)
    assert "commands with a passing test" not in result.stderr


def test_counts_in_messages_are_singular_for_one(write_library: Any) -> None:
    """A library of one command and one component says so, not "1 commands"."""
    root = write_library({"commands/a/hello.md": HELLO,
                          "components/x/y.md": "---\ndescription: Y\n---\nY\n"})
    checked = runner.invoke(app, ["check", "-L", str(root)])
    assert "1 command, 1 component: 0 errors, 0 warnings" in checked.stderr
    listed = runner.invoke(app, ["list", "-L", str(root)])
    assert ": 1 command" in listed.stdout
    assert "1 commands" not in listed.stdout
    validated = runner.invoke(app, ["validate", "-L", str(root)])
    assert "2 files checked: 0 findings in 0 files, 0 errors" in validated.stderr


def test_cut_findings_point_at_the_report_written(
    lib: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Findings past the first five are counted and the line names the report that has them."""
    from tests.gates.readiness_factory import finding, install_gates

    from tallinn.gates.base import GateContext, GateResult, Status

    def noisy(ctx: GateContext) -> GateResult:
        many = tuple(finding("W1", line=i) for i in range(1, 9))
        return GateResult("noisy", "Noisy", Status.PARTIAL, findings=many)

    install_gates(monkeypatch, {"noisy": noisy})
    target = tmp_path / "readiness.md"
    result = runner.invoke(app, ["gates", "-L", str(lib), "--report", str(target)])
    assert f"noisy: ... and 3 more (see {target})" in result.stderr
    assert "write them all with --report" not in result.stderr
