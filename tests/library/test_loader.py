"""Loading a library: what loads, what is reported, and where."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallinn.library import LibraryError, Severity, load_library

GOOD_COMMAND = """
---
description: Review a file carefully
argument-hint: "<path>"
arguments:
  - name: path
    description: File to review
    required: true
examples:
  - description: Review app.py
    args: {path: app.py}
---
Review {{path}}.
<include component="shared/rules"/>
"""
GOOD_COMPONENT = """
---
description: Shared rules
---
Be precise.
"""


def codes(lib) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.code for d in lib.diagnostics]


def test_loads_commands_components_and_categories(write_library) -> None:  # type: ignore[no-untyped-def]
    """A well-formed library loads with no diagnostics and the expected names."""
    root = write_library({
        "commands/review/review.md": GOOD_COMMAND,
        "commands/review/README.md": "not a command",
        "components/shared/rules.md": GOOD_COMPONENT,
        "tallinn.toml": '[library]\nname = "acme"\n',
    })
    lib = load_library(root)
    assert lib.diagnostics == ()
    assert list(lib.commands) == ["review"]
    assert list(lib.components) == ["shared/rules"]
    command = lib.commands["review"]
    assert command.category == "review"
    assert command.argument_hint == "<path>"
    assert command.examples[0].args == {"path": "app.py"}
    assert lib.name == "acme"
    assert lib.categories() == ["review"]
    assert len(lib.content_hash) == 64


def test_content_hash_changes_with_content(write_library) -> None:  # type: ignore[no-untyped-def]
    files = {"commands/a/x.md": "---\ndescription: one\n---\nbody\n"}
    first = load_library(write_library(files)).content_hash
    same = load_library(write_library(files)).content_hash
    files["commands/a/x.md"] = "---\ndescription: two\n---\nbody\n"
    other = load_library(write_library(files)).content_hash
    assert first == same != other


def test_not_a_library(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="not found"):
        load_library(tmp_path / "missing")
    with pytest.raises(LibraryError, match="neither a commands/ nor a components/"):
        load_library(tmp_path)


def test_unquoted_colon_in_description_says_how_to_fix(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/bad.md": "---\ndescription: Review code: carefully\n---\nbody\n",
        "commands/a/good.md": "---\ndescription: fine\n---\nbody\n",
    })
    lib = load_library(root)
    (problem,) = lib.errors
    assert problem.code == "V102"
    assert (problem.path, problem.line, problem.col) == ("commands/a/bad.md", 2, 25)
    assert "quote the whole value" in problem.message
    assert "description" in problem.message
    # One broken file does not stop the others from loading.
    assert list(lib.commands) == ["good"]


def test_argument_hint_list_is_reported_at_its_value(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: fine\nargument-hint: [file]\n---\nbody\n",
    })
    (problem,) = load_library(root).errors
    assert problem.code == "V103"
    assert (problem.line, problem.col) == (3, 16)
    assert 'argument-hint: "[...]"' in problem.message


def test_tabs_in_front_matter(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: fine\ntags:\n\t- a\n---\nbody\n",
    })
    (problem,) = load_library(root).errors
    assert problem.code == "V102"
    assert problem.line == 4
    assert "tabs" in problem.message


def test_other_yaml_error(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/x.md": '---\ndescription: "open\n---\nbody\n'})
    (problem,) = load_library(root).errors
    assert problem.code == "V102"
    assert problem.message.startswith("invalid YAML")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter\n", "missing front matter"),
        ("--- x\ndescription: a\n---\n", "exactly '---'"),
        ("---\ndescription: a\n", "not closed"),
        ("---\n- a\n---\n", "must be a mapping"),
        ("---\ntags: [a]\n---\n", "'description' is required"),
        ("---\ndescription: '  '\n---\n", "must not be empty"),
        ("---\ndescription: a\ncritical: maybe\n---\n", "'critical'"),
    ],
)
def test_front_matter_problems(write_library, text: str, message: str) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({"commands/a/x.md": text}))
    assert lib.errors, lib.diagnostics
    assert message in lib.errors[0].message
    assert not lib.commands


def test_unknown_key_is_a_warning_not_dropped(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: fine\nauthor: me\n---\nbody\n",
        "components/g/c.md": "---\ndescription: fine\nversion: 2\n---\nbody\n",
    })
    lib = load_library(root)
    assert [(d.code, d.severity, d.line) for d in lib.diagnostics] == [
        ("V104", Severity.WARNING, 3),
        ("V104", Severity.WARNING, 3),
    ]
    assert lib.commands["x"].front_matter["author"] == "me"


def test_duplicate_command_names_name_both_files(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({
        "commands/a/x.md": "---\ndescription: one\n---\nbody\n",
        "commands/b/x.md": "---\ndescription: two\n---\nbody\n",
    })
    lib = load_library(root)
    (problem,) = lib.errors
    assert problem.code == "V107"
    assert problem.path == "commands/b/x.md"
    assert "commands/a/x.md" in problem.message


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("  - {name: a}\n  - {name: a}\n", "declared twice"),
        ("  - {name: a, pattern: '('}\n", "invalid pattern"),
        ("  - {name: a, type: enum}\n", "lists no 'enum' values"),
        ("  - {name: a, enum: [x]}\n", "set 'type: enum'"),
        ("  - {name: a, required: true, default: x}\n", "required and has a default"),
        ("  - {name: a, type: integer, default: many}\n", "invalid default"),
        ("  - {name: 'a b'}\n", "not a valid argument name"),
        ("  - {name: a, colour: red}\n", "Extra inputs"),
    ],
)
def test_bad_argument_declarations(write_library, arguments: str, message: str) -> None:  # type: ignore[no-untyped-def]
    text = f"---\ndescription: d\narguments:\n{arguments}---\n{{{{a}}}}\n"
    lib = load_library(write_library({"commands/a/x.md": text}))
    assert any(message in d.message for d in lib.errors), lib.diagnostics
    assert "x" not in lib.commands


def test_invalid_example_is_a_warning(write_library) -> None:  # type: ignore[no-untyped-def]
    text = (
        "---\ndescription: d\narguments:\n  - {name: n, type: integer, required: true}\n"
        "examples:\n  - {description: e, args: {n: lots}}\n---\n{{n}}\n"
    )
    lib = load_library(write_library({"commands/a/x.md": text}))
    (problem,) = lib.diagnostics
    assert problem.code == "V110"
    assert problem.severity is Severity.WARNING
    assert "expected an integer" in problem.message


def test_command_name_style_warning_and_uncategorised(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({"commands/My_Command.md": "---\ndescription: d\n---\nx\n"}))
    assert [d.code for d in lib.diagnostics] == ["V109"]
    assert lib.commands["My_Command"].category == "general"


def test_not_utf8(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({"commands/a/ok.md": "---\ndescription: d\n---\nx\n"})
    (root / "commands/a/bad.md").write_bytes(b"---\ndescription: caf\xe9\n---\n")
    lib = load_library(root)
    (problem,) = lib.errors
    assert (problem.code, problem.line, problem.col) == ("V100", 2, 17)


def test_bom_and_crlf_are_accepted(write_library) -> None:  # type: ignore[no-untyped-def]
    root = write_library({})
    (root / "commands/a").mkdir(parents=True)
    (root / "commands/a/x.md").write_bytes(b"\xef\xbb\xbf---\r\ndescription: d\r\n---\r\nhi\r\n")
    lib = load_library(root)
    assert lib.diagnostics == ()
    assert lib.commands["x"].body == "hi\n"


def test_tallinn_toml_errors_and_tables(write_library) -> None:  # type: ignore[no-untyped-def]
    bad = load_library(write_library({
        "commands/a/x.md": "---\ndescription: d\n---\nx\n",
        "tallinn.toml": "[library]\nname = \n",
    }))
    (problem,) = bad.errors
    assert (problem.code, problem.path, problem.line) == ("V106", "tallinn.toml", 2)
    assert "(at line" not in problem.message
    good = load_library(write_library({
        "commands/a/x.md": "---\ndescription: d\n---\nx\n",
        "tallinn.toml": '[library]\nname = "n"\n[gates.docs]\nmin_coverage = 0.5\n',
    }))
    assert good.config.table("gates") == {"docs": {"min_coverage": 0.5}}
    assert good.config.table("missing") == {}
    notable = load_library(write_library({
        "commands/a/x.md": "---\ndescription: d\n---\nx\n",
        "tallinn.toml": 'library = "x"\n',
    }))
    assert notable.errors[0].message == "[library] must be a table"


def test_allowed_tools_string_and_list(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": (
            "---\ndescription: d\nallowed-tools: Read, Bash(git log:*, git diff:*), Grep\n---\nx\n"
        ),
        "commands/a/y.md": "---\ndescription: d\nallowed-tools: [Read, ' Edit ']\n---\nx\n",
    }))
    assert lib.commands["x"].allowed_tools == ("Read", "Bash(git log:*, git diff:*)", "Grep")
    assert lib.commands["y"].allowed_tools == ("Read", "Edit")
