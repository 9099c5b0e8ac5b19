"""Linear scanning helpers shared by the loader, the 2025 reader and the gates' scanners.

A regular expression such as `<!--.*?-->` is quadratic on hostile text: at every `<!--` that
is never closed it reads to the end of the text before giving up, so a file of a few hundred
kilobytes with many unclosed comments takes minutes. `literal_spans` finds the same spans in
one pass: once a terminator is known to be absent from some offset on, no later opener looks
for it again.

>>> literal_spans("a <!-- b --> c <![CDATA[ d ]]> <!-- e")
[(2, 12), (15, 30)]
"""

from __future__ import annotations

import bisect
import functools
import os
import re
from collections.abc import Sequence

COMMENT = ("<!--", "-->")
CDATA = ("<![CDATA[", "]]>")


class ScanCounter:
    """How many characters the linear scanners have read; what the tests of linearity count."""

    searched: int = 0


def literal_spans(
    text: str, start: int = 0, kinds: Sequence[tuple[str, str]] = (COMMENT, CDATA),
    *, opener: re.Pattern[str] | None = None,
) -> list[tuple[int, int]]:
    """The spans of `text` from `start` that open with one of `kinds` and close with its
    terminator, in order, as `re.finditer` of `open.*?close|...` (DOTALL) would find them.

    `opener`, when given, matches each opener (group `i` + 1 for `kinds[i]`), for openers that
    are patterns rather than strings (`<?` followed by a letter).
    """
    if opener is None:
        opener = openers(tuple(kinds))
    spans: list[tuple[int, int]] = []
    absent: set[str] = set()  # terminators not found after some earlier opener
    pos = start
    while True:
        found = opener.search(text, pos)
        if found is None:
            ScanCounter.searched += len(text) - pos
            return spans
        close = kinds[(found.lastindex or 1) - 1][1]
        if close in absent:
            pos = found.start() + 1
            continue
        end = text.find(close, found.end())
        if end == -1:
            # No opener after this one can be closed by `close` either.
            ScanCounter.searched += len(text) - found.end()
            absent.add(close)
            pos = found.start() + 1
            continue
        ScanCounter.searched += end + len(close) - pos
        spans.append((found.start(), end + len(close)))
        pos = end + len(close)


@functools.cache
def openers(kinds: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    """One pattern for the openers of `kinds`, group `i` + 1 matching `kinds[i]`. The prefix
    they share is written once in front (`<!(?:(--)|(\\[CDATA\\[))`): a pattern that starts with
    a literal is searched for in C, 25 times faster than an alternation tried at every
    offset."""
    texts = [o for o, _close in kinds]
    common = os.path.commonprefix(texts)  # noqa: RUF071  (strings, not paths)
    rest = "|".join(f"({re.escape(o[len(common):])})" for o in texts)
    return re.compile(f"{re.escape(common)}(?:{rest})")


_BACKTICKS = re.compile(r"`+")


def backtick_spans(
    text: str, start: int = 0, end: int | None = None, *, backslash_escapes: bool = True
) -> list[tuple[int, int]]:
    """Code spans of `text[start:end]`: a run of backticks closed by the next run as long.

    In one pass over the runs: the next run of the same length is a binary search in the
    runs of that length, so many unmatched runs cost no more than matched ones. With
    `backslash_escapes` (CommonMark) a backslash before a run takes away its first backtick.

    >>> backtick_spans("a `b` ``c`` `d")
    [(2, 5), (6, 11)]
    """
    return backtick_pairs(text, start, end, backslash_escapes=backslash_escapes)[0]


def backtick_pairs(
    text: str, start: int = 0, end: int | None = None, *, backslash_escapes: bool = True
) -> tuple[list[tuple[int, int]], bool]:
    """`backtick_spans`, and whether every run that opens one was closed: when it was, the
    spans are the same whatever text follows `end`.

    >>> backtick_pairs("a `b` ``c")
    ([(2, 5)], False)
    """
    stop = len(text) if end is None else end
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text, start, stop)]
    by_size: dict[int, list[int]] = {}  # run length -> indexes of the runs that long
    for index, (run_start, run_end) in enumerate(runs):
        by_size.setdefault(run_end - run_start, []).append(index)
    ScanCounter.searched += stop - start
    spans: list[tuple[int, int]] = []
    closed = True
    i = 0
    while i < len(runs):
        run_start, run_end = runs[i]
        if backslash_escapes:
            slashes = 0
            while run_start - slashes - 1 >= start and text[run_start - slashes - 1] == "\\":
                slashes += 1
            if slashes % 2:
                run_start += 1  # an escaped backtick opens nothing
                if run_start == run_end:
                    i += 1
                    continue
        same = by_size.get(run_end - run_start, [])
        at = bisect.bisect_right(same, i)
        if at == len(same):
            closed = False
            i += 1
            continue
        j = same[at]
        spans.append((run_start, runs[j][1]))
        i = j + 1
    return spans, closed
