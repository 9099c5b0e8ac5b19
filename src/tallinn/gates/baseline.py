"""Accepted findings: a baseline file and inline suppressions, for any gate.

A **baseline** is a JSON file listing findings that were looked at and accepted, each with
the reason. A finding is identified by code + path + message, never by line, so an entry
survives edits elsewhere in the file (as in bandit)::

    {
      "version": 1,
      "findings": [
        {"code": "S301", "path": "tests/auth.yaml", "severity": "error",
         "message": "...", "reason": "revoked key kept as a fixture"}
      ]
    }

An entry accepts as many findings with its fingerprint as it appears in the file. An entry
whose reason is empty or still starts with `TODO` (what `--write-baseline` writes) accepts
nothing: writing a baseline records what is there, and a person still has to say why each
finding is acceptable before it stops counting.

An **inline suppression** accepts the findings of the named codes on its own line and on
the next one; on the line before a fenced code block it covers the whole block::

    <!-- tallinn: ignore[S501] quoted as an example of an attack -->
    # tallinn: ignore[S102, S103] (in code, any comment syntax works)

A suppression without a reason still applies (it is a deliberate act on one line), but the
security gate reports it (`S901`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tallinn.gates.base import AcceptedRisk, Finding, GateResult
from tallinn.library import Diagnostic, TallinnError
from tallinn.library.files import FileReader

VERSION = 1
TODO_REASON = "TODO: justify"
_SUPPRESSION = re.compile(
    r"tallinn:\s*ignore\[(?P<codes>[^\]\n]*)\](?P<reason>.*?)(?:-->|\*/|$)", re.IGNORECASE
)

Fingerprint = tuple[str, str, str]


class BaselineError(TallinnError):
    """A baseline file is missing, is not JSON, or is not a baseline."""


def fingerprint(finding: Finding) -> Fingerprint:
    """Code + path + message: what identifies a finding across edits."""
    return finding.code, finding.path, finding.message


def justified(reason: str) -> bool:
    """Whether `reason` says why a finding is accepted (not empty, not a TODO)."""
    text = reason.strip()
    return bool(text) and not text.upper().startswith("TODO")


@dataclass(frozen=True, slots=True)
class Entry:
    """One accepted finding of a baseline."""

    code: str
    path: str
    message: str
    reason: str
    severity: str = ""

    @property
    def fingerprint(self) -> Fingerprint:
        return self.code, self.path, self.message

    def __str__(self) -> str:
        return f"{self.path}: {self.code} {self.message}"


@dataclass(frozen=True, slots=True)
class Matched:
    """The outcome of holding findings against a baseline."""

    open: tuple[Finding, ...]  # not accepted
    accepted: tuple[AcceptedRisk, ...]
    unjustified: tuple[Entry, ...]  # entries that matched but give no reason
    stale: tuple[Entry, ...]  # entries that matched nothing (fixed, or the message changed)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The entries of a baseline file (`path` is None for the empty baseline)."""

    entries: tuple[Entry, ...] = ()
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Baseline:
        """Read a baseline file; raise `BaselineError` saying what is wrong with it."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise BaselineError(f"baseline file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"cannot read baseline {path}: {exc}") from None
        return cls.parse(text, path)

    @classmethod
    def read(cls, files: FileReader, rel: str) -> Baseline:
        """Read the baseline at `rel` among a library's files (a stored release's, which has
        no folder); raise `BaselineError` as `load` does."""
        text = files.read_text(rel)
        if isinstance(text, Diagnostic):
            if not files.exists(rel):
                raise BaselineError(f"baseline file not found: {rel}")
            raise BaselineError(f"cannot read baseline {rel}: {text.message}")
        return cls.parse(text, Path(rel))

    @classmethod
    def parse(cls, text: str, path: Path) -> Baseline:
        """The baseline in `text`, read from `path`; raise `BaselineError` saying what is
        wrong with it."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BaselineError(
                f"baseline {path} is not valid JSON: {exc.msg} (line {exc.lineno})"
            ) from None
        items = data.get("findings") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise BaselineError(f"baseline {path} has no 'findings' list")
        entries = []
        for index, item in enumerate(items, 1):
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("code", "path", "message")
            ):
                raise BaselineError(
                    f"baseline {path}: finding {index} needs string 'code', 'path' and 'message'"
                )
            entries.append(Entry(item["code"], item["path"], item["message"],
                                 str(item.get("reason") or ""), str(item.get("severity", ""))))
        return cls(tuple(entries), path)

    def reasons(self) -> dict[Fingerprint, str]:
        """Fingerprint -> reason, for keeping reasons when the baseline is written again."""
        return {entry.fingerprint: entry.reason for entry in self.entries}

    def match(self, findings: Iterable[Finding]) -> Matched:
        """Split `findings` into open and accepted ones; report unjustified and stale entries."""
        available: dict[Fingerprint, list[Entry]] = {}
        for entry in self.entries:
            available.setdefault(entry.fingerprint, []).append(entry)
        used: Counter[Fingerprint] = Counter()
        open_: list[Finding] = []
        accepted: list[AcceptedRisk] = []
        unjustified: list[Entry] = []
        for finding in findings:
            key = fingerprint(finding)
            candidates = available.get(key, [])
            if used[key] >= len(candidates):
                open_.append(finding)
                continue
            entry = candidates[used[key]]
            used[key] += 1
            if justified(entry.reason):
                accepted.append(AcceptedRisk(finding, entry.reason.strip(), "baseline"))
            else:
                open_.append(finding)
                unjustified.append(entry)
        stale = [e for key, group in available.items() for e in group[used[key]:]]
        return Matched(tuple(open_), tuple(accepted), tuple(unjustified), tuple(stale))


def write(
    path: Path, findings: Iterable[Finding], reasons: Mapping[Fingerprint, str] | None = None
) -> int:
    """Write a baseline accepting `findings`; keep known reasons, else `TODO: justify`.

    Returns the number of entries written.
    """
    known = reasons or {}
    ordered = sorted(findings, key=lambda f: (f.path, f.code, f.line, f.col, f.message))
    items: list[dict[str, Any]] = [
        {
            "code": f.code,
            "path": f.path,
            "severity": f.severity.value,
            "message": f.message,
            "reason": known.get(fingerprint(f)) or TODO_REASON,
        }
        for f in ordered
    ]
    document = {"version": VERSION, "findings": items}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(items)


def write_results(path: Path, results: Iterable[GateResult], previous: Path | None) -> int:
    """Write a baseline of what gate `results` found: open findings and those the baseline
    accepted (inline suppressions stay inline), keeping the reasons of the `previous` baseline.
    """
    findings: list[Finding] = []
    for result in results:
        findings += result.findings
        findings += [a.finding for a in result.accepted if a.source == "baseline"]
    reasons = Baseline.load(previous).reasons() if previous is not None else {}
    return write(path, findings, reasons)


@dataclass(frozen=True, slots=True)
class Suppression:
    """`tallinn: ignore[CODES] reason` written at `line`, covering lines `first..last`."""

    codes: tuple[str, ...]
    reason: str
    line: int
    col: int
    first: int
    last: int

    def covers(self, finding: Finding) -> bool:
        return self.first <= finding.line <= self.last and finding.code in self.codes


def parse_suppressions(text: str, blocks: Mapping[int, int] | None = None) -> list[Suppression]:
    """The inline suppressions of a file.

    `blocks` maps the first line of a block (e.g. a fenced code block) to its last line:
    a suppression on the line before a block covers the whole block.

    >>> parse_suppressions("x <!-- tallinn: ignore[S101] fixture -->")[0].reason
    'fixture'
    """
    if "tallinn" not in text.lower():
        return []
    spans = blocks or {}
    found: list[Suppression] = []
    for number, line in enumerate(text.split("\n"), 1):
        for match in _SUPPRESSION.finditer(line):
            codes = tuple(
                c.strip().upper() for c in match["codes"].split(",") if c.strip()
            )
            reason = match["reason"].strip(" \t:-\u2014")
            last = spans.get(number + 1, number + 1)
            found.append(Suppression(codes, reason, number, match.start() + 1, number, last))
    return found


def apply_suppressions(
    findings: Iterable[Finding], suppressions: Mapping[str, Sequence[Suppression]]
) -> tuple[list[Finding], list[AcceptedRisk]]:
    """Split `findings` into those no inline suppression covers and the suppressed ones."""
    open_: list[Finding] = []
    accepted: list[AcceptedRisk] = []
    for finding in findings:
        cover = next((s for s in suppressions.get(finding.path, ()) if s.covers(finding)), None)
        if cover is None:
            open_.append(finding)
        else:
            reason = cover.reason or "(no reason given)"
            accepted.append(AcceptedRisk(finding, reason, "inline"))
    return open_, accepted
