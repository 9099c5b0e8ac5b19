"""The security rules: case files show what each flags and leaves alone; rule docs."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tallinn.gates.base import RULES
from tallinn.gates.baseline import apply_suppressions
from tallinn.gates.ruledocs import missing_sections, sections
from tallinn.gates.rules.security import CHECKS, AuditFile, Kind
from tallinn.library import Diagnostic

CASES = Path(__file__).resolve().parents[1] / "cases"
MARK = re.compile(r"<!-- (error|warning|info): (S\d{3}) -->")
SEPARATOR = re.compile(r"^<!-- case(?:: (?P<title>[^\n]*))? -->\n", re.MULTILINE)
PATH = re.compile(r"\[(?P<path>[^\]]+)\]\s*$")


def chunks(text: str, code: str) -> list[tuple[int, str, str]]:
    """Split a case file on its `<!-- case: ... -->` lines: (first line, path, text).

    A case is audited as `commands/cases/<code>.md` unless its title ends with a path in
    brackets: `<!-- case: a token in the settings [tallinn.toml] -->`.
    """
    found = []
    separators = list(SEPARATOR.finditer(text))
    for index, separator in enumerate(separators):
        end = separators[index + 1].start() if index + 1 < len(separators) else len(text)
        named = PATH.search(separator["title"] or "")
        path = named["path"] if named else f"commands/cases/{code}.md"
        found.append((text.count("\n", 0, separator.end()) + 1, path,
                      text[separator.end():end]))
    return found


def audit_case(path: str, text: str) -> list[Diagnostic]:
    """Run every security rule on one case, as the gate does (inline suppressions apply)."""
    file = AuditFile(path, text, Kind.of(path))
    findings = [finding for check in CHECKS.values() for finding in check(file)]
    open_, _ = apply_suppressions(findings, {path: file.suppressions})
    return open_


@pytest.mark.parametrize("path", sorted(CASES.glob("S*.md")), ids=lambda p: p.stem)
def test_case_file(path: Path) -> None:
    """Exactly the marked lines are flagged, with the marked code and severity."""
    text = path.read_text(encoding="utf-8")
    expected: Counter[tuple[int, str, str]] = Counter()
    found: Counter[tuple[int, str, str]] = Counter()
    clean = 0
    for first_line, rel, chunk in chunks(text, path.stem):
        marks = Counter((first_line + number, m[2], m[1])
                        for number, line in enumerate(chunk.split("\n"))
                        for m in MARK.finditer(line))
        expected += marks
        clean += not marks
        found += Counter((first_line + d.line - 1, d.code, d.severity.value)
                         for d in audit_case(rel, chunk))
    assert sorted(found.elements()) == sorted(expected.elements())
    assert any(code == path.stem for _, code, _ in expected), "no flagged case"
    assert clean, "no clean case"


def test_every_rule_has_a_case_file() -> None:
    assert sorted(p.stem for p in CASES.glob("S*.md")) == sorted(CHECKS)


@pytest.mark.parametrize("code", sorted(CHECKS))
def test_rule_docs_have_the_sections(code: str) -> None:
    """Each rule says what it does, why, with an example, what to do instead, fix safety."""
    rule = RULES[code]
    assert rule.gate == "security"
    assert missing_sections(rule) == []
    assert {"Example", "Use instead", "Fix safety"} <= set(sections(rule.doc))
