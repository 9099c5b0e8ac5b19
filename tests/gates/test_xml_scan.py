"""The tag scanner of gate 1: what is a tag, what is code or prose, how tags nest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import count_calls

from tallinn.gates.rules.xml import _scan
from tallinn.gates.rules.xml._scan import (
    code_spans,
    inline_code,
    line_code_spans,
    markdown_code_spans,
    mask,
    scan,
)


def problems(text: str) -> dict[str, list[str]]:
    result = scan(text, "a.md")
    return {
        "unclosed": [t.name for t in result.unclosed],
        "mismatched": [f"{c.name}/{o.name}" for c, o in result.mismatched],
        "stray": [t.name for t in result.stray],
        "attributes": [a.message for a in result.attributes],
    }


def clean(text: str) -> bool:
    return scan(text, "a.md").ok


@pytest.mark.parametrize("text", [
    "a < b", "x<y", "a <= b", "a -> b", "<- back", "<3", "if a<b and c>d", "Vec<T>",
    "Map<String, List<Integer>>", "<https://example.com/a?b=c>", "<mailto:me@example.com>",
    "<me@example.com>", "<!-- <a> -->", "<![CDATA[<a>]]>", "<?xml version='1.0'?>",
    "<!DOCTYPE html>", "<br>", "<BR>", "<hr/>", '<img src="a.png">', "<input checked>",
    "<a/>", "<file path>", "<Esc to cancel>", "`<a>`", "``<a>``", "\\<a>", "<include>x</include>",
    '<include component="a/b">', "</include>",
])
def test_not_flagged(text: str) -> None:
    assert clean(text), problems(text)


def test_nesting() -> None:
    assert problems("<a><b></b></a>") == {"unclosed": [], "mismatched": [], "stray": [],
                                          "attributes": []}
    assert problems("<a><b></a>")["unclosed"] == ["b"]
    assert problems("<a><b></a></b>")["mismatched"] == ["a/b"]
    assert problems("<a><b><c></a></b></c>")["mismatched"] == ["a/b"]
    assert problems("</a>")["stray"] == ["a"]
    assert problems("<A></a>") == {"unclosed": ["A"], "mismatched": [], "stray": ["a"],
                                   "attributes": []}
    assert problems("word<tip>hint</tip>")["unclosed"] == []  # closed later, so a tag


def test_attributes() -> None:
    assert problems('<a 1x="y">z</a>')["attributes"] == [
        "'1x' is not a valid attribute name in <a>"]
    assert problems("<a b= >z</a>")["attributes"] == [
        "attribute 'b' of <a> has an empty value; write b=\"\""]
    assert problems('<a b="c" />')["attributes"] == []
    assert problems("<a b='c' d=\"e\">z</a>")["attributes"] == []


def test_positions_and_offsets() -> None:
    result = scan("\n  <a>", "x.md", first_line=10, base=100)
    (tag,) = result.unclosed
    assert result.where(tag.start) == (11, 3)
    finding = result.diagnostic("V401", "m", tag.start)
    assert str(finding) == "x.md:11:3: V401 m"


def test_fences_and_code_spans() -> None:
    text = "para `<a>` x\n\n```\n<b>\n```\n\n    indented `<c>` <d></d>\n"
    assert clean(text)
    assert scan("~~~\n<a>\n", "a.md").ok  # an unclosed fence runs to the end
    assert scan("<a>\n\n````\n</a>\n````\n", "a.md").unclosed  # the closer is code
    spans = code_spans("x `y` z")
    assert spans == [(2, 5)]
    assert code_spans("no code here") == []


def test_inline_code_rules() -> None:
    text = "\\`<a>` b ``c`d`` e ` unmatched"
    spans = inline_code(text, 0, len(text))
    assert [text[s:e] for s, e in spans] == ["` b ``c`"]  # a run closes only its own size
    assert inline_code("\\\\`a`", 0, 5) == [(2, 5)]  # an escaped backslash escapes nothing
    assert inline_code("\\`", 0, 2) == []


def test_mask_keeps_offsets_and_newlines() -> None:
    text = "a `b\nc` d <!-- x\ny --> e"
    masked = mask(text, [(0, 1)])
    assert len(masked) == len(text)
    assert masked.count("\n") == 2
    assert masked.startswith("  ")
    assert "<!--" not in masked
    assert mask("plain") == "plain"
    assert mask("ab", [(0, 2), (1, 2)]) == "  "


def test_skip_spans_are_not_read() -> None:
    text = "<a>\n<command_file><b></command_file>\n</a>"
    start = text.index("<command_file>")
    end = text.index("\n</a>")
    assert scan(text, "a.md", skip=[(start, end)]).ok


def test_no_angle_bracket_is_fast_and_clean() -> None:
    assert scan("plain text only", "a.md").tags == []


HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1].parent / "shared" / "corpora" / "tallinn-2025-07"
TEXTS = sorted([*(HERE.parent / "cases").glob("*.md"), *CORPUS.rglob("*.md"),
                *(HERE.parents[1] / "src" / "tallinn" / "starter").rglob("*.md")])


def _same_spans(text: str) -> None:
    by_line = line_code_spans(text)
    if by_line is not None:
        assert set(by_line) == set(markdown_code_spans(text)), text


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: p.name)
def test_line_by_line_code_spans_are_markdown_its_on_every_sample(path: Path) -> None:
    """On the rule cases, the 2025 corpus and the starter library, the code spans found line
    by line, where that is taken, are the spans markdown-it's block parser gives."""
    _same_spans(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("text", "taken"), [
    ("a `b` c\n\n``d ` e`` f\n", True),
    ("- item `<a>`\n  > quote `x`\n", True),
    ("```\n<a>\n```\n", True),  # a fence at column 0
    ("- a\n```py\n<a>\n   ````\nb `c`\n", True),  # it ends a list, and closes indented
    ("```\n<a>\n", True),  # open to the end
    ("> q\n~~~ `x`\n`<a>`\n~~~\n", True),  # a tilde fence's info may hold backticks
    ("```a`\n", False),  # no fence: its info holds a backtick
    ("- ```\n  <a>\n  ```\n", False),  # a fence in a list item
    ("  ~~~\n`<a>`\n~~~\n", False),  # indented: perhaps in a container
    ("1. \n\t~~~\n`<a>`\n", False),  # a tab: in the list item
    (" " * 12 + "<a>`b`\n", True),  # indentation opens no container, however deep
    ("a\r```\n<a>\n```\n", False),  # a lone CR is a line break to markdown-it
    ("a `b\nc` d\n", False),  # a span across lines
    ("\\`<a>` b`\n", True),
    (">" * 25 + " x\n`<a>`\n", False),  # deeper than markdown-it reads
    ("\t- `<a>`\n", False),
])
def test_line_by_line_code_spans_are_taken_only_where_they_are_markdown_its(
    text: str, taken: bool
) -> None:
    """Code spans are found line by line only when every backtick run closes on its line and
    nothing nests deeper than markdown-it reads; then they are markdown-it's spans."""
    assert (line_code_spans(text) is not None) is taken
    _same_spans(text)


_PIECES = st.sampled_from(["`", "``", "```", "````", "~~~", "\\", "> ", ">", "- ", "* ", "1. ",
                           "2) ", "  ", "    ", "\t", "<a>", "</a>", "x", " ", "\n", "\n\n",
                           "# ", "***", "---", "<!--", "-->", "b c", ">" * 12, "- " * 6,
                           "\n```\n", "\n~~~~\n", "\n```py\n", "\n   ```", "\n    ```",
                           "\n``` `a`\n", "\r", "\n~~~ `\n",
                           ">" * 19, "  " * 9 + "- ", " " * 12])


@settings(max_examples=2000, deadline=None)
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_any_text_gives_markdown_its_code_spans(text: str) -> None:
    """For any text of Markdown's block and backtick syntax, `code_spans` equals markdown-it's
    spans whenever it finds them line by line."""
    _same_spans(text)
    assert set(code_spans(text)) == set(markdown_code_spans(text)) or "`" not in text


def test_a_body_of_closed_code_spans_is_scanned_without_markdown_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A body whose code spans all close on their lines and whose fences open at column 0
    (as most do) is checked without running markdown-it, and gives the same findings."""
    text = "<role>Review `{{path}}`.</role>\n\n<steps>\nRun `make <target>` first.\n"
    expected = problems(text)
    parses = count_calls(monkeypatch, _scan.block_parser(), "parse")
    assert problems(text) == expected == {"unclosed": ["steps"], "mismatched": [],
                                          "stray": [], "attributes": []}
    assert parses() == 0
    scan("```\n<a>\n```\n", "a.md")  # a fence at column 0 is found line by line too
    assert parses() == 0
    scan("- ```\n  <a>\n  ```\n", "a.md")
    assert parses() == 1
