"""Words shared by every message and report: counts (`plural(3, "command")`) and the names a
"did you mean" offers (`close_matches`)."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["close_matches", "plural"]


def plural(count: int, word: str, many: str | None = None) -> str:
    """Given `2, "finding"`, return `"2 findings"`; given `1, "finding"`, `"1 finding"`.

    `many` spells an irregular plural: `plural(2, "fix", "fixes")` is `"2 fixes"`.
    """
    return f"{count} {word if count == 1 else (many or word + 's')}"


def close_matches(word: str, possibilities: Iterable[str], n: int = 3,
                  cutoff: float = 0.6) -> list[str]:
    """`difflib.get_close_matches`, with the same result, the best first, in a fraction of
    the time on many names.

    difflib works out the full similarity of every name whose quick upper bound reaches
    `cutoff`, and names alike in their letters (`quality/ethical-reasoning` beside a hundred
    other components) pass that bound by the dozen. Here the bound is the longest common
    subsequence, found a character at a time with bit operations: difflib's matching blocks
    are one common subsequence, so its similarity is never above the bound. The names are
    taken by their bound, highest first, and the search stops once no name left can beat the
    `n`-th found.
    """
    import difflib

    positions: dict[str, int] = {}  # character -> bit mask of where `word` holds it
    for index, char in enumerate(word):
        positions[char] = positions.get(char, 0) | 1 << index
    bounded: list[tuple[float, str]] = []
    for name in possibilities:
        total = len(name) + len(word)
        bound = 2.0 * _common_length(name, positions, len(word)) / total if total else 1.0
        if bound >= cutoff:
            bounded.append((bound, name))
    bounded.sort(reverse=True)
    matcher = difflib.SequenceMatcher()
    matcher.set_seq2(word)
    best: list[tuple[float, str]] = []  # (similarity, name), as difflib ranks them
    for bound, name in bounded:
        if len(best) == n and bound < best[-1][0]:
            break
        matcher.set_seq1(name)
        score = matcher.ratio()
        if score >= cutoff:
            best.append((score, name))
            best.sort(reverse=True)
            del best[n:]
    return [name for _score, name in best]


def _common_length(text: str, positions: dict[str, int], size: int) -> int:
    """The length of the longest common subsequence of `text` and a word of `size`
    characters whose `positions` are given (Hyyrö's bit-vector form: one step a character)."""
    full = (1 << size) - 1
    rows = full
    for char in text:
        matched = rows & positions.get(char, 0)
        rows = ((rows + matched) | (rows - matched)) & full
    return size - rows.bit_count()
