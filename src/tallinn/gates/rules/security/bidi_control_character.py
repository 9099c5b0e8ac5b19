"""S401 bidi-control-character: bidirectional overrides and isolates (Trojan Source)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tallinn.gates.base import RULES, Confidence, Finding, rule
from tallinn.gates.rules.security._source import AuditFile
from tallinn.gates.rules.security._unicode import describe, plural, removal
from tallinn.library import Severity

_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]+")


@rule("S401", "bidi-control-character", "security", Severity.ERROR,
      "a bidirectional control character reorders how text is displayed",
      confidence=Confidence.HIGH, fixable=True)
def bidi_control_character(file: AuditFile) -> Iterator[Finding]:
    """What it does:
    Flags the bidirectional embedding, override and isolate characters U+202A to U+202E
    and U+2066 to U+2069 in any file of the library, with the exact line, column and code
    points. (The marks U+200E and U+200F, needed in right-to-left text, are not flagged.)

    Why is this bad?
    They make text display in a different order from the one it is stored and read in:
    a reviewer sees one instruction while the model gets another ("Trojan Source",
    CVE-2021-42574).

    Example:
    A line that displays as `Summarise the file` but is stored with U+202E and reversed
    text after it.

    Use instead:
    Plain text. Right-to-left languages need no override characters; the Unicode
    bidirectional algorithm handles them.

    Fix safety:
    The fix removes the characters. It is unsafe: it changes the text the prompt renders
    (which is the point, but review the line).
    """
    if not file.hidden:
        return
    for match in _BIDI.finditer(file.text):
        chars = match.group()
        yield file.finding(
            RULE, match.start(),
            f"{plural(len(chars), 'bidirectional control character')} ({describe(chars)}) "
            "can show text in a different order from the one the model reads",
            fix=removal(match.start(), match.end(), "bidirectional control characters"),
        )


RULE = RULES["S401"]
