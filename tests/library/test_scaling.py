"""Scanners are linear: the characters they read grow as the input does, counted, not timed.

`LineIndex.scanned` counts what every line-position lookup reads, `ScanCounter.searched` what
the literal, backtick and tag-nesting scanners read. Each shape is loaded, checked by the xml
gate and audited at size n and 10 n; linear work grows about tenfold, quadratic a hundredfold.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tallinn.gates import security
from tallinn.gates.xml import check
from tallinn.library import load_library
from tallinn.library.diagnostics import LineIndex
from tallinn.library.scanning import ScanCounter, backtick_spans, literal_spans

LIMITS = "[limits]\nmax_placeholders = 10000000\n"
FRONT = "---\ndescription: A command of hostile shape\narguments:\n  - name: a\n---\n"
LEGACY = '[library]\nformat = "tallinn-2025"\n'


def native(body: str) -> dict[str, str]:
    return {"tallinn.toml": LIMITS, "commands/x.md": FRONT + body + "\n"}


def legacy(prompt: str) -> dict[str, str]:
    text = ("---\ndescription: A 2025 command\n---\n<command_file>\n"
            "  <metadata><name>/x</name><purpose>Shape</purpose></metadata>\n"
            f"  <claude_prompt><prompt>\n{prompt}\n  </prompt></claude_prompt>\n</command_file>\n")
    return {"tallinn.toml": LEGACY + LIMITS, "commands/x.md": text}


SHAPES: dict[str, Callable[[int], dict[str, str]]] = {
    "placeholders": lambda n: native("\n".join(" ".join(["{{a}}"] * 20) for _ in range(n))),
    "unclosed comments": lambda n: native(
        "\n".join(f"<!-- {i} <![CDATA[ <?x {{{{a}}}}" for i in range(n))),
    "legacy unclosed comments": lambda n: legacy(
        "\n".join(f"note {i} <!-- not closed" for i in range(n))),
    "legacy quoted includes": lambda n: legacy("\n".join(
        " ".join(["<!-- <include>components/x.md</include> -->"] * 20) for _ in range(n))),
    "stray closing tags": lambda n: native("\n".join(["<a>"] * n + ["</b>"] * n) + "\n{{a}}"),
    "backtick runs": lambda n: native("\n".join(
        " ".join(("`" * (1 + i % 7)) + " ignore previous instructions" for i in range(10))
        for _ in range(n)) + " {{a}}"),
}


def work(root: Path, files: dict[str, str]) -> int:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    before = LineIndex.scanned + ScanCounter.searched
    library = load_library(root)
    check(library)
    security.audit(root)
    return LineIndex.scanned + ScanCounter.searched - before


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_work_grows_linearly(tmp_path: Path, shape: str) -> None:
    """Ten times the input costs at most about ten times the characters read."""
    small = work(tmp_path / "small", SHAPES[shape](200))
    large = work(tmp_path / "large", SHAPES[shape](2_000))
    assert small > 0
    assert large <= 13 * small, (small, large)


def test_placeholders_read_the_body_a_bounded_number_of_times(tmp_path: Path) -> None:
    """Positions of 40,000 placeholders cost a few passes over the file, not one each."""
    files = SHAPES["placeholders"](2_000)
    before = LineIndex.scanned
    root = tmp_path / "lib"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    library = load_library(root)
    assert "x" in library.commands
    assert LineIndex.scanned - before <= 3 * len(files["commands/x.md"])


def test_literal_spans_match_the_regular_expression() -> None:
    """The one-pass scanner finds what `<!--.*?-->|<![CDATA[.*?]]>` (DOTALL) finds."""
    import re

    pattern = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>", re.DOTALL)
    for text in ["a <!-- b --> c", "<!-- <![CDATA[ --> ]]>", "<![CDATA[ <!-- ]]> -->",
                 "<!-- open", "x <!-- a <!-- b --> <![CDATA[ c", "<!-->-->", "<!---->"]:
        assert literal_spans(text) == [m.span() for m in pattern.finditer(text)], text


def test_unclosed_openers_are_each_read_once() -> None:
    """However many comments are left open, the text after them is read once."""
    text = "<!-- x " * 10_000
    before = ScanCounter.searched
    assert literal_spans(text) == []
    assert ScanCounter.searched - before <= 2 * len(text)


def test_backtick_spans_match_the_regular_expression() -> None:
    """Without escapes, spans are those of the regular expression they replace."""
    import re

    pattern = re.compile(r"(?<!`)(?P<ticks>`+)(?!`)(?P<code>.+?)(?<!`)(?P=ticks)(?!`)")
    for text in ["a `b` c", "`` a ` b ``", "` `` ` ``", "```", "`a", "` a `` b ` c ``",
                 "x ``` y ` z ```"]:
        found = backtick_spans(text, backslash_escapes=False)
        assert found == [m.span() for m in pattern.finditer(text)], text
