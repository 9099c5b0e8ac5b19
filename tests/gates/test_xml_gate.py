"""Gate 1, XML and structure validation: findings, figures, status, speed, the 2025 corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tallinn.gates import xml
from tallinn.gates.base import GateContext, GateResult, Status
from tallinn.library import LibraryError, Severity, load_library

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tallinn-2025-07"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")

GOOD = """
---
description: Review a file
arguments:
  - {name: path, description: File, required: true}
---
<role>You are a careful reviewer.</role>
<instructions>
Review `{{path}}`; a < b, `<path>` and <br> are fine.
<include component="shared/rules"/>
</instructions>
"""
RULES = "---\ndescription: Shared rules\n---\n<rules>Be precise.</rules>\n"


def run(root: Path) -> GateResult:
    library = load_library(root)
    return xml.run(GateContext(library.root, library))


def test_a_clean_library_passes(write_library) -> None:  # type: ignore[no-untyped-def]
    result = run(write_library({"commands/a/review.md": GOOD,
                                "components/shared/rules.md": RULES}))
    assert result.status is Status.PASSED
    assert result.findings == ()
    assert [(m.name, m.value, m.threshold) for m in result.metrics] == [
        ("files with errors", 0, 0), ("well-formed files", 100.0, 100.0)]
    assert result.data["files"] == 2
    assert result.data["format"] == "tallinn"
    assert (result.gate, result.title) == ("xml", xml.TITLE)


def test_tag_and_loader_problems_fail_the_gate(write_library) -> None:  # type: ignore[no-untyped-def]
    """Body tags are checked in loaded files and in files the loader left out, the whole
    file when it has no front matter."""
    root = write_library({
        "commands/a/review.md": GOOD.replace("</role>", ""),
        "commands/a/broken.md": "---\ndescription: X\n---\n<a><b></a>\n"
                                '<include component="shared/gone"/>\n',
        "commands/a/yaml.md": "---\ndescription: a: b\n---\n</stray>\n",
        "commands/a/nofm.md": "no front matter <x>\n",
        "components/shared/rules.md": RULES,
    })
    result = run(root)
    assert result.status is Status.FAILED
    found = [(f.path, f.line, f.code) for f in result.findings]
    assert found == [
        ("commands/a/broken.md", 4, "V401"),
        ("commands/a/broken.md", 5, "V201"),
        ("commands/a/nofm.md", 1, "V101"),
        ("commands/a/nofm.md", 1, "V401"),
        ("commands/a/review.md", 6, "V401"),
        ("commands/a/yaml.md", 2, "V102"),
        ("commands/a/yaml.md", 4, "V403"),
    ]
    metrics = {m.name: m for m in result.metrics}
    assert metrics["files with errors"].value == 4
    assert metrics["well-formed files"].value == pytest.approx(100 * 1 / 5)
    assert result.data["dangling_includes"] == {
        "references": 1, "components": 1, "files": 1, "missing": {"shared/gone": 1}}
    assert any("dangling include" in d for d in result.details)
    yaml_fix = next(f for f in result.findings if f.code == "V102").fix
    assert yaml_fix is not None
    assert yaml_fix.safe
    assert result.data["fixable"] == 1


def test_warnings_alone_do_not_fail(write_library) -> None:  # type: ignore[no-untyped-def]
    result = run(write_library({"commands/a/x.md": "---\ndescription: X\nextra: 1\n---\nHi\n"}))
    assert result.status is Status.PASSED
    assert [(f.code, f.severity) for f in result.findings] == [("V104", Severity.WARNING)]
    assert result.data["warnings"] == 1


def test_settings_add_void_elements_and_relax_the_threshold(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: X\n---\nLine<sep>more\n<Sep>\n",
        "tallinn.toml": "[gates.xml]\nvoid_elements = [\"sep\"]\nmax_files_with_errors = 1\n",
    })
    result = run(root)
    assert result.findings == ()
    (root / "tallinn.toml").write_text("[gates.xml]\nmax_files_with_errors = 1\n")
    result = run(root)
    assert [f.code for f in result.findings] == ["V401"]
    assert result.metrics[0].status is Status.PASSED
    assert result.status is Status.FAILED  # an error finding still fails the gate
    (root / "tallinn.toml").write_text("[gates.xml]\nunknown = 1\n")
    with pytest.raises(LibraryError, match=r"\[gates.xml\] unknown"):
        run(root)


def test_duplicate_names_are_listed(write_library) -> None:  # type: ignore[no-untyped-def]
    result = run(write_library({
        "commands/a/x.md": "---\ndescription: X\n---\nHi\n",
        "commands/b/x.md": "---\ndescription: X\n---\nHi\n",
    }))
    assert result.data["duplicate_commands"] == {"x": ["commands/a/x.md", "commands/b/x.md"]}
    assert any(d.startswith("duplicate command names: x (") for d in result.details)


def test_an_unreadable_left_out_file_is_not_scanned(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/x.md": "placeholder"})
    (root / "commands/a/x.md").write_bytes(b"---\n\xff\n---\n<a>\n")
    result = run(root)
    assert [f.code for f in result.findings] == ["V100"]
    assert result.data["files"] == 0
    assert result.metrics[1].value == 100.0


def test_a_thousand_commands_are_each_scanned_once(write_library, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Validating 1,000 commands scans each file's body once (speed is in benchmarks/)."""
    body = GOOD + "\n".join(
        f"<step{i}>Check `item {i}` with care; a < b.</step{i}>" for i in range(20)) + "\n"
    files = {f"commands/c{i % 10}/cmd-{i}.md": body for i in range(1000)}
    files["components/shared/rules.md"] = RULES
    library = load_library(write_library(files))
    assert len(library.commands) == 1000
    scans: list[str] = []
    real_scan = xml.scan

    def counting_scan(text: str, path: str, **options: Any) -> Any:
        scans.append(path)
        return real_scan(text, path, **options)

    monkeypatch.setattr(xml, "scan", counting_scan)
    outcome = xml.check(library)
    assert outcome.findings == ()
    assert len(outcome.files) == 1001
    # The work is one scan per file, each body once, and nothing composed again.
    assert sorted(scans) == sorted(outcome.files)


@needs_corpus
def test_the_2025_corpus() -> None:
    """Exactly the two malformed files, every dangling include, the duplicate names, no crash."""
    result = run(CORPUS)
    assert result.status is Status.FAILED
    assert result.data["format"] == "tallinn-2025"
    structure = sorted({f.path for f in result.findings if f.code in xml.STRUCTURE_CODES})
    assert structure == ["components/quality/framework-validation.md",
                         "components/validation/xml-structure.md"]
    assert result.data["malformed_xml"] == structure
    assert result.data["files"] == 224
    assert result.data["well_formed"] == 222
    dangling = result.data["dangling_includes"]
    assert (dangling["references"], dangling["components"], dangling["files"]) == (99, 85, 41)
    assert sorted(result.data["duplicate_commands"]) == [
        "monitor-alerts", "monitor-dashboard", "monitor-setup", "task"]
    assert result.data["duplicate_commands"]["task"] == [
        "commands/core/task.md", "commands/development/task.md"]
    assert not any(f.path.lower().endswith(("readme.md", "claude.md")) for f in result.findings)


def test_a_2025_file_with_broken_front_matter_is_reported_not_scanned(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: x\n<command_file><a></command_file>\n",
        "commands/a/y.md": "Intro <b>\n<command_file></command_file>\n",
        "tallinn.toml": '[library]\nformat = "tallinn-2025"\n',
    })
    result = run(root)
    assert [(f.path, f.code) for f in result.findings] == [
        ("commands/a/x.md", "V101"), ("commands/a/y.md", "V401")]
    assert result.data["format"] == "tallinn-2025"


@needs_corpus
def test_the_corpus_findings_are_the_same_however_code_spans_are_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On the 2025 corpus, gate 1 finds the same whether code spans are found line by line
    where that is taken, or by markdown-it's block parser in every body."""
    from tallinn.gates.rules.xml import _scan

    library = load_library(CORPUS)
    fast = xml.check(library)
    monkeypatch.setattr(_scan, "line_code_spans", lambda text: None)
    assert xml.check(library) == fast
    assert fast.findings
