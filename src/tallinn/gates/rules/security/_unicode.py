"""Helpers of the hidden-character rules: naming code points and removing them."""

from __future__ import annotations

import unicodedata

from tallinn.library import Edit, Fix


def describe(chars: str, limit: int = 3) -> str:
    """Given `"\\u202e"`, return `U+202E RIGHT-TO-LEFT OVERRIDE`; distinct characters only."""
    distinct = list(dict.fromkeys(chars))
    names = [f"U+{ord(c):04X} {unicodedata.name(c, 'UNNAMED')}" for c in distinct[:limit]]
    more = len(distinct) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def removal(start: int, end: int, what: str) -> Fix:
    """An unsafe fix deleting `text[start:end]`: it changes what the prompt renders."""
    return Fix(f"remove the {what}", (Edit(start, end, ""),), safe=False)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
