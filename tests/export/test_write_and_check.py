"""Writing an export and checking it for drift, through the command line as a user runs it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.export.conftest import EDGE_LIBRARY
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.export import TARGETS, ExportError, check, manifest_file, write_export
from tallinn.export.manifest import read
from tallinn.library import load_library

runner = CliRunner()


def _export(*args: str) -> tuple[int, str, str]:
    done = runner.invoke(app, ["export", *args])
    return done.exit_code, done.stdout, done.stderr


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A copy of the edge library, free to edit."""
    return Path(shutil.copytree(EDGE_LIBRARY, tmp_path / "edge"))


def test_an_unchanged_export_checks_silently(library: Path, tmp_path: Path) -> None:
    """`--check` on a fresh export prints nothing and exits 0."""
    out = tmp_path / "out"
    code, _, stderr = _export("claude-skills", "--out", str(out), "--library", str(library))
    assert code == 0, stderr
    assert "5 file(s)" in stderr
    code, stdout, stderr = _export("--check", str(out), "--library", str(library))
    assert (code, stdout, stderr) == (0, "", "")


def test_check_names_an_edited_file_a_missing_file_and_a_changed_source(
        library: Path, tmp_path: Path) -> None:
    """Hand edits, deletions and a changed source are each drift: exit 1, each named."""
    out = tmp_path / "out"
    assert _export("opencode", "--out", str(out), "--library", str(library))[0] == 0
    (out / ".opencode/commands/top.md").write_text("edited\n", encoding="utf-8")
    (out / ".opencode/commands/adjacent.md").unlink()
    code, stdout, _ = _export("--check", str(out), "--library", str(library))
    assert code == 1
    assert stdout.splitlines() == [".opencode/commands/adjacent.md: missing",
                                   ".opencode/commands/top.md: edited"]
    source = library / "commands/top.md"
    source.write_text(source.read_text(encoding="utf-8") + "Be brief.\n", encoding="utf-8")
    code, stdout, _ = _export("--check", str(out), "--library", str(library), "--json")
    assert code == 1
    kinds = [item["kind"] for item in json.loads(stdout)]
    assert kinds == ["missing", "edited", "source changed"]


def test_a_second_export_removes_what_it_no_longer_writes_and_nothing_else(
        library: Path, tmp_path: Path) -> None:
    """A command removed from the source loses its exported file; a file of the user's own in
    the folder is kept, and folders left empty go."""
    out = tmp_path / "out"
    assert _export("claude-skills", "--out", str(out), "--library", str(library))[0] == 0
    mine = out / ".claude/skills/my-own/SKILL.md"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine\n", encoding="utf-8")
    (library / "commands/edge/adjacent.md").unlink()
    code, stdout, _ = _export("claude-skills", "--out", str(out), "--library", str(library),
                              "--json")
    assert code == 0
    report = json.loads(stdout)
    assert report["removed"] == [".claude/skills/adjacent/SKILL.md"]
    assert report["written"] == []  # the other files are unchanged, so not rewritten
    assert not (out / ".claude/skills/adjacent").exists()
    assert mine.read_text(encoding="utf-8") == "mine\n"
    manifest = read(out, "claude-skills")
    assert manifest is not None
    assert ".claude/skills/adjacent/SKILL.md" not in manifest.files


def test_a_file_no_manifest_owns_is_never_overwritten(library: Path, tmp_path: Path) -> None:
    """An export that would overwrite a file it does not own writes nothing and exits 1,
    naming the file; `--force` takes it over."""
    out = tmp_path / "out"
    theirs = out / ".cursor/commands/top.md"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("theirs\n", encoding="utf-8")
    code, _, stderr = _export("cursor", "--out", str(out), "--library", str(library))
    assert code == 1
    assert "top.md" in stderr
    assert "not owned" in stderr
    assert theirs.read_text(encoding="utf-8") == "theirs\n"
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["top.md"]
    code, _, _ = _export("cursor", "--out", str(out), "--library", str(library), "--force")
    assert code == 0
    assert theirs.read_text(encoding="utf-8") == "Say hello.\n"


def test_strict_makes_a_loss_an_error_and_writes_nothing(library: Path, tmp_path: Path) -> None:
    """With `--strict`, a target that cannot carry everything exits 1 and writes no file; the
    message lists what would be lost, command by command."""
    out = tmp_path / "out"
    code, _, stderr = _export("gemini", "--out", str(out), "--library", str(library),
                              "--strict")
    assert code == 1
    assert "error: gemini: enum-default: lost" in stderr
    assert "enums and defaults are not checked" in stderr
    assert not out.exists() or not any(out.iterdir())


def test_a_lossless_export_passes_strict(write_library, tmp_path: Path) -> None:
    """A command the target carries whole exports under `--strict` without a warning."""
    root = write_library({"commands/a/hello.md": """
        ---
        description: Greet someone
        argument-hint: "<who>"
        arguments:
          - {name: who, description: Who to greet, required: true}
        ---
        Say hello to {{who}}.
        """})
    code, _, stderr = _export("claude-commands", "--out", str(tmp_path / "o"), "--library",
                              str(root), "--strict")
    assert code == 0, stderr
    assert "warning" not in stderr
    text = (tmp_path / "o/.claude/commands/a/hello.md").read_text(encoding="utf-8")
    assert text.endswith("---\nSay hello to $who.\n")


def test_usage_errors_exit_2(library: Path, tmp_path: Path) -> None:
    """An unknown target, a missing --out, or --check with a target are usage errors."""
    assert _export("vim", "--out", str(tmp_path), "--library", str(library))[0] == 2
    code, _, stderr = _export("claude-skills", "--library", str(library))
    assert code == 2
    assert "--out" in stderr
    assert _export("cursor", "--check", str(tmp_path))[0] == 2


def test_a_library_with_errors_is_not_exported(write_library, tmp_path: Path) -> None:
    """A source with errors exits 1 with each error as path:line:col, and nothing written."""
    root = write_library({"commands/a/bad.md": """
        ---
        description: Broken
        ---
        Use {{missing}}.
        """})
    code, stdout, _ = _export("cursor", "--out", str(tmp_path / "o"), "--library", str(root))
    assert code == 1
    assert "commands/a/bad.md:4:5: V301" in stdout
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("manifest", "message"), [
    ("{not json", "not valid JSON"),
    ('{"tallinn": 1}', "'tallinn' must be a string"),
    (None, "unsafe path '../victim.txt'"),
    (None, "unsafe path '/etc/passwd'"),
])
def test_a_hostile_manifest_is_refused_and_deletes_nothing(
        library: Path, tmp_path: Path, manifest: str | None, message: str) -> None:
    """A manifest that is not JSON, not a manifest, or names a path outside its folder is an
    error with its place; no file outside the folder is touched."""
    out = tmp_path / "out"
    assert _export("cursor", "--out", str(out), "--library", str(library))[0] == 0
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n", encoding="utf-8")
    recorded = out / manifest_file("cursor")
    if manifest is None:
        data = json.loads(recorded.read_text(encoding="utf-8"))
        unsafe = message.split("'")[1]
        data["files"][unsafe] = "0" * 64
        manifest = json.dumps(data)
    recorded.write_text(manifest, encoding="utf-8")
    code, _, stderr = _export("cursor", "--out", str(out), "--library", str(library))
    assert code == 1
    assert message in stderr
    assert str(recorded) in stderr
    assert victim.read_text(encoding="utf-8") == "keep\n"
    with pytest.raises(ExportError, match="E001"):
        check(out, None)


def test_a_symbolic_link_in_the_folder_is_never_followed(library: Path, tmp_path: Path) -> None:
    """An exported path through a symbolic link (which could point anywhere) is refused."""
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / ".cursor").mkdir(parents=True)
    (out / ".cursor/commands").symlink_to(elsewhere)
    lib = load_library(library)
    exporter = TARGETS["cursor"]
    with pytest.raises(ExportError, match="symbolic link"):
        write_export(exporter, lib, exporter.build(lib), out, force=True)
    assert list(elsewhere.iterdir()) == []


def test_the_malformed_manifest_error_gives_line_and_column(tmp_path: Path) -> None:
    """A manifest that is not JSON is reported at the line and column of the mistake."""
    recorded = tmp_path / manifest_file("gemini")
    recorded.parent.mkdir()
    recorded.write_text('{\n  "files": ,\n}\n', encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        check(tmp_path, None)
    assert str(raised.value).startswith(f"{recorded}:2:12: E001 not valid JSON")


def test_check_of_a_folder_without_manifest_is_an_error(tmp_path: Path) -> None:
    """`--check` on a folder no export wrote exits 1 and says so."""
    code, _, stderr = _export("--check", str(tmp_path))
    assert code == 1
    assert "no export manifest" in stderr


def test_several_targets_share_one_folder(library: Path, tmp_path: Path) -> None:
    """Exports of different targets into one folder (a repository's root) keep a manifest
    each: exporting one never removes another's files, and the check covers them all."""
    out = tmp_path / "repo"
    for target in ("claude-skills", "copilot", "gemini"):
        assert _export(target, "--out", str(out), "--library", str(library))[0] == 0
    assert _export("claude-skills", "--out", str(out), "--library", str(library))[0] == 0
    assert sorted(p.name for p in (out / ".tallinn-export").iterdir()) == [
        "claude-skills.json", "copilot.json", "gemini.json"]
    assert (out / ".github/prompts/top.prompt.md").is_file()
    assert (out / ".gemini/commands/top.toml").is_file()
    assert _export("--check", str(out), "--library", str(library)) == (0, "", "")
    (out / ".gemini/commands/top.toml").unlink()
    code, stdout, _ = _export("--check", str(out), "--library", str(library), "--json")
    assert code == 1
    assert json.loads(stdout) == [{"kind": "missing", "path": ".gemini/commands/top.toml",
                                   "target": "gemini", "detail": ""}]


def test_a_file_of_another_targets_export_is_never_taken(library: Path, tmp_path: Path) -> None:
    """A path that another target's manifest owns is refused, even with `--force`."""
    out = tmp_path / "out"
    assert _export("cursor", "--out", str(out), "--library", str(library))[0] == 0
    recorded = out / manifest_file("cursor")
    data = json.loads(recorded.read_text(encoding="utf-8"))
    data["files"][".claude/commands/top.md"] = "0" * 64
    recorded.write_text(json.dumps(data), encoding="utf-8")
    code, _, stderr = _export("claude-commands", "--out", str(out), "--library", str(library),
                              "--force")
    assert code == 1
    assert "belongs to the cursor export here" in stderr
    assert not (out / ".claude").exists()


def test_a_manifest_folder_with_a_stranger_is_refused(library: Path, tmp_path: Path) -> None:
    """A file in the manifest folder that is not `<target>.json`, or a manifest that names
    another target than its file, is an error, not ignored."""
    out = tmp_path / "out"
    assert _export("cursor", "--out", str(out), "--library", str(library))[0] == 0
    stranger = out / ".tallinn-export/notes.txt"
    stranger.write_text("hello\n", encoding="utf-8")
    code, _, stderr = _export("--check", str(out), "--library", str(library))
    assert code == 1
    assert "is not an export manifest" in stderr
    stranger.unlink()
    (out / manifest_file("cursor")).rename(out / manifest_file("opencode"))
    code, _, stderr = _export("--check", str(out), "--library", str(library))
    assert code == 1
    assert "names target 'cursor', not 'opencode'" in stderr
