"""`tallinn import tallinn-2025`: a 2025-format library converted into a native one."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import write_files
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.importers import IMPORTERS, MARKER, ImporterError, importer, marker
from tallinn.importers.tallinn_2025 import convert
from tallinn.library import legacy, load_library, render_command

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tallinn-2025-07"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")

COMMAND = """
---
description: Intelligent git commit automation
argument-hint: "[commit_type] [scope]"
allowed-tools: Read, Bash(git diff:*)
---

# /git commit

Notes for people.

<command_file>
  <metadata>
    <name>/git commit</name>
    <purpose>Write commit messages</purpose>
  </metadata>
  <arguments>
    <argument name="commit_type" type="string" required="true">
      <description>The type of commit</description>
    </argument>
    <argument name="scope" type="string" required="false" default="api">
      <description>The scope</description>
    </argument>
  </arguments>
  <examples>
    <example><description>A feature commit</description><usage>/git commit feat ui</usage></example>
    <example><description>With a flag</description><usage>/git commit --amend</usage></example>
  </examples>
  <claude_prompt>
    <prompt>
      <include>components/git/message.md</include>
      <include component="components/git/missing.md"/>
      You are a git expert &amp; careful. Keep {{braces}} as written.
      <![CDATA[Write <include>components/git/message.md</include> literally.]]>
    </prompt>
  </claude_prompt>
  <dependencies><value>git.config</value></dependencies>
</command_file>
"""

COMPONENT = """
<prompt_component>
  <step name="message"><description>Write a conventional commit message.</description></step>
</prompt_component>
"""


def _library(root: Path, extra: dict[str, str] | None = None) -> Path:
    return write_files(root, {
        "commands/git/commit.md": COMMAND,
        "components/git/message.md": COMPONENT,
        "commands/README.md": "# Commands\n",
        "LICENSE": "MIT\n",
        **(extra or {}),
    })


def test_the_table_names_the_converter_and_an_unknown_format_is_refused() -> None:
    """`importer` finds the 2025 converter by name and refuses a name it does not know."""
    assert IMPORTERS["tallinn-2025"] == "tallinn.importers.tallinn_2025"
    assert importer("tallinn-2025").convert is convert
    with pytest.raises(ImporterError, match=r"unknown import format 'nope'.*tallinn-2025"):
        importer("nope")


def test_a_command_is_carried_with_metadata_arguments_examples_and_includes(
    tmp_path: Path,
) -> None:
    """Front matter, arguments, mapped examples, includes and the prompt text reach the
    native file, and the native library renders it."""
    out = tmp_path / "out"
    report = convert(_library(tmp_path / "src"), out)
    library = load_library(out)
    assert not library.errors, library.diagnostics
    command = library.commands["commit"]
    assert command.description == "Intelligent git commit automation"
    assert command.argument_hint == "[commit_type] [scope]"
    assert command.allowed_tools == ("Read", "Bash(git diff:*)")
    assert [(a.name, a.required, a.default) for a in command.arguments] == [
        ("commit_type", True, None), ("scope", False, "api")]
    assert command.examples[0].args == {"commit_type": "feat", "scope": "ui"}
    assert "(/git commit --amend)" in command.examples[1].description
    text = render_command(library, "commit", {"commit_type": "fix"})
    assert text.startswith("Write a conventional commit message.") or (
        "<description>Write a conventional commit message.</description>" in text)
    assert "You are a git expert &amp; careful. Keep {{braces}} as written." in text
    assert "Write <include>components/git/message.md</include> literally." in text
    assert "Notes for people" not in text
    assert text.rstrip().endswith("-->")
    assert "ARGUMENTS: fix" in text  # Claude Code appends arguments the body does not place
    codes = sorted({f.code for f in report.findings})
    assert codes == ["I101", "I401", "I501"]
    assert report.markers == 2  # the dangling include and what the prompt leaves out
    written = (out / "commands/git/commit.md").read_text()
    assert f"<!-- {MARKER} dangling include: component 'git/missing'" in written
    assert "element dependencies" in written
    assert "the Markdown before command_file" in written
    assert (out / "commands/README.md").read_text() == "# Commands\n"
    assert (out / "LICENSE").is_file()
    assert not legacy.detect(out)


def test_duplicates_cycles_and_malformed_xml_become_findings_and_markers(tmp_path: Path) -> None:
    """A duplicate name is renamed, a cycle is cut and a malformed file is kept fenced, each
    reported with its place, and the converted library loads without errors."""
    src = _library(tmp_path / "src", {
        "commands/other/commit.md": COMMAND.replace("git expert", "other expert"),
        "components/loop/a.md": "<prompt_component><include>components/loop/b.md</include>"
                                "</prompt_component>\n",
        "components/loop/b.md": "<prompt_component><include>components/loop/a.md</include>"
                                "</prompt_component>\n",
        "components/bad/broken.md": "<prompt_component>\n  <step>{{x}} $ARGUMENTS"
                                    "</stop>\n</prompt_component>\n",
        "commands/bad/uses.md": "---\ndescription: Uses broken\n---\n<command_file><claude_prompt>"
                                "<prompt><include>components/bad/broken.md</include>"
                                "<include>components/loop/a.md</include></prompt>"
                                "</claude_prompt></command_file>\n",
    })
    out = tmp_path / "out"
    report = convert(src, out)
    library = load_library(out)
    assert not library.errors, library.diagnostics
    by_code = {f.code: f for f in report.findings}
    assert str(by_code["I301"]).startswith("commands/other/commit.md:1:1: I301 duplicate")
    assert "other-commit" in library.commands
    assert "commit" in library.commands
    assert "other expert" in library.commands["other-commit"].body
    assert str(by_code["I102"]).startswith("components/loop/b.md:1:19: I102")
    assert by_code["V405"].path == "components/bad/broken.md"
    assert (by_code["V405"].line, by_code["V405"].col) == (2, 25)
    broken = (out / "components/bad/broken.md").read_text()
    assert MARKER in broken
    assert "~~~~text" in broken
    assert "\\{{x}} \\$ARGUMENTS" in broken
    rendered = render_command(library, "uses", {})
    assert "{{x}} $ARGUMENTS</stop>" in rendered
    files = {f.source: f for f in report.files}
    assert files["commands/bad/uses.md"].clean is False
    assert files["components/git/message.md"].clean is True
    assert report.summary()["blocking"]["V405"] == 1


def test_unreadable_bytes_and_links_are_reported_never_a_crash(tmp_path: Path) -> None:
    """A file that is not UTF-8 is kept under a marker, and a symbolic link is not followed."""
    src = _library(tmp_path / "src")
    (src / "commands/git/latin.md").write_bytes(b"---\ndescription: caf\xe9\n---\nbody\n")
    (src / "commands/git/link.md").symlink_to("/etc/passwd")
    report = convert(src, tmp_path / "out")
    codes = {(f.path, f.code) for f in report.findings}
    assert ("commands/git/latin.md", "V100") in codes
    assert ("commands/git/link.md", "I502") in codes
    assert not (tmp_path / "out/commands/git/link.md").exists()
    assert not load_library(tmp_path / "out").errors


def test_the_output_must_be_new_or_empty_and_outside_the_source(tmp_path: Path) -> None:
    """An import never writes over files, nor into the library it reads."""
    src = _library(tmp_path / "src")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/keep.txt").write_text("mine")
    with pytest.raises(ImporterError, match="not empty"):
        convert(src, tmp_path / "full")
    with pytest.raises(ImporterError, match="inside the source"):
        convert(src, src / "converted")
    with pytest.raises(ImporterError, match="not found"):
        convert(tmp_path / "nowhere", tmp_path / "out")
    assert (tmp_path / "full/keep.txt").read_text() == "mine"


def test_the_2025_format_line_of_tallinn_toml_is_dropped_and_the_rest_kept(
    tmp_path: Path,
) -> None:
    """tallinn.toml keeps its tables and comments but no longer says the 2025 format."""
    src = _library(tmp_path / "src", {"tallinn.toml": textwrap.dedent("""
        # ours
        [library]
        name = "acme"
        format = "tallinn-2025"

        [gates]
        coverage = 0
        """)})
    convert(src, tmp_path / "out")
    written = (tmp_path / "out/tallinn.toml").read_text()
    assert "# ours" in written
    assert "[gates]" in written
    assert "format" not in written
    assert load_library(tmp_path / "out").config.name == "acme"


def test_a_marker_is_inert_whatever_its_message() -> None:
    """A marker cannot end its comment early nor hold a template token."""
    text = marker("a --> b {{x}} $ARGUMENTS <include component='y'/>")
    assert text.count("-->") == 1
    assert text.endswith("-->")
    assert "{{" not in text
    assert "$ARGUMENTS" not in text
    assert "<include" not in text
    # Runs that one pass of replacement would leave a token in.
    runs = marker("{{{{ {{{ $$ARGUMENTSARGUMENTS ---- -->")
    assert "{{" not in runs
    assert "$ARGUMENTS" not in runs
    assert runs.count("--") == 2  # the comment's own "<!--" and "-->"


PROMPT_TEXT = st.lists(
    st.sampled_from([*"ab {}$<>/!-[]&\n\"'=", "{{", "$ARGUMENTS", "<include>", "</include>",
                     "<![CDATA[", "]]>", "<!--", "-->", "&amp;", "components/g/c.md"]),
    max_size=30,
).map("".join)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prompt=PROMPT_TEXT)
def test_any_prompt_text_converts_into_a_library_that_loads(tmp_path: Path, prompt: str) -> None:
    """Whatever a 2025 prompt holds, the import finishes and its output loads without errors."""
    root = tmp_path / str(abs(hash(prompt)))
    if root.exists():
        return
    src = write_files(root / "src", {
        "commands/x/cmd.md": "---\ndescription: d\n---\n<command_file><claude_prompt><prompt>"
                             + prompt + "</prompt></claude_prompt></command_file>\n",
        "components/g/c.md": "<prompt_component>" + prompt + "</prompt_component>\n",
    })
    convert(src, root / "out")
    library = load_library(root / "out")
    assert not library.errors, library.diagnostics


def test_the_cli_prints_findings_writes_the_json_report_and_exits_by_what_it_found(
    tmp_path: Path,
) -> None:
    """`tallinn import` prints `path:line:col: CODE message`, writes --report and exits 1
    when a marker was left, 2 when it cannot start."""
    runner = CliRunner()
    src = _library(tmp_path / "src")
    result = runner.invoke(app, ["import", "tallinn-2025", str(src), "--out",
                                 str(tmp_path / "out"), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 1, result.output
    assert "commands/git/commit.md:" in result.stdout
    assert " I101 dangling include" in result.stdout
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["summary"]["commands"] == 1
    assert data["summary"]["commands_clean"] == 0
    assert data["findings"][0]["code"] in {"I101", "I401", "I501"}
    clean = write_files(tmp_path / "clean", {"components/g/c.md": COMPONENT})
    result = runner.invoke(app, ["import", "tallinn-2025", str(clean), "--out",
                                 str(tmp_path / "out2")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["import", "nope", str(src), "--out", str(tmp_path / "o3")])
    assert result.exit_code == 2
    assert "unknown import format" in result.stderr


@needs_corpus
@pytest.mark.slow
def test_the_real_2025_corpus_converts_loads_and_runs_the_gates(tmp_path: Path) -> None:
    """Every prompt file of the real corpus is written, the native library loads with no
    error, each dangling include is marked in its file, and `tallinn gates` runs on it."""
    out = tmp_path / "native"
    report = convert(CORPUS, out)
    library = load_library(out)
    assert not library.errors, library.errors[:5]
    summary = report.summary()
    assert summary["commands"] == len(library.commands) == 145
    assert summary["components"] == len(library.components) == 79
    assert 0 < summary["commands_clean"] < summary["commands"]
    for finding in report.findings:
        if finding.code == "I101":
            target = next(f.target for f in report.files if f.source == finding.path)
            assert finding.message in (out / str(target)).read_text()
    result = CliRunner().invoke(app, ["gates", "--library", str(out), "--only",
                                      "xml,security,docs", "--format", "json",
                                      "--report", str(tmp_path / "readiness.json")])
    assert result.exit_code in (0, 1), result.output
    readiness = json.loads((tmp_path / "readiness.json").read_text())
    assert {g["name"] for g in readiness["gates"]} >= {"xml", "security", "docs"}
