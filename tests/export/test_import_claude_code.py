"""`claude-code` import: a repository's `.claude/` becomes a native library, and an export of
that library gives back the same prompts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tests.export.agents import claude_substitute, split_front_matter
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.importers import IMPORTERS, FindingLevel, ImporterError, importer
from tallinn.importers.claude_code import convert
from tallinn.library import load_library, render

SAMPLE = Path(__file__).resolve().parent / "claude-sample"
CARRIED = ("description", "argument-hint", "allowed-tools", "model")
runner = CliRunner()


def _originals() -> dict[str, Path]:
    claude = SAMPLE / ".claude"
    return {p.relative_to(SAMPLE).as_posix(): p for p in sorted(claude.rglob("*.md"))
            if "references" not in p.parts}


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    out = tmp_path / "library"
    report = convert(SAMPLE, out)
    assert report.errors == []
    return out


def test_the_import_is_a_library_that_loads_without_errors(imported: Path) -> None:
    """Every command and skill becomes a command in the category of its folder, arguments
    declared from `arguments:` or `argument-hint`."""
    library = load_library(imported)
    assert library.errors == ()
    assert sorted((c.name, c.category) for c in library.commands.values()) == [
        ("a11y-check", "skills"), ("ask", "general"), ("audit", "review/deep"),
        ("commit", "git"), ("explain", "skills"), ("legacy", "general"), ("scaffold", "skills"),
        ("status", "git"),
    ]
    legacy = library.commands["legacy"]
    assert [a.name for a in legacy.arguments] == ["file", "arg1"]
    commit = library.commands["commit"]
    assert [(a.name, a.required) for a in commit.arguments] == [("scope", True),
                                                                ("style", False)]
    assert commit.allowed_tools == ("Bash(git diff:*)", "Bash(git log:*)")
    assert commit.model == "haiku"
    assert render(library, commit, {"scope": "api", "style": "terse"}).startswith(
        "Write a commit message for the change in api, in the terse style.\n"
        "Keep the subject under 50 characters; a price like $5 stays as written.")
    audit = library.commands["audit"]
    assert render(library, audit, {"module": "auth"}) == (
        "Audit `auth` in depth. Templates like {{name}} and <include component=\"x\"/> are "
        "literal here.\n")
    assert library.commands["ask"].arguments == ()
    assert library.commands["ask"].description.startswith("Answer this question")


def test_what_only_claude_code_does_is_reported_with_its_place(tmp_path: Path) -> None:
    """Shell commands, file includes, unknown keys, skill files and missing descriptions are
    findings with file, line and column; nothing is dropped silently."""
    report = convert(SAMPLE, tmp_path / "library")
    found = {(f.code, f.path, f.line, f.col) for f in report.findings}
    assert ("I204", ".claude/commands/git/status.md", 5, 24) in found  # !`git status`
    assert ("I204", ".claude/commands/git/status.md", 5, 55) in found  # @README.md
    assert ("I205", ".claude/commands/ask.md", 1, 1) in found
    assert ("I211", ".claude/commands/legacy.md", 1, 1) in found
    messages = [str(f) for f in report.findings]
    assert any("'context' is not carried" in m for m in messages)
    assert any("references/style.md of the skill is not carried" in m for m in messages)
    assert all(f.level is not FindingLevel.ERROR for f in report.findings)
    clean = {f.source for f in report.files if f.clean}
    assert ".claude/commands/git/commit.md" in clean
    assert ".claude/commands/git/status.md" not in clean


def test_a_broken_file_is_an_error_finding_and_the_rest_is_imported(tmp_path: Path) -> None:
    """Front matter that is not YAML is reported at its line and column; other files import."""
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo)
    (repo / ".claude/commands/bad.md").write_text("---\ndescription: [unclosed\n---\nx\n",
                                                  encoding="utf-8")
    report = convert(repo, tmp_path / "library")
    [error] = report.errors
    assert str(error).startswith(".claude/commands/bad.md:2:23: I201 front matter is not valid")
    assert "bad" not in load_library(tmp_path / "library").commands
    assert len(load_library(tmp_path / "library").commands) == 8


def test_the_import_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    """An import never writes over an existing library, and needs a .claude/ folder."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out/keep.md").write_text("mine\n", encoding="utf-8")
    with pytest.raises(ImporterError, match="not empty"):
        convert(SAMPLE, tmp_path / "out")
    with pytest.raises(ImporterError, match=r"no \.claude/ folder"):
        convert(tmp_path / "out", tmp_path / "new")
    assert IMPORTERS["claude-code"] == "tallinn.importers.claude_code"
    assert importer("claude-code").convert is convert
    with pytest.raises(ImporterError, match="unknown import format"):
        importer("nope")


def test_an_export_of_the_import_gives_back_the_same_prompts(imported: Path,
                                                             tmp_path: Path) -> None:
    """Through `tallinn export`, every command and skill comes back at its own path, with
    the same front matter and a body that Claude Code substitutes to the same text; only the
    shell command and file include the import reported come back inert, reported again."""
    out = tmp_path / "export"
    for target in ("claude-commands", "claude-skills"):
        done = runner.invoke(app, ["export", target, "--out", str(out / target),
                                   "--library", str(imported)])
        assert done.exit_code == 0, done.stderr
    assert "status: lost literal '!`'" in done.stderr
    for rel, original in _originals().items():
        skill = rel.startswith(".claude/skills/")
        exported = out / ("claude-skills" if skill else "claude-commands") / rel
        assert exported.is_file(), rel
        text = original.read_text(encoding="utf-8")
        before, body = split_front_matter(text) if text.startswith("---\n") else ({}, text)
        after, exported_body = split_front_matter(exported.read_text(encoding="utf-8"))
        for key in CARRIED:
            if key in before:
                want = before[key]
                if key == "argument-hint" and isinstance(want, list):
                    want = " ".join(f"[{v}]" for v in want)
                if key == "allowed-tools" and isinstance(want, list):
                    want = ", ".join(want)
                assert after[key] == want, (rel, key)
        assert after["disable-model-invocation"] == bool(
            before.get("disable-model-invocation", False)), rel
        original_names = before.get("arguments", [])
        if isinstance(original_names, str):
            original_names = original_names.split()
        if rel == ".claude/commands/git/status.md":
            body = body.replace("!`", "！`").replace("@README", "＠README")
        words = ["first", "second"]
        assert claude_substitute(exported_body, words, after.get("arguments", [])) == \
            claude_substitute(body, words, original_names), rel


def test_a_symbolic_link_is_not_followed(tmp_path: Path) -> None:
    """A command file or folder, or a skill folder, that is a symbolic link (it could lead out
    of the repository, or loop) is reported and not read."""
    repo = tmp_path / "repo"
    shutil.copytree(SAMPLE, repo)
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "SKILL.md").write_text("---\ndescription: Secret\n---\nsecret text\n",
                                     encoding="utf-8")
    (repo / ".claude/commands/leak.md").symlink_to(secret / "SKILL.md")
    (repo / ".claude/commands/loop").symlink_to(repo / ".claude/commands")
    (repo / ".claude/skills/leak").symlink_to(secret)
    report = convert(repo, tmp_path / "library")
    linked = sorted(f.path for f in report.findings if f.code == "I212")
    assert linked == [".claude/commands/leak.md", ".claude/commands/loop",
                      ".claude/skills/leak/SKILL.md"]
    library = load_library(tmp_path / "library")
    assert "leak" not in library.commands
    assert not any("secret text" in c.source for c in library.commands.values())
    assert len(library.commands) == 8
