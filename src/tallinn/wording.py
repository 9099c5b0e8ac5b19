"""Words for counts, shared by every message and report: `plural(3, "command")`."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, many: str | None = None) -> str:
    """Given `2, "finding"`, return `"2 findings"`; given `1, "finding"`, `"1 finding"`.

    `many` spells an irregular plural: `plural(2, "fix", "fixes")` is `"2 fixes"`.
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"
