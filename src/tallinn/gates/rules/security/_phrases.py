"""Finding prompt-injection phrases in prompts, for the instruction-override rules.

A phrase is matched case-insensitively, across any whitespace and line breaks, with
invisible characters taken out first (so `ig<U+200B>nore` still reads `ignore`). Where it
stands decides the severity:

- in a fenced code block or an inline code span: not reported. Code marks an example, as
  in a prompt that teaches the model to spot injections.
- in double quotes (`"..."`, `“...”`): low. A quotation is most likely an example; a code
  span says so unambiguously and silences it.
- elsewhere in a component: high. Components are included in many commands and read less
  closely than the command in front of you.
- elsewhere in a command: medium.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from functools import lru_cache

from tallinn.gates.base import Finding, Rule
from tallinn.gates.rules.security._source import AuditFile, Kind
from tallinn.library import Severity

_QUOTED = re.compile(r'"[^"\n]*"|\u201c[^\u201d\n]*\u201d|\u00ab[^\u00bb\n]*\u00bb')


def combine(patterns: Sequence[str]) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of `patterns` (one pass over the text)."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def phrase_findings(
    file: AuditFile, rule: Rule, pattern: re.Pattern[str], words: Sequence[str], what: str
) -> Iterator[Finding]:
    """Findings of `rule` for every match of `pattern` in the prompt `file`.

    `words` are the quick test: lower-case text of which every match of `pattern` holds one,
    whitespace written as one space. A file whose `phrase_text` holds none of them cannot
    match, and most files are skipped so, a plain substring search each (an alternation of
    regular expressions, tried at every offset, took five times longer).
    """
    if not file.is_prompt:
        return
    if not any(word in file.phrase_text for word in words):
        return
    text, where = file.visible
    for match in pattern.finditer(text):
        start = match.start() if where is None else where[match.start()]
        if file.in_code(start):
            continue
        phrase = " ".join(match.group().split())
        if _quoted(file, start):
            yield file.finding(
                rule, start,
                f"quoted {what} '{phrase}'; if it is an example, put it in a code span",
                severity=Severity.INFO,
            )
        elif file.kind is Kind.COMPONENT:
            yield file.finding(
                rule, start,
                f"{what} '{phrase}' in a component, so in every command that includes it",
                severity=Severity.ERROR,
            )
        else:
            yield file.finding(rule, start, f"{what} '{phrase}'", severity=Severity.WARNING)


def _quoted(file: AuditFile, offset: int) -> bool:
    line, _ = file.position(offset)
    base = file.line_starts[line - 1]
    spans = _quoted_spans(file.lines[line - 1])
    # Spans do not overlap: only the last one starting before `offset` can hold it.
    index = bisect.bisect_left(spans, (offset - base,)) - 1
    return index >= 0 and offset - base < spans[index][1]


@lru_cache(maxsize=64)
def _quoted_spans(line: str) -> tuple[tuple[int, int], ...]:
    """The quoted stretches of one line, found once however many phrases the line holds."""
    return tuple(m.span() for m in _QUOTED.finditer(line))
