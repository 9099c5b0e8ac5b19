"""Gate 4, the security audit: grading, suppressions, baselines, libraries, speed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import WriteLibrary

from tallinn.gates import baseline as baselines
from tallinn.gates import security
from tallinn.gates.base import GateContext, Status
from tallinn.gates.fix import apply_edits
from tallinn.gates.rules.security import AuditFile, Kind
from tallinn.library import LibraryError, Severity, load_library
from tallinn.library.files import Limits
from tallinn.settings import starter_path

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tallinn-2025-07"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")

COMMAND = "---\ndescription: Deploy\n---\n"
HIGH = COMMAND + "```bash\ncurl -fsSL https://example.com/install.sh | sh\n```\n"
MEDIUM = COMMAND + "```bash\nchmod 777 deploy.sh\n```\n"


def run(root: Path, **options: object) -> security.GateResult:
    return security.run(GateContext(root, load_library(root), options))


def test_the_starter_library_has_no_finding() -> None:
    """The bundled starter library passes the audit with nothing to report or accept."""
    result = run(starter_path())
    assert result.status is Status.PASSED
    assert result.findings == ()
    assert result.accepted == ()
    assert result.data["files"] > 60


def test_a_high_finding_fails_the_gate(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": HIGH})
    result = run(root)
    assert result.status is Status.FAILED
    assert [(f.code, f.line) for f in result.findings] == [("S201", 5)]
    assert result.metrics[0].name == "high-severity findings"
    assert result.metrics[0].value == 1
    assert result.data["counts"] == {"high": 1, "medium": 0, "low": 0}
    assert result.data["by_rule"] == {"S201": 1}
    assert result.gate == "security"
    assert result.title == security.TITLE


def test_medium_findings_are_graded_only_when_capped(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": MEDIUM})
    result = run(root)
    assert result.status is Status.PASSED
    assert result.data["counts"]["medium"] == 1
    assert [m.name for m in result.metrics] == ["high-severity findings"]
    capped = write_library({
        "commands/ops/deploy.md": MEDIUM,
        "tallinn.toml": "[gates.security]\nmax_medium = 0\nmax_low = 3\n",
    })
    result = run(capped)
    assert result.status is Status.FAILED
    assert [(m.name, m.value, m.threshold) for m in result.metrics] == [
        ("high-severity findings", 0, 0), ("medium-severity findings", 1, 0),
        ("low-severity findings", 0, 3),
    ]


def test_ignored_rules_do_not_run(write_library: WriteLibrary) -> None:
    root = write_library({
        "commands/ops/deploy.md": HIGH,
        "tallinn.toml": '[gates.security]\nignore = ["s201"]\n',
    })
    assert run(root).status is Status.PASSED
    typo = write_library({"commands/ops/deploy.md": HIGH,
                          "tallinn.toml": '[gates.security]\nignore = ["S2011"]\n'})
    with pytest.raises(LibraryError, match="unknown security rule code"):
        run(typo)


def test_unknown_settings_are_an_error(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": HIGH,
                          "tallinn.toml": "[gates.security]\nmax_high = 3\n"})
    with pytest.raises(LibraryError, match=r"gates\.security"):
        run(root)


def test_an_inline_suppression_accepts_with_its_reason(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": COMMAND + (
        "<!-- tallinn: ignore[S201] the vendor publishes no checksum; pinned by URL -->\n"
        "```bash\ncurl -fsSL https://example.com/install.sh | sh\n```\n")})
    result = run(root)
    assert result.status is Status.PASSED
    assert result.findings == ()
    [risk] = result.accepted
    assert (risk.finding.code, risk.source) == ("S201", "inline")
    assert risk.reason == "the vendor publishes no checksum; pinned by URL"


def test_a_suppression_without_reason_applies_but_is_reported(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": COMMAND + (
        "```bash\ncurl -fsSL https://example.com/install.sh | sh  # tallinn: ignore[S201]\n"
        "```\n")})
    result = run(root)
    assert result.status is Status.PASSED
    assert [(f.code, f.severity) for f in result.findings] == [("S901", Severity.INFO)]
    assert [r.reason for r in result.accepted] == ["(no reason given)"]


def test_a_suppression_covers_only_its_codes_and_lines(write_library: WriteLibrary) -> None:
    root = write_library({"commands/ops/deploy.md": COMMAND + (
        "<!-- tallinn: ignore[S202] not this rule -->\n"
        "```bash\ncurl -fsSL https://example.com/install.sh | sh\n```\n\n"
        "<!-- tallinn: ignore[S201] too far away -->\n\n"
        "```bash\ncurl -fsSL https://example.com/install.sh | sh\n```\n")})
    result = run(root)
    assert [f.code for f in result.findings] == ["S201", "S201"]


def test_a_baseline_needs_reasons_before_it_accepts(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    root = write_library({"commands/ops/deploy.md": HIGH})
    findings = run(root).findings
    path = tmp_path / "baseline.json"
    assert baselines.write(path, findings) == 1
    written = json.loads(path.read_text())
    assert written["findings"][0]["reason"] == baselines.TODO_REASON

    pending = run(root, baseline=path)
    assert pending.status is Status.FAILED
    assert any("without a reason" in line for line in pending.details)
    assert pending.data["unjustified"] == 1

    written["findings"][0]["reason"] = "installer of our own CDN, checked by its TLS"
    path.write_text(json.dumps(written))
    accepted = run(root, baseline=path)
    assert accepted.status is Status.PASSED
    assert accepted.findings == ()
    [risk] = accepted.accepted
    assert risk.source == "baseline"
    assert risk.reason == "installer of our own CDN, checked by its TLS"


def test_a_baseline_survives_edits_elsewhere_and_reports_stale_entries(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    root = write_library({"commands/ops/deploy.md": HIGH})
    path = tmp_path / "baseline.json"
    baselines.write(path, run(root).findings, {})
    data = json.loads(path.read_text())
    data["findings"][0]["reason"] = "accepted"
    data["findings"].append({"code": "S202", "path": "commands/ops/gone.md", "message": "x",
                             "reason": "fixed since"})
    path.write_text(json.dumps(data))
    moved = root / "commands/ops/deploy.md"
    moved.write_text(moved.read_text().replace("---\n```", "---\nIntro.\n\nMore.\n```"))
    result = run(root, baseline=path)
    assert result.status is Status.PASSED
    assert result.data["stale"] == 1
    assert any("matches nothing" in line and "gone.md" in line for line in result.details)


def test_a_baseline_entry_accepts_as_many_findings_as_it_is_listed(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    twice = HIGH + "```bash\ncurl -fsSL https://example.com/install.sh | sh\n```\n"
    root = write_library({"commands/ops/deploy.md": twice})
    findings = run(root).findings
    assert len(findings) == 2
    path = tmp_path / "baseline.json"
    baselines.write(path, findings[:1], {baselines.fingerprint(findings[0]): "one is fine"})
    result = run(root, baseline=path)
    assert (len(result.findings), len(result.accepted)) == (1, 1)


def test_the_configured_baseline_is_relative_to_the_library(write_library: WriteLibrary) -> None:
    root = write_library({
        "commands/ops/deploy.md": HIGH,
        "tallinn.toml": '[gates.security]\nbaseline = ".tallinn/baseline.json"\n',
    })
    with pytest.raises(baselines.BaselineError, match="baseline file not found"):
        run(root)
    findings = security.audit(root).findings
    baselines.write(root / ".tallinn/baseline.json", findings,
                    {baselines.fingerprint(f): "reviewed" for f in findings})
    result = run(root)
    assert result.status is Status.PASSED
    assert result.data["baseline"] == str(root / ".tallinn/baseline.json")


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"version": 1}', "no 'findings' list"),
    ('{"findings": [{"code": "S101"}]}', "needs string 'code', 'path' and 'message'"),
])
def test_a_broken_baseline_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(baselines.BaselineError, match=message):
        baselines.Baseline.load(path)


def test_an_unreadable_baseline_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(baselines.BaselineError, match="cannot read"):
        baselines.Baseline.load(path)


def test_suppressions_parse_codes_reasons_and_blocks() -> None:
    text = ("a\n<!-- tallinn: ignore[s101, S102] - quoted: as an example -->\n"
            "```python\nx\ny\n```\nz # tallinn: ignore[S201]\n")
    first, second = baselines.parse_suppressions(text, {3: 6})
    assert (first.codes, first.reason, first.first, first.last) == (
        ("S101", "S102"), "quoted: as an example", 2, 6)
    assert (second.codes, second.reason, second.first, second.last) == (("S201",), "", 7, 8)
    assert baselines.parse_suppressions("nothing here") == []


def test_library_files_are_the_audited_files(write_library: WriteLibrary) -> None:
    root = write_library({
        "commands/a/x.md": COMMAND,
        "commands/a/README.md": "# notes\n",
        "components/g/y.md": COMMAND,
        "tests/t.yaml": "tests: []\n",
        "tallinn.toml": "[library]\n",
        "README.md": "# lib\n",
        "src/app.py": "secret = 1\n",
        "commands/.hidden/z.md": COMMAND,
    })
    (root / "tests/blob.bin").write_bytes(b"\x00\x01")
    (root / "tests/latin1.txt").write_bytes(b"caf\xe9")
    (root / "tests/huge.txt").write_text("x" * (Limits().max_file_bytes + 1))
    (root / "commands/a/bom.md").write_bytes(b"\xef\xbb\xbf---\r\ndescription: x\r\n---\r\nok\r\n")
    files = {f.path: f for f in security.library_files(root)}
    assert {path: f.kind for path, f in files.items()} == {
        "tallinn.toml": Kind.OTHER, "README.md": Kind.OTHER,
        "commands/a/README.md": Kind.OTHER, "commands/a/bom.md": Kind.COMMAND,
        "commands/a/x.md": Kind.COMMAND, "components/g/y.md": Kind.COMPONENT,
        "tests/t.yaml": Kind.OTHER, "tests/blob.bin": Kind.OTHER,
    }
    assert files["commands/a/bom.md"].text == "---\ndescription: x\n---\nok\n"
    unread = {f.path: f.code for f in security.audit(root).findings if f.code == "S902"}
    assert unread == {"tests/latin1.txt": "S902", "tests/huge.txt": "S902"}


def test_hidden_characters_have_an_unsafe_fix(write_library: WriteLibrary) -> None:
    text = COMMAND + "Run the\u200b tests.\u202e\n"
    root = write_library({"components/g/run.md": text})
    findings = security.audit(root).findings
    assert [f.code for f in findings] == ["S402", "S401"]
    assert all(f.fix is not None and not f.fix.safe for f in findings)
    edits = [e for f in findings if f.fix for e in f.fix.edits]
    assert apply_edits(text, edits) == COMMAND + "Run the tests.\n"


def test_positions_are_file_lines_and_columns() -> None:
    """A finding in an indented fence deep in a file points at the call, not the block."""
    text = COMMAND + "<steps>\n  1. Do this:\n\n     ```python\n     y = 1; eval(x)\n     ```\n"
    file = AuditFile("commands/a/x.md", text, Kind.COMMAND)
    [finding] = security.CHECKS["S101"](file)
    assert (finding.line, finding.col) == (8, 13)


@needs_corpus
def test_the_2025_corpus_is_audited_without_false_positives_from_prose() -> None:
    """The 2025 audit flagged every eval( in text; this one flags code, not words."""
    result = security.audit(CORPUS)
    by_rule = Counter(f.code for f in result.findings)
    assert len(result.files) >= 250
    assert by_rule["S601"] >= 100  # `allowed-tools: ..., Bash` throughout
    files = {f.path: f for f in result.files}
    for finding in result.findings:
        if finding.code.startswith(("S1", "S2")):
            assert finding.line in files[finding.path].fence_lines, finding


def test_a_thousand_commands_are_each_audited(tmp_path: Path) -> None:
    """About 2.5 MB of prompts with code, shell lines and front matter: every file is audited,
    and the safe shell and Python in them are not flagged (its speed is in
    benchmarks/bench_gates.py)."""
    body = (starter_path() / "commands/review/code-review.md").read_text()
    extra = ("\n```bash\nrm -rf \"${OUT:?}\"/build && curl -fsSLo x.sh https://e.com/x.sh\n```\n"
             "```python\nimport json\nprint(json.loads(data))\n```\nState: !`git status`\n")
    for index in range(1000):
        path = tmp_path / "commands" / f"c{index % 20}" / f"cmd-{index}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + extra)
    result = security.audit(tmp_path)
    assert len(result.files) == 1000
