"""What the rules of gate 1 share: the gate's name and offsets from lines and columns."""

from __future__ import annotations

GATE = "xml"


def offset(text: str, line: int, col: int) -> int | None:
    """Given a 1-based `line` and `col` of `text`, return the offset; None if out of range."""
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    end = text.find("\n", start)
    end = len(text) if end == -1 else end
    position = start + col - 1
    return position if start <= position <= end else None


def line_span(text: str, position: int) -> tuple[int, int]:
    """The (start, end) offsets of the line holding `position`, without its newline."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return start, len(text) if end == -1 else end
