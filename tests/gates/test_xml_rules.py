"""The rules of gate 1: case files show what each flags and leaves alone; fixes and docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tallinn.gates.base import RULES
from tallinn.gates.fix import apply_edits
from tallinn.gates.ruledocs import missing_sections, sections
from tallinn.gates.rules.xml import BODY_RULES, CHECKED_ON_READ, FIXERS, loader_rules
from tallinn.gates.rules.xml._common import line_span, offset
from tallinn.gates.rules.xml._scan import scan
from tallinn.gates.rules.xml.invalid_yaml import front_matter_end, quote_value, replace_tabs
from tallinn.library import Diagnostic, Fix, Library, legacy, load_library

CASES = Path(__file__).resolve().parents[1] / "cases"
MARK = re.compile(r"<!-- (error|warning): (V\d{3}) -->")
SEPARATOR = re.compile(r"^<!-- case(?:: [^\n]*)? -->\n", re.MULTILINE)
OWN_CODES = ("V401", "V402", "V403", "V404", "V405", "V406")


def chunks(text: str) -> list[tuple[int, str]]:
    """Split a case file on its `<!-- case: ... -->` lines: (first file line, text)."""
    found: list[tuple[int, str]] = []
    starts = [m.end() for m in SEPARATOR.finditer(text)]
    for start in starts:
        end = SEPARATOR.search(text, start)
        body = text[start : end.start() if end else len(text)]
        found.append((text.count("\n", 0, start) + 1, body))
    return found


def findings_of(code: str, first_line: int, chunk: str) -> list[Diagnostic]:
    if code in CHECKED_ON_READ:
        _, problems = legacy.read(f"commands/cases/{code}.md", chunk, "command")
        return [Diagnostic(d.code, d.message, d.path, d.line + first_line - 1, d.col,
                           d.severity) for d in problems]
    result = scan(chunk, f"{code}.md", first_line=first_line)
    return [d for rule in BODY_RULES for d in rule(result)]


@pytest.mark.parametrize("path", sorted(CASES.glob("V4*.md")), ids=lambda p: p.stem)
def test_case_file(path: Path) -> None:
    """Exactly the lines marked `<!-- error: CODE -->` are flagged, with that code."""
    text = path.read_text(encoding="utf-8")
    expected: set[tuple[int, str, str]] = set()
    found: set[tuple[int, str, str]] = set()
    clean = 0
    for first_line, chunk in chunks(text):
        marks = {(first_line + number, m.group(2), m.group(1))
                 for number, line in enumerate(chunk.split("\n"))
                 for m in MARK.finditer(line)}
        expected |= marks
        clean += not marks
        found |= {(d.line, d.code, d.severity.value)
                  for d in findings_of(path.stem, first_line, chunk) if d.code in OWN_CODES}
    assert found == expected
    assert any(code == path.stem for _, code, _ in expected), "no flagged case"
    assert clean, "no clean case"


def test_every_own_rule_has_a_case_file() -> None:
    assert sorted(p.stem for p in CASES.glob("V4*.md")) == list(OWN_CODES)


@pytest.mark.parametrize("code", OWN_CODES + tuple(FIXERS))
def test_rule_docs_have_the_sections(code: str) -> None:
    """Each rule's documentation says what it does, why, with an example and its fix safety."""
    rule = RULES[code]
    assert rule.gate == "xml"
    assert missing_sections(rule) == []
    documented = sections(rule.doc)
    assert {"Example", "Use instead", "Fix safety"} <= set(documented)
    assert rule.fixable == (code in FIXERS or code in ("V401", "V403", "V404"))


def test_loader_codes_are_registered_with_a_name_and_what_they_do() -> None:
    for code, (name, severity, _summary, _doc) in loader_rules.TABLE.items():
        rule = RULES[code]
        assert (rule.name, rule.severity) == (name, severity)
        assert "What it does" in sections(rule.doc), code
    registered = {c for c, r in RULES.items() if r.gate == "xml"}
    assert {"V100", "V101", "V102", "V103", "V104", "V105", "V106", "V107", "V108", "V109",
            "V110", "V201", "V202", "V203", "V204", "V205", "V301", "V302", "V303"} <= registered
    assert RULES["V201"].name == "missing-component"


# Fixes of the body rules -------------------------------------------------------------------


def fixed(text: str, fix: Fix | None) -> str:
    assert fix is not None
    return apply_edits(text, fix.edits)


def one(text: str, code: str, base: int = 0) -> Diagnostic:
    result = scan(text, "a.md", base=base)
    found = [d for rule in BODY_RULES for d in rule(result) if d.code == code]
    assert len(found) == 1, found
    return found[0]


def test_unclosed_tag_fix_closes_a_one_line_element() -> None:
    text = "<role>You are a reviewer.  \n\n<task>Go.</task>\n"
    finding = one(text, "V401")
    assert finding.fix is not None
    assert not finding.fix.safe
    assert fixed(text, finding.fix) == "<role>You are a reviewer.</role>  \n\n<task>Go.</task>\n"


@pytest.mark.parametrize("text", [
    "<role>\nYou are a reviewer.\n",  # nothing after the tag on its line
    "<role>You are a reviewer.\nMore text.\n",  # the element may go on
    "Say <role>hi\n",  # the tag does not start the line
    "<role>You <b>are</b>\n",  # another tag on the line
])
def test_unclosed_tag_has_no_fix_when_the_end_is_unclear(text: str) -> None:
    assert one(text, "V401").fix is None


def test_unclosed_tag_fix_at_the_end_of_the_text_and_with_a_body_offset() -> None:
    body = "<role>You are a reviewer."
    source = "---\ndescription: x\n---\n" + body
    finding = one(body, "V401", base=len(source) - len(body))
    assert fixed(source, finding.fix).endswith("reviewer.</role>")


def test_stray_closing_tag_fix_deletes_the_tag_or_its_line() -> None:
    text = "Be brief.\n</constraints>\nDone.\n"
    assert fixed(text, one(text, "V403").fix) == "Be brief.\nDone.\n"
    text = "Be brief.</constraints> Done."
    assert fixed(text, one(text, "V403").fix) == "Be brief. Done."


def test_malformed_attribute_fix_quotes_an_unquoted_value() -> None:
    text = '<example kind=good lang="py">x</example>'
    finding = one(text, "V404")
    assert finding.fix is not None
    assert not finding.fix.safe
    assert fixed(text, finding.fix) == '<example kind="good" lang="py">x</example>'


def test_mismatched_closing_tag_names_both_tags_and_where() -> None:
    finding = one("<a>\n<b>\n</a>\n</b>\n", "V402")
    assert (finding.line, finding.col) == (3, 1)
    assert "<b> (line 2, column 1)" in finding.message
    assert finding.fix is None


# Fixes of the loader's diagnostics -----------------------------------------------------------


def loaded(write_library, files: dict[str, str]) -> Library:  # type: ignore[no-untyped-def]
    return load_library(write_library(files))


def fix_for(library: Library, code: str) -> tuple[Diagnostic, str, Fix | None]:
    diagnostic = next(d for d in library.diagnostics if d.code == code)
    text = (library.root / diagnostic.path).read_text(encoding="utf-8")
    return diagnostic, text, FIXERS[code](diagnostic, text, library)


def test_invalid_yaml_fix_quotes_a_value_with_colon_space(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {"commands/a/x.md": (
        '---\ndescription: Review code: say "why" \\ how\n---\nBody\n')})
    _, text, fix = fix_for(lib, "V102")
    assert fix is not None
    assert fix.safe
    assert fixed(text, fix).split("\n")[1] == r'description: "Review code: say \"why\" \\ how"'


def test_invalid_yaml_fix_quotes_an_argument_hint_list(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {"commands/a/x.md": (
        "---\ndescription: Review\nargument-hint: [path] [focus]\n---\nBody\n")})
    _, text, fix = fix_for(lib, "V102")
    assert fixed(text, fix).split("\n")[2] == 'argument-hint: "[path] [focus]"'


def test_invalid_yaml_fix_replaces_indenting_tabs(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {"commands/a/x.md": (
        "---\ndescription:\tReview\narguments:\n\t- name: path\n\t  required: true\n"
        "---\nBody {{path}} \tkept\n")})
    _, text, fix = fix_for(lib, "V102")
    assert fixed(text, fix) == (
        "---\ndescription: Review\narguments:\n  - name: path\n    required: true\n"
        "---\nBody {{path}} \tkept\n")


@pytest.mark.parametrize("line", [
    "description: 'quoted: already'",
    "description: value: with # a comment",
    "tags: [a, b]",
    "description: no colon here",
    "  - not a key",
])
def test_quote_value_leaves_lines_it_cannot_quote_safely(line: str) -> None:
    assert quote_value(f"---\n{line}\n---\nbody\n", 2) is None


def test_quote_value_only_inside_front_matter() -> None:
    text = "---\ndescription: x\n---\nkey: a: b\n"
    assert quote_value(text, 4) is None
    assert quote_value("no front matter: a: b\n", 1) is None
    assert front_matter_end("---\nunclosed: yes\n") is None
    assert replace_tabs("---\nunclosed\n") is None
    assert replace_tabs("---\na: 1\n---\n") is None


def test_unquoted_argument_hint_fix(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {"commands/a/x.md": (
        "---\ndescription: Review\nargument-hint: [path]\n---\nBody\n")})
    _, text, fix = fix_for(lib, "V103")
    assert fix is not None
    assert fix.safe
    assert fixed(text, fix).split("\n")[2] == 'argument-hint: "[path]"'


COMPONENT = "---\ndescription: Shared rules\n---\nBe precise.\n"


def test_malformed_include_fix_writes_a_2025_include_natively(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {
        "commands/a/x.md": "---\ndescription: X\n---\nA <include>components/shared/rules.md"
                           "</include> B\n<include>components/shared/gone.md</include>\n",
        "components/shared/rules.md": COMPONENT,
    })
    text = (lib.root / "commands/a/x.md").read_text()
    fixes = {d.line: FIXERS["V202"](d, text, lib) for d in lib.diagnostics if d.code == "V202"}
    assert fixes[4] is not None
    assert fixes[4].safe
    assert fixed(text, fixes[4]).split("\n")[3] == 'A <include component="shared/rules"/> B'
    assert fixes[5] is not None
    assert not fixes[5].safe


def test_malformed_include_has_no_fix_for_other_shapes(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {
        "commands/a/x.md": '---\ndescription: X\n---\n<include component="shared/rules">\n',
        "components/shared/rules.md": COMPONENT,
    })
    assert fix_for(lib, "V202")[2] is None


def test_missing_component_fix_strips_a_2025_path(write_library) -> None:  # type: ignore[no-untyped-def]
    lib = loaded(write_library, {
        "commands/a/x.md": '---\ndescription: X\n---\n<include component="components/shared/'
                           'rules.md" />\n',
        "commands/a/y.md": '---\ndescription: Y\n---\n<include component="shared/nope"/>\n',
        "components/shared/rules.md": COMPONENT,
    })
    by_path = {d.path: d for d in lib.diagnostics if d.code == "V201"}
    x = by_path["commands/a/x.md"]
    text = (lib.root / x.path).read_text()
    fix = FIXERS["V201"](x, text, lib)
    assert fix is not None
    assert fix.safe
    assert fixed(text, fix).endswith('<include component="shared/rules"/>\n')
    y = by_path["commands/a/y.md"]
    assert FIXERS["V201"](y, (lib.root / y.path).read_text(), lib) is None


def test_offsets_from_lines_and_columns() -> None:
    text = "ab\ncd\n"
    assert offset(text, 1, 1) == 0
    assert offset(text, 2, 3) == 5
    assert offset(text, 2, 4) is None
    assert offset(text, 9, 1) is None
    assert line_span(text, 4) == (3, 5)
    assert line_span("abc", 1) == (0, 3)
