"""The security rules' quick tests never skip what their full checks would flag: the words
of the phrase rules, the candidate lines of the secret rule."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tallinn.gates.rules.security import AuditFile, Kind, hardcoded_secret
from tallinn.gates.rules.security import instruction_override_phrase as override
from tallinn.gates.rules.security import jailbreak_phrase as jailbreak


@pytest.mark.parametrize("rule", [override, jailbreak], ids=lambda m: m.__name__.rpartition(".")[2])
def test_every_match_of_a_phrase_rule_holds_one_of_its_words(rule: ModuleType) -> None:
    """Texts drawn from each rule's own pattern, in any case and spacing: the words of the
    quick test are found in each file's phrase text, so no match is skipped unread."""

    @settings(max_examples=400, deadline=None)
    @given(st.from_regex(rule.PATTERN), st.text(max_size=5), st.text(max_size=5))
    def holds_a_word(phrase: str, before: str, after: str) -> None:
        file = AuditFile("commands/a.md", f"{before} {phrase} {after}", Kind.of("commands/a.md"))
        if rule.PATTERN.search(file.visible[0]):
            assert any(word in file.phrase_text for word in rule._WORDS), phrase

    holds_a_word()


def test_the_visible_text_maps_back_to_the_file() -> None:
    """Invisible characters are taken out and each offset of what is left maps to its place
    in the file; variation selectors (emoji) stay, and alone they leave the offsets as they
    are."""
    file = AuditFile("commands/a.md", "a\u200b\u200bb\u2060c", Kind.COMMAND)
    text, where = file.visible
    assert text == "abc"
    assert where == [0, 3, 5, 6]
    emoji = AuditFile("commands/a.md", "\u26a0\ufe0f Ignore", Kind.COMMAND)
    assert emoji.visible == ("\u26a0\ufe0f Ignore", None)
    assert emoji.phrase_text == "\u26a0\ufe0f ignore"
    assert AuditFile("commands/a.md", "A\n\t B\u017f", Kind.COMMAND).phrase_text == "a bs"


# The candidate lines as first written: one regular expression, its matches checked in Python.
_CANDIDATE = re.compile(r"[A-Za-z0-9_+/=.\-]{16,}|://[^\s@/]*@")


def regex_candidate_lines(file: AuditFile) -> list[int]:
    lines: set[int] = set()
    for match in _CANDIDATE.finditer(file.text):
        value = match.group()
        if value.startswith("://") or re.search("[0-9]", value) or (
            len(value) >= 28 and not value.islower() and not value.isupper()
        ):
            lines.add(file.position(match.start())[0])
    return sorted(lines)


CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "tallinn-2025-07"
SAMPLES = sorted([*(Path(__file__).resolve().parents[1] / "cases").glob("*.md"),
                  *CORPUS.rglob("*.md")])


def test_candidate_lines_are_the_regular_expressions_on_every_sample() -> None:
    """On the rule cases and the 2025 corpus, the runs cut in C give the lines the regular
    expression gives."""
    for path in SAMPLES:
        file = AuditFile(path.name, path.read_text(encoding="utf-8"), Kind.COMMAND)
        assert hardcoded_secret._candidate_lines(file) == regex_candidate_lines(file), path


_PIECES = st.sampled_from(["a" * 15, "A" * 14, "0", "x", "Ab", "=" * 13, "+/", "-.", "_",
                           " ", "\n", "é", "\u00e9" * 3, "\U0001f600", "://", "u:p@", "@",
                           "\ud800", "\t", "ghp_", "\u200b"])


@settings(max_examples=600, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_any_text_gives_the_regular_expressions_candidate_lines(text: str) -> None:
    """Runs at the start, the end, beside non-ASCII text and lone surrogates, across lines."""
    file = AuditFile("commands/a.md", text, Kind.COMMAND)
    assert hardcoded_secret._candidate_lines(file) == regex_candidate_lines(file)
