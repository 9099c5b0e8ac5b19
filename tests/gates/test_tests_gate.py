"""Gate 2 (prompt tests) and `tallinn test`, on real libraries written to disk."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from tests.conftest import WriteLibrary
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates import tests as gate
from tallinn.gates.base import GateContext, Status
from tallinn.library import LibraryError, load_library
from tallinn.settings import starter_path

runner = CliRunner()

GREET = """
    ---
    description: Greet a person by name, politely
    argument-hint: "<name>"
    arguments:
      - {name: name, description: Who to greet, required: true}
    examples:
      - {description: Greet Ada, args: {name: Ada}}
    ---
    Hello {{name}}, welcome.
"""
BYE = """
    ---
    description: Say goodbye to everyone present
    ---
    Goodbye, everyone.
"""
GREET_TESTS = """
    command: greet
    tests:
      - description: uses the name
        vars: {name: Ada}
        assert:
          - {type: contains, value: Hello Ada}
      - description: name is required
        assert:
          - {type: error, value: "missing required argument 'name'"}
"""
BYE_TESTS = """
    command: bye
    tests:
      - description: says goodbye
        assert:
          - {type: icontains, value: GOODBYE}
"""
COVERAGE = '<?xml version="1.0" ?>\n<coverage version="7.6" line-rate="{rate}" branch-rate="0">' \
           "<packages/></coverage>\n"


def files(**extra: str) -> dict[str, str]:
    return {"commands/people/greet.md": GREET, "commands/people/bye.md": BYE,
            "tests/greet.yaml": GREET_TESTS, **extra}


def run_gate(root: Path, **options: object):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    ctx = GateContext(root, load_library(root), options, messages.append)
    result = gate.run(ctx)
    assert messages, "the gate reports progress"
    return result


def metric(result, name: str) -> float:  # type: ignore[no-untyped-def]
    return next(m.value for m in result.metrics if m.name == name)


def test_all_commands_tested_and_passing(write_library: WriteLibrary) -> None:
    root = write_library(files(**{"tests/bye.yaml": BYE_TESTS}))
    result = run_gate(root)
    assert result.status is Status.PASSED
    assert metric(result, "commands whose prompt tests all pass") == 100.0
    assert metric(result, "failing prompt tests") == 0
    assert result.findings == ()
    assert result.data["passed"] == 3
    assert result.data["tested_commands"] == ["bye", "greet"]
    assert result.details[0].startswith("3 passed, 0 failed")


def test_untested_command_lowers_the_share(write_library: WriteLibrary) -> None:
    """One command of two untested is 50%: FAILED under the 80% floor, PARTIAL above it."""
    root = write_library(files())
    result = run_gate(root)
    assert metric(result, "commands whose prompt tests all pass") == 50.0
    assert result.status is Status.FAILED
    (finding,) = result.findings
    assert (finding.code, finding.path, finding.severity.value) == (
        "T104", "commands/people/bye.md", "warning")
    settings = "[gates.tests]\ntested_commands_floor = 0.5\n"
    lenient = write_library(files(**{"tallinn.toml": settings}))
    assert run_gate(lenient).status is Status.PARTIAL


def test_failing_case_is_a_blocking_finding_at_its_assertion(write_library: WriteLibrary) -> None:
    root = write_library(files(**{"tests/bye.yaml": """
        command: bye
        tests:
          - description: says hello
            assert:
              - {type: contains, value: Hello}
    """}))
    result = run_gate(root)
    assert result.status is Status.FAILED
    assert metric(result, "failing prompt tests") == 1
    assert metric(result, "commands whose prompt tests all pass") == 50.0
    blocking = [str(f) for f in result.blocking]
    assert blocking == [
        "tests/bye.yaml:5:9: T102 says hello: expected the text to contain 'Hello'"]
    (case,) = [c for c in result.data["cases"] if c["outcome"] == "failed"]
    assert case["failures"][0]["detail"].startswith("   1 | Goodbye")


def test_invalid_file_unknown_command_and_missing_snapshot(write_library: WriteLibrary) -> None:
    root = write_library(files(**{
        "tests/bad.yaml": "command: bye\ntests:\n  - descripton: typo\n",
        "tests/other.yaml": """
            tests:
              - {description: ghost, command: gret}
              - description: snap
                command: bye
                assert: [{type: equals, value: snaps/bye.md}]
        """,
    }))
    result = run_gate(root)
    assert result.status is Status.FAILED
    codes = sorted(f.code for f in result.blocking)
    assert codes == ["T101", "T101", "T103", "T105"]
    messages = " | ".join(f.message for f in result.findings)
    assert "unknown key 'descripton' (did you mean 'description'?)" in messages
    assert "unknown command 'gret' (did you mean greet?)" in messages
    assert any("problems in test files" in d for d in result.details)


@pytest.mark.parametrize(("rate", "status"), [("0.91", Status.PASSED), ("0.5", Status.FAILED)])
def test_coverage_report_is_graded(write_library: WriteLibrary, tmp_path: Path, rate: str,
                                   status: Status) -> None:
    root = write_library(files(**{"tests/bye.yaml": BYE_TESTS}))
    report = tmp_path / "coverage.xml"
    report.write_text(COVERAGE.format(rate=rate), "utf-8")
    result = run_gate(root, coverage_xml=report)
    assert metric(result, "code line coverage") == pytest.approx(float(rate) * 100)
    assert result.status is status


def test_coverage_report_from_settings_with_a_floor(write_library: WriteLibrary) -> None:
    root = write_library(files(**{
        "tests/bye.yaml": BYE_TESTS,
        "cov/coverage.xml": COVERAGE.format(rate="0.8"),
        "tallinn.toml": '[gates.tests]\ncoverage_xml = "cov/coverage.xml"\n'
                        "line_coverage_floor = 0.75\n",
    }))
    result = run_gate(root)
    assert metric(result, "code line coverage") == 80.0
    assert result.status is Status.PARTIAL


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read coverage report"),
        ("<coverage", "is not valid XML"),
        ("<report line-rate='1'/>", "is not a Cobertura coverage report"),
        ("<coverage line-rate='lots'/>", "is not a number"),
        ("<coverage line-rate='1.5'/>", "is outside 0..1"),
        ('<!DOCTYPE x [<!ENTITY a "b">]><coverage line-rate="&a;"/>', "is not valid XML"),
    ],
)
def test_unreadable_coverage_report(write_library: WriteLibrary, tmp_path: Path,
                                    content: str | None, message: str) -> None:
    """A missing, broken, foreign or hostile report is a T106 finding, never a crash."""
    root = write_library(files(**{"tests/bye.yaml": BYE_TESTS}))
    report = tmp_path / "coverage.xml"
    if content is not None:
        report.write_text(content, "utf-8")
    result = run_gate(root, coverage_xml=report)
    (finding,) = result.findings
    assert finding.code == "T106"
    assert message in finding.message
    assert result.status is Status.FAILED


def test_invalid_settings_raise_a_config_error(write_library: WriteLibrary) -> None:
    root = write_library(files(**{"tallinn.toml": "[gates.tests]\nmin_tested = 1\n"}))
    with pytest.raises(LibraryError) as caught:
        run_gate(root)
    assert caught.value.diagnostics[0].code == "V106"


def test_empty_library_is_skipped(write_library: WriteLibrary) -> None:
    root = write_library({"components/a/b.md": "---\ndescription: A component of note\n---\nx\n"})
    assert run_gate(root).status is Status.SKIPPED


@pytest.mark.skipif(not (starter_path() / "tests").is_dir(),
                    reason="the starter library has no prompt tests yet")
def test_starter_library_passes_every_test() -> None:
    """The bundled starter: every command has a passing test and no test fails."""
    root = starter_path()
    result = run_gate(root)
    failed = [f"{c['id']}: {c['failures']}" for c in result.data["cases"]
              if c["outcome"] == "failed"]
    assert failed == []
    assert result.findings == ()
    assert metric(result, "commands whose prompt tests all pass") == 100.0
    assert result.status is Status.PASSED


# --- tallinn test ---------------------------------------------------------------------


def test_cli_passes_and_prints_each_case(write_library: WriteLibrary) -> None:
    root = write_library(files(**{"tests/bye.yaml": BYE_TESTS}))
    result = runner.invoke(app, ["test", "--library", str(root)])
    assert result.exit_code == 0, result.stderr
    assert "tests/greet.yaml::uses the name [greet] PASSED" in result.stderr
    assert "3 passed" in result.stderr
    assert "commands whose cases all pass: 2 of 2 (100%" in result.stderr
    assert result.stdout == ""


def test_cli_failure_shows_a_diff_and_exits_1(write_library: WriteLibrary) -> None:
    root = write_library(files(**{
        "tests/bye.yaml": textwrap.dedent(BYE_TESTS) + "  - description: snapshot\n"
                                      "    assert: [{type: equals, value: snap/bye.md}]\n",
        "tests/snap/bye.md": "Goodbye, all.\n",
    }))
    result = runner.invoke(app, ["test", "-L", str(root)])
    assert result.exit_code == 1
    assert "tests/bye.yaml::snapshot [bye] FAILED" in result.stderr
    assert "-Goodbye, all." in result.stderr
    assert "+Goodbye, everyone." in result.stderr
    assert "1 failed, 3 passed" in result.stderr


def test_cli_update_snapshots_then_pass(write_library: WriteLibrary) -> None:
    root = write_library(files(**{
        "tests/bye.yaml": textwrap.dedent(BYE_TESTS) + "  - description: snapshot\n"
                                      "    assert: [{type: equals, value: snap/bye.md}]\n",
    }))
    assert runner.invoke(app, ["test", "-L", str(root)]).exit_code == 1
    updated = runner.invoke(app, ["test", "-L", str(root), "--update-snapshots"])
    assert updated.exit_code == 0, updated.stderr
    assert "(wrote tests/snap/bye.md)" in updated.stderr
    assert (root / "tests" / "snap" / "bye.md").read_text("utf-8") == "Goodbye, everyone.\n"
    assert runner.invoke(app, ["test", "-L", str(root)]).exit_code == 0


def test_cli_json_and_keyword(write_library: WriteLibrary) -> None:
    root = write_library(files(**{"tests/bye.yaml": BYE_TESTS}))
    result = runner.invoke(app, ["test", "-L", str(root), "--json", "-k", "greet"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["passed"], data["failed"], data["deselected"]) == (2, 0, 1)
    assert [c["id"] for c in data["cases"]] == ["tests/greet.yaml::uses the name",
                                                "tests/greet.yaml::name is required"]
    assert data["metrics"][0]["name"] == "commands whose prompt tests all pass"
    nothing = runner.invoke(app, ["test", "-L", str(root), "-k", "zzz"])
    assert nothing.exit_code == 2
    assert "no prompt test matches -k 'zzz'" in nothing.stderr


def test_cli_reports_invalid_files_and_coverage(write_library: WriteLibrary,
                                                tmp_path: Path) -> None:
    root = write_library(files(**{"tests/bad.yaml": "tests: [\n"}))
    broken = runner.invoke(app, ["test", "-L", str(root)])
    assert broken.exit_code == 1
    assert "tests/bad.yaml:2:1: T101 invalid YAML" in broken.stderr
    assert "1 error in test files" in broken.stderr
    good = write_library(files(**{"tests/bye.yaml": BYE_TESTS}))
    report = tmp_path / "coverage.xml"
    report.write_text(COVERAGE.format(rate="0.9"), "utf-8")
    covered = runner.invoke(app, ["test", "-L", str(good), "--coverage-xml", str(report)])
    assert covered.exit_code == 0, covered.stderr
    assert "code line coverage: 90%" in covered.stderr
    report.write_text(COVERAGE.format(rate="0.5"), "utf-8")
    low = runner.invoke(app, ["test", "-L", str(good), "--coverage-xml", str(report)])
    assert low.exit_code == 1
    missing = runner.invoke(app, ["test", "-L", str(good), "--coverage-xml", str(tmp_path / "x")])
    assert missing.exit_code == 1
    assert "cannot read coverage report" in missing.stderr


def test_cli_bad_settings_exit_2(write_library: WriteLibrary) -> None:
    root = write_library(files(**{"tallinn.toml": "[gates.tests]\nmax_failures = -1\n"}))
    result = runner.invoke(app, ["test", "-L", str(root)])
    assert result.exit_code == 2
    assert "invalid settings in [gates.tests]" in result.stderr
