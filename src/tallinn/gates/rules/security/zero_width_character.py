"""S402 zero-width-character: invisible characters inside text."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.gates.rules.security._unicode import describe, plural, removal
from tallinn.library import Severity

_ZERO_WIDTH = re.compile("[\u200b-\u200d\u2060-\u2064\u180e\ufeff]+")
_JOINERS = frozenset("\u200c\u200d")
_EMOJI_PARTS = re.compile("[\ufe0f\U0001f3fb-\U0001f3ff]")


@rule("S402", "zero-width-character", "security", Severity.WARNING,
      "an invisible zero-width character is hidden in the text",
      confidence=Confidence.HIGH, fixable=True)
def zero_width_character(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags zero-width and invisible formatting characters: ZERO WIDTH SPACE (U+200B), NON-JOINER
    (U+200C), JOINER (U+200D), WORD JOINER (U+2060), the invisible operators U+2061 to U+2064,
    U+180E, and U+FEFF anywhere but as the byte-order mark opening a file. A joiner inside an emoji
    sequence (woman + ZWJ + laptop) or between letters of a script that uses it (Persian,
    Indic) is not flagged.

    Why is this bad?
    Nobody sees them, but they split words for tools and models: `ig<U+200B>nore` passes a
    keyword filter that `ignore` would not, and they can carry hidden data.

    Example:
    `Run the tests` with a U+200B between `t` and `ests`.

    Use instead:
    Plain text.

    Fix safety:
    The fix removes the characters. It is unsafe: it changes the text the prompt renders.
    """
    if not file.hidden:
        return
    for match in _ZERO_WIDTH.finditer(file.text):
        start, end = match.span()
        chars = match.group()
        if _legitimate_joiner(file.text, start, end):
            continue
        yield file.finding(
            RULE, start,
            f"{plural(len(chars), 'invisible character')} ({describe(chars)}) hidden in the text",
            fix=removal(start, end, "invisible characters"),
        )


def _legitimate_joiner(text: str, start: int, end: int) -> bool:
    """A lone ZWJ/ZWNJ between emoji parts or between letters of a non-Latin script."""
    if end - start != 1 or text[start] not in _JOINERS or start == 0 or end >= len(text):
        return False
    before, after = text[start - 1], text[end]
    return all(_joinable(c) for c in (before, after))


def _joinable(char: str) -> bool:
    if ord(char) < 0x250:
        return False
    category = unicodedata.category(char)
    return category in ("So", "Sk", "Mn", "Mc", "Lo", "Lm") or bool(_EMOJI_PARTS.match(char))


RULE = RULES["S402"]
