"""Reading the 2025 Tallinn format into the library model, and detecting it."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tallinn.library import ArgType, Severity, legacy, load_library, render

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tallinn-2025-07"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")

COMMAND = """
---
description: Intelligent git commit automation
argument-hint: "[commit_type] [scope]"
allowed-tools: Read, Bash(git diff:*, git log:*)
---

# /git commit

<command_file>
  <metadata>
    <n>/git commit</n>
    <purpose>Write commit messages</purpose>
  </metadata>
  <arguments>
    <argument name="commit_type" type="string" required="true">
      <description>The type of commit
        (feat, fix)</description>
    </argument>
    <argument name="auto_stage" type="boolean" required="false" default="true">
      <description>Stage all files</description>
    </argument>
  </arguments>
  <examples>
    <example>
      <description>A feature commit</description>
      <usage>/git commit feat</usage>
    </example>
  </examples>
  <claude_prompt>
    <prompt>
      <include>components/git/commit-rules.md</include>
      <include component="components/workflow/errors.md" />
      You are a git expert.
    </prompt>
  </claude_prompt>
</command_file>
"""
COMPONENT = """
<prompt_component>
  <step name="Commit rules">
    <description>Rules for commit messages</description>
  </step>
  <content><![CDATA[ Write <include>components/not/a-reference.md</include> literally. ]]></content>
</prompt_component>
"""
ERRORS = "<prompt_component>\n  <metadata><description>Errors</description></metadata>\n" \
         "</prompt_component>\n"


@pytest.fixture
def library_2025(write_library):  # type: ignore[no-untyped-def]
    return write_library({
        "commands/git/git-commit.md": COMMAND,
        "commands/git/README.md": "# Git commands\n<command_file>not a command",
        "commands/CLAUDE.md": "---\ndescription: x\n---\n<command_file>\n</command_file>\n",
        "components/git/commit-rules.md": COMPONENT,
        "components/workflow/errors.md": ERRORS,
        "components/notes.md": "Just notes, no XML, no front matter.\n",
    })


def test_reads_a_2025_command_into_the_model(library_2025: Path) -> None:
    """Arguments, examples, tools and includes come from the front matter and the XML."""
    lib = load_library(library_2025)
    assert lib.diagnostics == ()
    assert list(lib.commands) == ["git-commit"]
    assert list(lib.components) == ["git/commit-rules", "workflow/errors"]
    command = lib.commands["git-commit"]
    assert command.category == "git"
    assert command.description == "Intelligent git commit automation"
    assert command.argument_hint == "[commit_type] [scope]"
    assert command.allowed_tools == ("Read", "Bash(git diff:*, git log:*)")
    first, second = command.arguments
    assert (first.name, first.type, first.required) == ("commit_type", ArgType.STRING, True)
    assert first.description == "The type of commit (feat, fix)"
    assert (second.type, second.default, second.required) == (ArgType.BOOLEAN, True, False)
    assert [e.description for e in command.examples] == ["A feature commit (/git commit feat)"]
    assert [n.component for n in lib.templates["git-commit"].includes] == [
        "git/commit-rules", "workflow/errors"]
    assert lib.components["workflow/errors"].description == "Errors"
    assert lib.components["git/commit-rules"].description == "Rules for commit messages"
    assert lib.config.table("library")["format"] == legacy.FORMAT


def test_rendering_inlines_components_and_keeps_literal_includes(library_2025: Path) -> None:
    lib = load_library(library_2025)
    text = render(lib, lib.commands["git-commit"], {"commit_type": "feat"})
    assert "You are a git expert." in text
    assert "Rules for commit messages" in text
    assert "<include>components/not/a-reference.md</include>" in text
    assert "components/git/commit-rules.md" not in text


def test_include_rewriting_keeps_every_line_and_column(library_2025: Path) -> None:
    """The body is as long as what was written, so positions still point into the file."""
    text = (library_2025 / "commands/git/git-commit.md").read_text()
    read, problems = legacy.read("commands/git/git-commit.md", text, "command")
    assert problems == []
    assert read is not None
    written = text[text.index("---", 3) + 4:]  # the body as written, after the front matter
    assert len(read.body) == len(written)
    assert [len(line) for line in read.body.split("\n")] == [
        len(line) for line in written.split("\n")]
    first, second = read.includes
    assert first.component == "git/commit-rules"
    assert first.written == "components/git/commit-rules.md"
    assert text[first.start:first.end] == "<include>components/git/commit-rules.md</include>"
    assert text.split("\n")[first.line - 1][first.col - 1:].startswith("<include>")
    assert first.col == 7
    assert second.component == "workflow/errors"
    body_offset = len(text) - len(read.body)
    rewritten = read.body[first.start - body_offset:first.end - body_offset]
    assert rewritten.startswith('<include component="git/commit-rules"')
    assert len(rewritten) == first.end - first.start
    assert read.metadata == {"name": "/git commit", "purpose": "Write commit messages"}
    assert read.prompt is not None
    assert "You are a git expert." in read.prompt


def test_missing_includes_are_reported_where_written(write_library) -> None:  # type: ignore[no-untyped-def]
    """A dangling include is V201 at its own line and column; the command is left out."""
    root = write_library({
        "commands/a/x.md": "---\ndescription: X\n---\n<command_file>\n  <claude_prompt>"
                           "<prompt>\n    <include>components/gone/away.md</include>\n"
                           "  </prompt></claude_prompt>\n</command_file>\n",
        "components/a/b.md": ERRORS,
    })
    lib = load_library(root)
    (diagnostic,) = lib.diagnostics
    assert str(diagnostic) == "commands/a/x.md:6:5: V201 component 'gone/away' not found"
    assert lib.commands == {}


def test_escaped_includes_do_not_move_later_positions(write_library) -> None:  # type: ignore[no-untyped-def]
    """An include in CDATA is escaped for the composer; findings after it keep their column."""
    root = write_library({
        "commands/a/x.md": "<command_file><content><![CDATA[<include>components/q.md</include>"
                           "]]></content> <include>components/gone.md</include></command_file>\n",
        "components/a/b.md": ERRORS,
    })
    (diagnostic,) = load_library(root).diagnostics
    assert (diagnostic.code, diagnostic.line, diagnostic.col) == ("V201", 1, 81)


def test_malformed_xml_is_reported_and_the_file_left_out(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: X\n---\nIntro\n<command_file>\n  <arguments>\n"
                           "  </argument>\n</command_file>\n",
        "commands/a/y.md": "---\ndescription: Y\n---\n<command_file>\n"
                           "<include>components/a/broken.md</include>\n</command_file>\n",
        "components/a/broken.md": "<prompt_component>\n<step>\n</prompt_component>\n",
    })
    lib = load_library(root)
    found = [str(d) for d in lib.diagnostics]
    assert found == [
        "commands/a/x.md:7:3: V405 embedded XML is not well-formed: Opening and ending tag "
        "mismatch: arguments line 6 and argument",
        "commands/a/y.md:5:1: V201 component 'a/broken' could not be loaded; see the errors in "
        "components/a/broken.md",
        "components/a/broken.md:3:1: V405 embedded XML is not well-formed: Opening and ending "
        "tag mismatch: step line 2 and prompt_component",
    ]
    assert lib.commands == {}
    assert lib.components == {}


def test_entities_are_not_expanded(write_library) -> None:  # type: ignore[no-untyped-def]
    """The embedded XML starts at its root, so a DOCTYPE with entities cannot come first."""
    root = write_library({
        "components/a/x.md": '<!DOCTYPE x [<!ENTITY a "aaaa">]>\n<prompt_component>&a;'
                             "</prompt_component>\n",
        "components/a/y.md": "<prompt_component>&xxe;</prompt_component>\n",
    })
    codes = [d.code for d in load_library(root).diagnostics]
    assert codes == ["V405", "V405"]


def test_front_matter_problems_are_reported_as_in_the_native_format(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: a: b\n---\n<command_file></command_file>\n",
        "commands/a/y.md": "---\ndescription: Y\nargument-hint: [a]\nextra: 1\n---\n"
                           "<command_file></command_file>\n",
        "commands/a/Z_z.md": "---\ndescription: Z\n---\n<command_file></command_file>\n",
        "components/a/b.md": ERRORS,
    })
    lib = load_library(root)
    assert [(d.path, d.code, d.severity) for d in lib.diagnostics] == [
        ("commands/a/Z_z.md", "V109", Severity.WARNING),
        ("commands/a/x.md", "V102", Severity.ERROR),
        ("commands/a/y.md", "V103", Severity.ERROR),
        ("commands/a/y.md", "V104", Severity.WARNING),
    ]
    assert list(lib.commands) == ["Z_z"]


def test_duplicate_names_are_reported_and_still_checked(write_library) -> None:  # type: ignore[no-untyped-def]
    body = "<command_file><include>components/gone.md</include></command_file>\n"
    root = write_library({
        "commands/a/task.md": "<command_file></command_file>\n",
        "commands/b/task.md": body,
        "components/a/b.md": ERRORS,
    })
    lib = load_library(root)
    assert [(d.path, d.code) for d in lib.diagnostics] == [
        ("commands/b/task.md", "V107"), ("commands/b/task.md", "V201")]
    assert lib.commands["task"].path == "commands/a/task.md"


def test_a_plain_claude_code_command_loads_too(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "tallinn.toml": '[library]\nname = "old"\nformat = "tallinn-2025"\n',
        "commands/a/plain.md": "---\ndescription: Plain\n---\nDo it: $ARGUMENTS\n",
        "commands/a/bad.md": "replaced below",
    })
    (root / "commands/a/bad.md").write_bytes(b"---\n\xff\n")
    (root / "components").mkdir()
    (root / "components/x.md").write_bytes(b"\xff")
    lib = load_library(root)
    assert lib.name == "old"
    assert list(lib.commands) == ["plain"]
    assert lib.templates["plain"].uses_all_arguments
    assert [(d.path, d.code) for d in lib.diagnostics] == [
        ("commands/a/bad.md", "V100"), ("components/x.md", "V100")]


def test_detection(tmp_path: Path, write_library) -> None:  # type: ignore[no-untyped-def]
    """Declared in tallinn.toml, or sniffed when there is none; native libraries stay native."""
    native = write_library({
        "commands/a/x.md": "---\ndescription: X\n---\n<command_file>\n",
        "commands/a/y.md": "---\ndescription: Y\n---\nplain\n",
    })
    assert not legacy.detect(native)
    (native / "tallinn.toml").write_text('[library]\nformat = "tallinn-2025"\n')
    assert legacy.detect(native)
    (native / "tallinn.toml").write_text("not toml [")
    assert not legacy.detect(native)
    (native / "tallinn.toml").write_text("library = 1\n")
    assert not legacy.detect(native)
    sniffed = write_library({
        "commands/a/x.md": "<command_file></command_file>\n",
        "components/a/y.md": "<prompt_component></prompt_component>\n",
        "commands/a/z.md": "---\ndescription: Z\n---\nplain\n",
    })
    assert legacy.detect(sniffed)
    plain = write_library({
        "commands/a/x.md": "---\ndescription: X\n---\nMention `<command_file>` in prose.\n",
    })
    assert not legacy.detect(plain)


def test_arguments_that_cannot_be_kept_are_adjusted_with_a_warning(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/x.md": """
        <command_file>
          <arguments>
            <argument name="n" type="integer" default="x"><description>N</description></argument>
            <argument name="e" type="enum"/>
            <argument name="s"/>
          </arguments>
        </command_file>
        """})
    lib = load_library(root)
    assert [d.code for d in lib.diagnostics] == ["V406", "V406"]
    n, e, s = lib.commands["x"].arguments
    assert (n.type, n.default) == (ArgType.INTEGER, None)
    assert (e.type, s.type, s.required) == (ArgType.STRING, ArgType.STRING, False)


def test_helpers() -> None:
    assert legacy.component_name("components/git/commit.md") == "git/commit"
    assert legacy.component_name("./components/a/b.md") == "a/b"
    assert legacy.component_name("a/b") == "a/b"
    assert legacy.component_name("components/../x.md") is None
    assert legacy.component_name("") is None
    assert legacy.native_include("a/b") == '<include component="a/b"/>'
    assert legacy.native_include("a/b", 30) == '<include component="a/b"    />'
    span = legacy.root_span("x\n<prompt_component>\n<!-- </prompt_component> -->\n"
                            "<prompt_component/>\n</prompt_component>\ntail")
    assert span is not None
    assert span.name == "prompt_component"
    assert span.end is not None
    assert legacy.root_span("no root") is None
    unclosed = legacy.root_span("<command_file>\n<command_file>\n</command_file>\n")
    assert unclosed is not None
    assert unclosed.end == len("<command_file>\n<command_file>\n"
                                                        "</command_file>")


def test_a_multi_line_include_keeps_its_newlines() -> None:
    text = "<command_file>\n<include>\n  components/a/b.md\n</include> after\n</command_file>"
    read, _ = legacy.read("commands/x.md", text, "command")
    assert read is not None
    assert len(read.body) == len(text)
    assert read.body.split("\n")[3] == "        /> after"
    (reference,) = read.includes
    assert (reference.line, reference.col) == (2, 1)
    indented = "<command_file><include>c/d.md\n" + " " * 40 + "</include></command_file>"
    read, _ = legacy.read("commands/y.md", indented, "command")
    assert read is not None
    assert '<include component="c/d"/>' in read.body


def test_notes_and_readmes_are_not_read() -> None:
    assert legacy.read("commands/notes.md", "# Notes\n", "command") == (None, [])


@needs_corpus
def test_corpus_loads_and_reports_what_is_known() -> None:
    """The 2025 corpus: 2 malformed XML documents, dangling includes, 4 duplicate names."""
    lib = load_library(CORPUS)
    assert lib.config.table("library")["format"] == legacy.FORMAT
    by_code = collections.Counter(d.code for d in lib.diagnostics)
    malformed = sorted(d.path for d in lib.diagnostics if d.code == "V405")
    assert malformed == ["components/quality/framework-validation.md",
                         "components/validation/xml-structure.md"]
    assert by_code["V107"] == 4
    assert sorted(d.path for d in lib.diagnostics if d.code == "V107") == [
        "commands/development/task.md", "commands/utilities/monitor-alerts.md",
        "commands/utilities/monitor-dashboard.md", "commands/utilities/monitor-setup.md"]
    dangling = [d for d in lib.diagnostics if d.code == "V201" and "not found" in d.message]
    assert len(dangling) == 99
    assert len({d.message for d in dangling}) == 85
    assert "CLAUDE" not in lib.commands
    assert not any(d.path.lower().endswith(("readme.md", "claude.md")) for d in lib.diagnostics)
    assert len(lib.components) + 2 == 79


def test_a_path_less_include_is_left_to_the_composer(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "<command_file><include>https://x.test/y</include></command_file>\n",
        "commands/a/plain.md": "---\nargument-hint: <x>\n---\nNo description anywhere.\n",
        "components/a/b.md": ERRORS,
    })
    lib = load_library(root)
    assert [(d.path, d.code) for d in lib.diagnostics] == [("commands/a/x.md", "V202")]
    assert lib.commands["plain"].description == ""


def test_a_2025_library_in_memory_reads_as_its_folder(library_2025: Path) -> None:
    """The 2025 reader takes a source: the same bytes in memory give the same library."""
    from tallinn.library import FilesSource, build_library

    files = {p.relative_to(library_2025).as_posix(): p.read_bytes()
             for p in library_2025.rglob("*") if p.is_file()}
    memory = build_library(FilesSource(files, label="release 2025"))
    folder = load_library(library_2025)
    assert legacy.detect(FilesSource(files))
    assert memory.config.table("library")["format"] == legacy.FORMAT
    assert (memory.commands, memory.components, memory.templates, memory.diagnostics) == (
        folder.commands, folder.components, folder.templates, folder.diagnostics)
    assert memory.content_hash == folder.content_hash
    assert build_library(memory.source, previous=memory) == memory
