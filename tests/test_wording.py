"""`close_matches` offers what difflib's `get_close_matches` offers, in the same order."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallinn import wording
from tallinn.wording import close_matches

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "tallinn-2025-07"
_NAMES = st.text(alphabet="abcde/-_", max_size=12)


@settings(max_examples=800, deadline=None)
@given(_NAMES, st.lists(_NAMES, max_size=30), st.integers(1, 4),
       st.sampled_from([0.0, 0.3, 0.5, 0.6, 0.8, 1.0]))
def test_any_names_give_difflibs_matches(word: str, names: list[str], n: int,
                                         cutoff: float) -> None:
    """Ties, duplicates, empty names and every cutoff: the same names, ranked the same."""
    assert close_matches(word, names, n, cutoff) == difflib.get_close_matches(
        word, names, n, cutoff)


def test_component_names_give_difflibs_matches() -> None:
    """Every component name of the 2025 corpus (or of the starter library), misspelt in a few
    ways, against all the others: where many names are alike, as in a real library."""
    root = CORPUS if CORPUS.is_dir() else Path(__file__).resolve().parents[1] / "src"
    names = sorted({p.relative_to(p.parents[1]).with_suffix("").as_posix()
                    for p in root.rglob("*.md")})
    assert len(names) > 20
    for name in names:
        for word in (name, name[:-2], name.replace("-", ""), name[::-1], "x" + name[1:]):
            assert close_matches(word, names, 2) == difflib.get_close_matches(word, names, 2)


def test_the_search_stops_once_nothing_left_can_beat_the_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Of 50 names alike, all within the quick bound, an exact match is scored first and ends
    the search for one match; difflib scores all 50."""
    scored: list[str] = []
    ratio = difflib.SequenceMatcher.ratio

    def counted(self: difflib.SequenceMatcher[str]) -> float:
        scored.append(str(getattr(self, "a")))  # noqa: B009  (typeshed leaves `a` out)
        return ratio(self)

    monkeypatch.setattr(difflib.SequenceMatcher, "ratio", counted)
    names = [f"review-{i:02d}" for i in range(50)]
    assert difflib.get_close_matches("review-07", names, 1) == ["review-07"]
    assert set(scored) == set(names)
    scored.clear()
    assert close_matches("review-07", names, 1) == ["review-07"]
    assert scored == ["review-07"]


def _dynamic_common_length(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for char in a:
        diagonal = 0
        for j, other in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if char == other else max(row[j], row[j - 1])
    return row[-1]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="abcé/-", max_size=20), st.text(alphabet="abcé/-", max_size=20))
def test_the_bound_is_the_longest_common_subsequence(a: str, b: str) -> None:
    """The bit-vector length equals the textbook dynamic programme's."""
    positions: dict[str, int] = {}
    for index, char in enumerate(b):
        positions[char] = positions.get(char, 0) | 1 << index
    assert wording._common_length(a, positions, len(b)) == _dynamic_common_length(a, b)
