"""The tag scanner of gate 1: what is a tag, what is code or prose, how tags nest."""

from __future__ import annotations

import pytest

from tallinn.gates.rules.xml._scan import code_spans, inline_code, mask, scan


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
