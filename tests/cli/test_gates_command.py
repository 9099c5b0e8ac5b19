"""`tallinn gates`: exit codes, report formats and destinations, options passed to gates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.gates.readiness_factory import COMMAND, finding, install_gates
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates.base import GateContext, GateResult, Metric, Status

runner = CliRunner()


@pytest.fixture
def lib(write_library: Any) -> Path:
    return Path(write_library({"commands/a/hello.md": COMMAND.replace("{{name}}", "me")}))


def good(ctx: GateContext) -> GateResult:
    ctx.progress("checking <everything>")
    return GateResult("good", "Good", Status.PASSED,
                      metrics=(Metric("score", 100.0, 90.0, "%"),))


def bad(ctx: GateContext) -> GateResult:
    return GateResult("bad", "Bad", Status.FAILED, findings=(finding(),))


@pytest.fixture
def gates(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def spy(ctx: GateContext) -> GateResult:
        seen.update(ctx.options)
        return good(ctx)

    install_gates(monkeypatch, {"good": spy, "bad": bad})
    return seen


def test_go_exits_0_and_prints_the_summary_on_stderr(lib: Path, gates: dict[str, Any]) -> None:
    """All selected gates pass: exit 0, a summary table and GO on stderr, stdout empty."""
    result = runner.invoke(app, ["gates", "-L", str(lib), "--only", "good"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "quality gates" in result.stderr
    row = next(line for line in result.stderr.splitlines() if line.startswith(" good"))
    assert row.split() == ["good", "PASSED", "score", "100%", ">=", "90%", "0", "0"]
    assert "GO: READY" in result.stderr


def test_no_go_exits_1_and_names_the_findings(lib: Path, gates: dict[str, Any]) -> None:
    """A FAILED gate: exit 1, its findings with their places, NO-GO and the reasons."""
    result = runner.invoke(app, ["gates", "-L", str(lib)])
    assert result.exit_code == 1, result.output
    assert "bad: commands/a/x.md:3:5: S101 secret-like token in body" in result.stderr
    assert "NO-GO: NOT READY" in result.stderr
    assert "- bad FAILED: 1 blocking finding" in result.stderr


def test_exit_zero_makes_no_go_advisory(lib: Path, gates: dict[str, Any]) -> None:
    """--exit-zero reports NO-GO but exits 0."""
    result = runner.invoke(app, ["gates", "-L", str(lib), "--exit-zero"])
    assert result.exit_code == 0
    assert "NO-GO" in result.stderr


@pytest.mark.parametrize("args", [["--format", "json"], ["--json"]])
def test_json_goes_to_stdout(lib: Path, gates: dict[str, Any], args: list[str]) -> None:
    """--format json (or --json) without --report prints the JSON report on stdout."""
    result = runner.invoke(app, ["gates", "-L", str(lib), *args])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["decision"]["verdict"] == "NO-GO"
    assert [g["name"] for g in data["gates"]] == ["good", "bad"]


def test_markdown_and_sarif_go_to_stdout(lib: Path, gates: dict[str, Any]) -> None:
    """Markdown and SARIF reports are printed on stdout when no --report is given."""
    markdown = runner.invoke(app, ["gates", "-L", str(lib), "--format", "markdown"])
    assert markdown.stdout.startswith("# Production readiness: ")
    sarif = runner.invoke(app, ["gates", "-L", str(lib), "-f", "sarif"])
    assert json.loads(sarif.stdout)["runs"][0]["results"][0]["ruleId"] == "S101"


@pytest.mark.parametrize(
    ("name", "first"),
    [("report.md", "# Production readiness"), ("report.json", "{"),
     ("out.sarif", "{"), ("report.txt", "Production readiness"), ("report", "Production")],
)
def test_report_file_format_follows_its_suffix(
    lib: Path, gates: dict[str, Any], tmp_path: Path, name: str, first: str
) -> None:
    """--report PATH writes the report there; its suffix picks the format unless --format."""
    target = tmp_path / "out" / name
    result = runner.invoke(app, ["gates", "-L", str(lib), "--report", str(target)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8").startswith(first)
    assert f"report written to {target}" in result.stderr.replace("\n", "")


def test_several_reports_in_one_run(lib: Path, gates: dict[str, Any], tmp_path: Path) -> None:
    """--report may be repeated: one run writes SARIF, Markdown and JSON together."""
    names = ["gates.sarif", "readiness.md", "readiness.json"]
    args = [arg for name in names for arg in ("--report", str(tmp_path / name))]
    result = runner.invoke(app, ["gates", "-L", str(lib), *args])
    assert result.exit_code == 1
    assert json.loads((tmp_path / "gates.sarif").read_text())["version"] == "2.1.0"
    assert (tmp_path / "readiness.md").read_text().startswith("# Production readiness")
    assert json.loads((tmp_path / "readiness.json").read_text())["schema_version"] == 1


def test_explicit_format_wins_over_the_suffix(
    lib: Path, gates: dict[str, Any], tmp_path: Path
) -> None:
    """--format json --report x.md writes JSON."""
    target = tmp_path / "x.md"
    runner.invoke(app, ["gates", "-L", str(lib), "-f", "json", "--report", str(target)])
    assert json.loads(target.read_text(encoding="utf-8"))["schema_version"] == 1


def test_options_reach_the_gates(lib: Path, gates: dict[str, Any], tmp_path: Path) -> None:
    """--baseline, --coverage-xml and --load are passed to gates as ctx.options."""
    baseline = tmp_path / "baseline.json"
    baseline.write_text("{}")
    coverage = tmp_path / "coverage.xml"
    coverage.write_text("<coverage/>")
    result = runner.invoke(app, ["gates", "-L", str(lib), "--only", "good", "--load",
                                 "--baseline", str(baseline), "--coverage-xml", str(coverage)])
    assert result.exit_code == 0, result.output
    driver = gates.pop("load_driver")
    assert gates == {"baseline": baseline, "coverage_xml": coverage, "load": True}
    from tallinn.serve import run_load_test

    assert driver is run_load_test


def test_the_load_driver_is_given_only_with_load(lib: Path, gates: dict[str, Any]) -> None:
    """Without --load the gates get no load driver, so the server package is not needed."""
    result = runner.invoke(app, ["gates", "-L", str(lib), "--only", "good"])
    assert result.exit_code == 0, result.output
    assert gates == {"baseline": None, "coverage_xml": None, "load": False}


def test_load_without_the_server_gives_no_driver(
    lib: Path, gates: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the server package --load still reaches the gates, with no driver to skip on."""
    monkeypatch.setitem(sys.modules, "tallinn.serve", None)
    result = runner.invoke(app, ["gates", "-L", str(lib), "--only", "good", "--load", "--json"])
    assert result.exit_code == 0, result.output
    assert gates == {"baseline": None, "coverage_xml": None, "load": True}
    assert json.loads(result.stdout)["options"] == gates


def test_the_report_lists_options_not_the_load_driver(lib: Path, gates: dict[str, Any]) -> None:
    """The report's options are those given on the command line, not the injected driver."""
    result = runner.invoke(app, ["gates", "-L", str(lib), "--only", "good", "--load", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["options"] == {"baseline": None, "coverage_xml": None,
                                                    "load": True}


@pytest.mark.parametrize(
    ("args", "toml", "message"),
    [
        (["--only", "goood"], "", "no gate named 'goood' (did you mean good?)"),
        ([], "[gates]\nallow_partial = 'sometimes'\n", "invalid settings in [gates];"),
    ],
    ids=["unknown-gate", "bad-settings"],
)
def test_usage_and_config_errors_exit_2_with_one_line(
    write_library: Any, gates: dict[str, Any], args: list[str], toml: str, message: str
) -> None:
    """An unknown gate or invalid [gates] settings: one error line, exit 2, no traceback."""
    lib = write_library({"commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
                         "tallinn.toml": toml})
    result = runner.invoke(app, ["gates", "-L", str(lib), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1


def test_a_missing_library_exits_2(tmp_path: Path, gates: dict[str, Any]) -> None:
    """A folder that is not a library is a usage error."""
    result = runner.invoke(app, ["gates", "-L", str(tmp_path / "nowhere")])
    assert result.exit_code == 2
    assert "library folder not found" in result.stderr


def test_a_missing_baseline_file_is_a_usage_error(lib: Path, gates: dict[str, Any]) -> None:
    """--baseline must name an existing file."""
    result = runner.invoke(app, ["gates", "-L", str(lib), "--baseline", "/no/such/file"])
    assert result.exit_code == 2


def test_crashing_and_partial_gates_are_shown(
    lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashed gate prints its message; many findings are cut to five with a count."""

    def crash(ctx: GateContext) -> GateResult:
        raise RuntimeError("disk on fire")

    def noisy(ctx: GateContext) -> GateResult:
        many = tuple(finding("W1", line=i) for i in range(1, 9))
        return GateResult("noisy", "Noisy", Status.PARTIAL, findings=many)

    install_gates(monkeypatch, {"crash": crash, "noisy": noisy})
    result = runner.invoke(app, ["gates", "-L", str(lib)])
    assert result.exit_code == 1
    assert "crash: gate 'crash' crashed: RuntimeError: disk on fire" in result.stderr
    assert "noisy: ... and 3 more (write them all with --report FILE)" in result.stderr


def test_write_baseline_records_every_finding_and_keeps_reasons(
    lib: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--write-baseline lists each finding; reasons already given in --baseline are kept."""
    from tallinn.gates.base import AcceptedRisk

    kept = finding("S102", message="example key")

    def audit(ctx: GateContext) -> GateResult:
        return GateResult("audit", "Audit", Status.FAILED, findings=(finding(),),
                          accepted=(AcceptedRisk(kept, "a fixture", "baseline"),))

    install_gates(monkeypatch, {"audit": audit})
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"version": 1, "findings": [
        {"code": "S102", "path": "commands/a/x.md", "message": "example key",
         "reason": "a fixture"}]}))
    new = tmp_path / "new.json"
    result = runner.invoke(app, ["gates", "-L", str(lib), "--baseline", str(old),
                                 "--write-baseline", str(new)])
    assert result.exit_code == 1
    assert "baseline of 2 findings written to" in result.stderr
    entries = {e["code"]: e["reason"] for e in json.loads(new.read_text())["findings"]}
    assert entries == {"S101": "TODO: justify", "S102": "a fixture"}
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    failed = runner.invoke(app, ["gates", "-L", str(lib), "--baseline", str(broken),
                                 "--write-baseline", str(new)])
    assert failed.exit_code == 2
    assert "is not valid JSON" in failed.stderr


def test_the_ci_examples_use_only_options_that_exist() -> None:
    """The ready-to-copy CI files parse as YAML and call `tallinn gates` with real options."""
    import re

    import typer.main
    import yaml

    group: Any = typer.main.get_command(app)
    known = {opt for p in group.commands["gates"].params for opt in p.opts}
    examples = Path(__file__).resolve().parents[2] / "examples" / "ci"
    for path in sorted(examples.glob("*.yml")):
        text = path.read_text(encoding="utf-8")
        assert yaml.safe_load(text)
        used = set(re.findall(r"(?<=\s)--[a-z-]+", " ".join(
            line for line in text.splitlines()
            if ("tallinn gates" in line or "--" in line) and "tallinn export" not in line)))
        assert used, path.name
        assert used <= known, (path.name, used - known)
