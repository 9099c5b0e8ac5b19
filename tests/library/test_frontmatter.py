"""Front matter parsed once within `parsed_once()`, and parsed again outside it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import count_calls

from tallinn.library import Diagnostic, frontmatter, yamlsafe
from tallinn.library.diagnostics import LineIndex
from tallinn.library.files import Limits

TEXT = "---\ndescription: Review a file\ntags: [review]\n---\nBody\n"


def test_within_parsed_once_the_same_front_matter_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within `parsed_once()` (and a block nested in it) a second parse of the same front
    matter, even of another file, returns the same data and positions without parsing."""
    parses = count_calls(monkeypatch, yamlsafe, "load_plain")
    with frontmatter.parsed_once():
        first = frontmatter.parse(TEXT, "commands/a.md")
        with frontmatter.parsed_once():
            again = frontmatter.parse(TEXT + "more\n", "commands/b.md")
    assert parses() == 1
    assert isinstance(first, frontmatter.Parsed)
    assert isinstance(again, frontmatter.Parsed)
    assert (again.data, again.key_marks, again.value_marks) == (
        first.data, first.key_marks, first.value_marks)
    assert again.body == "Body\nmore\n"


def test_outside_parsed_once_and_under_other_limits_it_is_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is kept once the block ends, and within it other limits parse afresh, so a
    lower limit is never bypassed."""
    parses = count_calls(monkeypatch, yamlsafe, "load_plain")
    with frontmatter.parsed_once():
        frontmatter.parse(TEXT, "commands/a.md")
        low = frontmatter.parse(TEXT, "commands/a.md", limits=Limits(max_yaml_nodes=2))
    frontmatter.parse(TEXT, "commands/a.md")
    assert parses() == 3
    assert isinstance(low, frontmatter.Diagnostic)
    assert low.code == "V113"


def _split_by_lines(text: str) -> object:
    """The front matter and body of `text`, by the definition: the first line is `---`, the
    front matter ends at the next line that is `---` with nothing but spaces after it."""
    lines = text.split("\n")
    if not text.startswith("---") or lines[0].strip() != "---":
        return None
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]), 2, "\n".join(lines[index + 1:]), index + 2
    return None


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["---", "--", "-", " ", "\t", "\n", "a", "\x0c", "\xa0",
                                 "\u2028", "b: c"]), max_size=20).map("".join))
def test_split_finds_the_front_matter_the_lines_of_the_file_give(text: str) -> None:
    """`split` gives the front matter, body and body line the file's lines define, or a
    V101 where they define none."""
    found = frontmatter.split(text, "a.md")
    expected = _split_by_lines(text)
    if expected is None:
        assert isinstance(found, Diagnostic)
        assert found.code == "V101"
    else:
        assert found == expected


@pytest.mark.parametrize("yaml_text", [
    "description: a\ntags: [x]\narguments:\n  - name: p\n    pattern: 'a+'\n",
    "é😀: 1\nb: {c: 2}\n  # note\nd: x\n",
    'd: "\u2028"\ne: 1\n\u00e9\u00e9: x\n',
    "a: \u0085b\nc: 1\n",
    "a: 1\n\ufeffb: 2\n",
    "a:\n\tb\n",
])
def test_key_and_value_marks_are_the_file_s_lines_and_columns(yaml_text: str) -> None:
    """Each key and value is placed at its line and column in the file as Tallinn counts
    them (newlines only), whatever else YAML reads as a line break."""
    text = f"---\n{yaml_text}---\nBody\n"
    parsed = frontmatter.parse(text, "commands/a.md")
    if not isinstance(parsed, frontmatter.Parsed):
        return  # not valid YAML: placed by the error's own offset
    index = LineIndex(text)
    pos = 0
    for key, mark in parsed.key_marks.items():
        name = key.rpartition(".")[2]
        pos = text.index(name + ":", pos)
        assert mark == index.line_col(pos), key
        value_line, _ = parsed.value_marks.get(key, mark)
        assert value_line >= mark[0]
