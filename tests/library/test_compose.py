"""Composing commands from components: includes, cycles, placeholders, escapes."""

from __future__ import annotations

import pytest
from tests.helpers import count_calls

from tallinn.library import load_library, walk
from tallinn.library.compose import ALL_ARGUMENTS


def cmd(body: str, args: str = "") -> str:
    declared = f"arguments:\n{args}" if args else ""
    return f"---\ndescription: d\n{declared}---\n{body}"


def comp(body: str, args: str = "") -> str:
    return cmd(body, args)


def test_nested_includes_compose_in_place(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd('A <include component="g/one"/> Z\n'),
        "components/g/one.md": comp('1 <include component="g/two"/> 1'),
        "components/g/two.md": comp("2"),
    }))
    assert lib.diagnostics == ()
    template = lib.templates["x"]
    assert template.text == "A 1 2 1 Z\n"
    assert [(d, n.component) for d, n in walk(template.includes)] == [(0, "g/one"), (1, "g/two")]


def test_include_forms(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd("<include component='g/c'/><include  component = \"g/c.md\" />"),
        "components/g/c.md": comp("c"),
    }))
    assert lib.templates["x"].text == "cc"


def test_missing_component_with_suggestion(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd('line\n  <include component="g/rulez"/>\n'),
        "components/g/rules.md": comp("r"),
    }))
    (problem,) = lib.errors
    assert (problem.code, problem.path, problem.line, problem.col) == (
        "V201", "commands/a/x.md", 5, 3)
    assert problem.message == "component 'g/rulez' not found (did you mean 'g/rules'?)"
    assert "x" not in lib.commands


def test_a_missing_component_is_matched_against_the_names_once(
    write_library, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    """Forty commands including one missing component each get its suggestion, and the
    names are compared for it once a build, not once a command."""
    from tallinn import wording

    compared = count_calls(monkeypatch, wording, "close_matches")
    lib = load_library(write_library({
        **{f"commands/a/x{i}.md": cmd('<include component="g/rulez"/>\n') for i in range(40)},
        "components/g/rules.md": comp("r"),
    }))
    assert len(lib.errors) == 40
    assert {p.message for p in lib.errors} == {
        "component 'g/rulez' not found (did you mean 'g/rules'?)"}
    assert compared() == 1


def test_cycle_reports_the_whole_path_once(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd('<include component="g/a"/>'),
        "commands/a/y.md": cmd('<include component="g/b"/>'),
        "components/g/a.md": comp('<include component="g/b"/>'),
        "components/g/b.md": comp('<include component="g/c"/>'),
        "components/g/c.md": comp('<include component="g/a"/>'),
    }))
    cycles = [d for d in lib.errors if d.code == "V204"]
    assert len(cycles) == 1
    assert cycles[0].message == "include cycle: g/a → g/b → g/c → g/a"
    assert cycles[0].path == "components/g/c.md"
    # Both commands say why they are left out.
    assert sorted(d.path for d in lib.errors if d.code == "V205") == [
        "commands/a/x.md", "commands/a/y.md"]
    assert not lib.commands


def test_self_include_is_a_cycle(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({"components/g/a.md": comp('<include component="g/a"/>')}))
    assert [d.message for d in lib.errors] == ["include cycle: g/a → g/a"]


def test_component_that_failed_to_load(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd('<include component="g/bad"/>'),
        "components/g/bad.md": "---\ndescription: a: b\n---\n",
    }))
    messages = [d.message for d in lib.errors if d.code == "V201"]
    assert messages == [
        "component 'g/bad' could not be loaded; see the errors in components/g/bad.md"]


def test_malformed_includes(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd("<include>components/g/c.md</include>\n<include component=g/c/>"),
        "components/g/c.md": comp("c"),
    }))
    assert [(d.code, d.line, d.col) for d in lib.errors] == [("V202", 4, 1), ("V202", 5, 1)]
    assert 'write <include component="group/name"/>' in lib.errors[0].message


def test_component_arguments_must_be_declared_by_command(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd('<include component="g/c"/>'),
        "commands/a/y.md": cmd('<include component="g/c"/>', "  - {name: lang}\n"),
        "components/g/c.md": comp("in {{lang}}", "  - {name: lang}\n"),
    }))
    (problem,) = lib.errors
    assert problem.code == "V203"
    assert problem.message == (
        "component 'g/c' needs argument 'lang', which command 'x' does not declare")
    assert list(lib.commands) == ["y"]


def test_undeclared_placeholder_found_at_load(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd("hello\n  {{ who }}"),
        "components/g/c.md": comp("{{lang}}"),
    }))
    found = sorted((d.code, d.path, d.line, d.col) for d in lib.errors)
    assert found == [("V301", "commands/a/x.md", 5, 3), ("V301", "components/g/c.md", 4, 1)]


def test_unused_argument_is_a_warning(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd("no placeholders", "  - name: extra\n    description: e\n"),
        "commands/a/y.md": cmd("$ARGUMENTS", "  - name: extra\n"),
        "components/g/c.md": comp("none", "  - {name: lang}\n"),
    }))
    warnings = sorted((d.code, d.path, d.line) for d in lib.warnings)
    assert warnings == [("V302", "commands/a/x.md", 4), ("V302", "components/g/c.md", 1)]
    assert set(lib.commands) == {"x", "y"}


def test_bad_open_brace(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({"commands/a/x.md": cmd("run ${{ secrets.TOKEN }}")}))
    (problem,) = lib.errors
    assert (problem.code, problem.col) == ("V303", 6)
    assert "\\{{" in problem.message


def test_escapes_make_tokens_literal(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd(r"\{{ secrets.X }} \$ARGUMENTS \<include component='g/c'/>"),
    }))
    assert lib.diagnostics == ()
    template = lib.templates["x"]
    assert template.slots == ()
    assert template.text == "{{ secrets.X }} $ARGUMENTS <include component='g/c'/>"


def test_template_slots(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = load_library(write_library({
        "commands/a/x.md": cmd("{{a}}-{{ a }}-$ARGUMENTS", "  - {name: a}\n"),
    }))
    template = lib.templates["x"]
    assert template.slots == ("a", "a", ALL_ARGUMENTS)
    assert template.uses_all_arguments
    assert template.placeholders == {"a"}
    assert template.fill({"a": "1", ALL_ARGUMENTS: "all"}) == "1-1-all"


@pytest.mark.parametrize("count", [1, 50])
def test_shared_component_expanded_once_per_command(write_library, count: int) -> None:  # type: ignore[no-untyped-def]
    files = {f"commands/a/c{i}.md": cmd('<include component="g/c"/>') for i in range(count)}
    files["components/g/c.md"] = comp("shared")
    lib = load_library(write_library(files))
    assert all(t.text == "shared" for t in lib.templates.values())
    assert len(lib.templates) == count


def test_only_a_body_with_a_finding_has_its_lines_indexed(  # type: ignore[no-untyped-def]
    write_library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Composing indexes the lines of a body only to place a finding in it, and places it
    where it is written."""
    from tallinn.library import compose

    indexed = count_calls(monkeypatch, compose, "LineIndex")
    args = "  - {name: a}\n"
    clean = load_library(write_library({
        "commands/a/x.md": cmd('Use {{a}}.\n<include component="g/one"/>\n', args),
        "components/g/one.md": comp("One."),
    }))
    assert clean.diagnostics == ()
    assert indexed() == 0
    found = load_library(write_library({
        "commands/a/x.md": cmd('Use {{a}}.\n\n  <include component="g/none"/>\n', args),
        "commands/a/y.md": cmd("Line.\nUse {{b}}.\n"),
        "components/g/one.md": comp("One."),
    }))
    assert indexed() == 2
    assert {(d.code, d.path, d.line, d.col) for d in found.diagnostics} >= {
        ("V201", "commands/a/x.md", 8, 3), ("V301", "commands/a/y.md", 5, 5)}
