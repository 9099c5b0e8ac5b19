"""`tallinn validate`: gate 1 alone from the command line, with --fix and --json."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tallinn.cli import app

runner = CliRunner()
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tallinn-2025-07"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")

FILES = {
    "commands/a/good.md": "---\ndescription: Good\n---\n<role>Reviewer</role>\n",
    "commands/a/colon.md": "---\ndescription: Review code: carefully\n---\nBody\n",
    "commands/a/tags.md": "---\ndescription: Tags\n---\n<a>\n<b>text</a>\n",
}


def hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_clean_library_exits_0(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/good.md": FILES["commands/a/good.md"]})
    result = runner.invoke(app, ["validate", "--library", str(root)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "1 file checked: 0 findings" in " ".join(result.stderr.split())


def test_findings_are_printed_one_per_line_and_exit_1(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library(FILES)
    result = runner.invoke(app, ["validate", "-L", str(root)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "commands/a/colon.md:2:25: V102 the value of 'description' contains ': ', which YAML "
        "reads as a new key; quote the whole value: description: \"...\"",
        "commands/a/tags.md:5:1: V401 <b> is never closed: add </b>, or write `<b>` in "
        "backticks if it is not a tag",
    ]
    assert "1 fixable with --fix" in " ".join(result.stderr.split())
    assert runner.invoke(app, ["validate", "-L", str(root), "--exit-zero"]).exit_code == 0


def test_json_output(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library(FILES)
    result = runner.invoke(app, ["validate", "-L", str(root), "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert (data["files"], data["errors"], data["warnings"]) == (3, 2, 0)
    first = data["findings"][0]
    assert first["code"] == "V102"
    assert first["fix"] == {"description": "quote the value of 'description'", "safe": True}
    assert data["fixed"] == []
    assert data["restored"] == []
    assert data["skipped"] == []


def test_fix_applies_safe_fixes_says_so_and_touches_nothing_else(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library(FILES)
    before = hashes(root)
    result = runner.invoke(app, ["validate", "-L", str(root), "--fix"])
    after = hashes(root)
    assert {p for p in before if before[p] != after[p]} == {"commands/a/colon.md"}
    assert "fixed commands/a/colon.md:2:25: V102 quote the value of 'description'" in (
        " ".join(result.stderr.split()))
    assert result.exit_code == 1  # the unclosed tag remains: its fix is unsafe
    assert [line.split(" ")[1] for line in result.stdout.splitlines()] == ["V401"]


def test_fix_with_unsafe_fixes_and_json(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library(FILES)
    result = runner.invoke(app, ["validate", "-L", str(root), "--fix", "--unsafe-fixes",
                                 "--json"])
    assert result.exit_code == 1  # <b>text</a> inside <a>: the fix cannot know where </b> goes
    data = json.loads(result.stdout)
    assert [f["code"] for f in data["fixed"]] == ["V102"]


def test_unsafe_fix_closes_a_one_line_element(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/x.md": "---\ndescription: X\n---\n<role>Reviewer\n"})
    hint = runner.invoke(app, ["validate", "-L", str(root)])
    assert "1 more with --fix --unsafe-fixes" in " ".join(hint.stderr.split())
    result = runner.invoke(app, ["validate", "-L", str(root), "--fix", "--unsafe-fixes"])
    assert result.exit_code == 0, result.output
    assert (root / "commands/a/x.md").read_text().endswith("<role>Reviewer</role>\n")


def test_invalid_settings_exit_2(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({**FILES, "tallinn.toml": "[gates.xml]\nnope = 1\n"})
    result = runner.invoke(app, ["validate", "-L", str(root)])
    assert result.exit_code == 2
    assert "[gates.xml] nope" in result.stderr


@needs_corpus
def test_validate_the_2025_corpus_and_fix_changes_nothing(tmp_path: Path) -> None:
    """The corpus has no safe fix: --fix leaves every file byte-identical."""
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    before = hashes(copy)
    result = runner.invoke(app, ["validate", "-L", str(copy), "--fix", "--json"])
    assert result.exit_code == 1
    assert hashes(copy) == before
    data = json.loads(result.stdout)
    assert data["fixed"] == []
    xml_errors = sorted({f["path"] for f in data["findings"]
                         if f["code"] in ("V401", "V402", "V403", "V404", "V405")})
    assert xml_errors == ["components/quality/framework-validation.md",
                          "components/validation/xml-structure.md"]
    assert sum(f["code"] == "V107" for f in data["findings"]) == 4


def test_fix_reports_what_it_uncovered_and_files_it_would_not_touch(write_library) -> None:  # type: ignore[no-untyped-def]
    """A fix that lets the front matter parse is kept though the schema then finds errors; a
    file with mixed newlines is not fixed, and the messages say both."""
    root = write_library({
        "commands/a/worse.md": "---\ndescription: a: b\ncritical: maybe\ntags: 3\n---\nBody\n",
        "commands/a/mixed.md": "placeholder",
    })
    (root / "commands/a/mixed.md").write_bytes(b"---\r\ndescription: a: b\n---\nBody\n")
    before = hashes(root)
    result = runner.invoke(app, ["validate", "-L", str(root), "--fix"])
    after = hashes(root)
    assert after["commands/a/mixed.md"] == before["commands/a/mixed.md"]
    assert (root / "commands/a/worse.md").read_text().startswith('---\ndescription: "a: b"\n')
    messages = " ".join(result.stderr.split())
    assert "fixed commands/a/worse.md:2:15: V102 quote the value of 'description'" in messages
    assert ("2 findings in commands/a/worse.md could be checked only once the fixes let the "
            "front matter parse") in messages
    assert "not fixed commands/a/mixed.md: the file mixes CRLF and LF newlines" in messages
    assert "undone" not in messages
    assert result.exit_code == 1
