"""SARIF 2.1.0 for code scanning: the findings of a gate run, with rules and fixes.

One run, tool `tallinn`, its rules taken from the `RULES` registry. Locations are relative
to the library root (`uriBaseId` `LIBRARY_ROOT`, a file URI for a folder; a stored release
has no folder, so its base only names it); fingerprints hash code + path + message,
without line numbers, so a finding keeps its identity when lines move (as the baseline
does). Accepted findings carry a `suppressions` entry with the reason given::

    >>> log = to_sarif(readiness)
    >>> log["runs"][0]["results"][0]["ruleId"]
    'S101'
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from tallinn import __version__
from tallinn.gates.base import RULES, Confidence, Finding, Rule
from tallinn.gates.runner import Readiness
from tallinn.library import Diagnostic, Fix, Severity
from tallinn.library.diagnostics import LineIndex
from tallinn.library.files import FileReader

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
ROOT_ID = "LIBRARY_ROOT"
FINGERPRINT = "tallinn/v1"
LIBRARY_FILE = "tallinn.toml"

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
PRECISION = {Confidence.HIGH: "high", Confidence.MEDIUM: "medium", Confidence.LOW: "low"}
# GitHub ranks security alerts by this score (0.0-10.0): high >= 7, medium >= 4.
SECURITY_SEVERITY = {Severity.ERROR: "8.0", Severity.WARNING: "5.0", Severity.INFO: "2.0"}


def level(severity: Severity) -> str:
    """SARIF level of a severity: error, warning or note."""
    return LEVELS[severity]


def fingerprint(finding: Finding) -> str:
    """Given a finding, return a stable hash of code + path + message (no line numbers)."""
    key = "\0".join((finding.code, finding.path, finding.message))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def to_sarif(readiness: Readiness, rules: Mapping[str, Rule] | None = None) -> dict[str, Any]:
    """The SARIF 2.1.0 log of a gate run (a JSON-ready dict)."""
    registry = RULES if rules is None else rules
    files = readiness.reader()
    texts = _Texts(files)
    entries: list[tuple[str, Finding, dict[str, Any] | None]] = []
    for result in readiness.results:
        accepted = {risk.finding: risk for risk in result.accepted}
        for finding in result.findings:
            risk = accepted.pop(finding, None)
            entries.append((result.gate, finding, _suppression(risk) if risk else None))
        for finding, risk in accepted.items():
            entries.append((result.gate, finding, _suppression(risk)))
    codes = sorted(set(registry) | {f.code for _, f, _ in entries})
    index = {code: i for i, code in enumerate(codes)}
    descriptors = [
        _descriptor(registry[c]) if c in registry else {"id": c, "name": c} for c in codes
    ]
    results = [
        _result(gate, finding, index[finding.code], suppression, texts)
        for gate, finding, suppression in entries
    ]
    crashed = [r for r in readiness.results if "error" in r.data]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "tallinn",
                "version": __version__,
                "semanticVersion": __version__,
                "rules": descriptors,
            }},
            "automationDetails": {"id": "tallinn/gates/"},
            "originalUriBaseIds": {ROOT_ID: _base(files.root, readiness.library.path)},
            "columnKind": "unicodeCodePoints",
            "invocations": [{
                "executionSuccessful": not crashed,
                "startTimeUtc": readiness.started.isoformat(timespec="seconds").replace(
                    "+00:00", "Z"),
                "toolExecutionNotifications": [
                    {"level": "error", "message": {"text": r.details[0] if r.details
                                                   else f"gate '{r.gate}' crashed"},
                     "descriptor": {"id": r.gate}}
                    for r in crashed
                ],
            }],
            "results": results,
            "properties": {
                "verdict": readiness.verdict.label,
                "reasons": list(readiness.verdict.reasons),
                "gates": {r.gate: r.status.value for r in readiness.results},
                "contentHash": readiness.library.content_hash,
            },
        }],
    }


def _base(root: Path | None, label: str) -> dict[str, Any]:
    """Where LIBRARY_ROOT is: the library folder as a file URI; for a library with no folder
    (a stored release), no URI at all, only a description naming it. SARIF allows a base
    without a `uri` (its results stay relative, which is how GitHub reads them anyway, from
    the repository's root), and a URI made up for a release would name no real place."""
    if root is None:
        return {"description": {"text": f"the files of {label}"}}
    return {"uri": root.absolute().as_uri().rstrip("/") + "/"}


def _descriptor(rule: Rule) -> dict[str, Any]:
    doc = inspect.cleandoc(rule.doc) or rule.summary
    # The gate is the tag; GitHub files results tagged "security" as security alerts.
    properties: dict[str, Any] = {"tags": [rule.gate], "precision": PRECISION[rule.confidence]}
    if rule.gate == "security":
        properties["security-severity"] = SECURITY_SEVERITY[rule.severity]
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": _what_it_does(doc) or rule.summary},
        "help": {"text": doc, "markdown": doc},
        "defaultConfiguration": {"level": level(rule.severity)},
        "properties": properties,
    }


def _what_it_does(doc: str) -> str:
    from tallinn.gates.ruledocs import sections

    return sections(doc).get("What it does", "")


def _result(
    gate: str,
    finding: Finding,
    rule_index: int,
    suppression: dict[str, Any] | None,
    texts: _Texts,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": level(finding.severity),
        "message": {"text": finding.message},
        "partialFingerprints": {FINGERPRINT: fingerprint(finding)},
        "properties": {"gate": gate},
    }
    # GitHub rejects a whole log if one result has no location: a finding about the library
    # as a whole is anchored to its tallinn.toml, where its thresholds are set.
    path = finding.path or LIBRARY_FILE
    if not finding.path:
        result["properties"]["libraryWide"] = True
    result["locations"] = [{"physicalLocation": {
        "artifactLocation": _artifact(path),
        "region": {"startLine": max(finding.line, 1), "startColumn": max(finding.col, 1)},
    }}]
    if finding.fix is not None and finding.fix.edits and finding.path:
        result["fixes"] = [_fix(finding.path, finding.fix, texts.get(finding.path),
                                texts.lines(finding.path))]
    if suppression is not None:
        result["suppressions"] = [suppression]
    return result


def _artifact(path: str) -> dict[str, Any]:
    """A library-relative path as a URI under LIBRARY_ROOT; an absolute one as a file URI."""
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(path), "uriBaseId": ROOT_ID}


def _fix(path: str, fix: Fix, text: str | None, lines: LineIndex | None) -> dict[str, Any]:
    replacements = []
    for edit in fix.edits:
        region: dict[str, int]
        if text is not None and 0 <= edit.start <= edit.end <= len(text):
            assert lines is not None  # there is an index wherever there is a text
            start_line, start_col = lines.line_col(edit.start)
            end_line, end_col = lines.line_col(edit.end)
            region = {"startLine": start_line, "startColumn": start_col,
                      "endLine": end_line, "endColumn": end_col,
                      "charOffset": edit.start, "charLength": edit.end - edit.start}
        else:
            region = {"charOffset": edit.start, "charLength": max(edit.end - edit.start, 0)}
        replacements.append(
            {"deletedRegion": region, "insertedContent": {"text": edit.replacement}}
        )
    return {
        "description": {"text": fix.description},
        "artifactChanges": [{"artifactLocation": _artifact(path), "replacements": replacements}],
        "properties": {"safe": fix.safe},
    }


def _suppression(risk: Any) -> dict[str, Any]:
    return {
        "kind": "inSource" if risk.source == "inline" else "external",
        "status": "accepted",
        "justification": risk.reason,
    }


class _Texts:
    """File texts of the library, read once, through the run's own reader: the loader's read
    path (so a FIFO or a link leading out, reported as a finding, is not read here either),
    and the very files the gates read, whether in a folder or a stored release."""

    def __init__(self, files: FileReader) -> None:
        self.files = files
        self.cache: dict[str, str | None] = {}
        self.indexes: dict[str, LineIndex] = {}  # one per file, however many fixes it has

    def get(self, path: str) -> str | None:
        if path not in self.cache:
            text = self.files.read_text(path)
            self.cache[path] = None if isinstance(text, Diagnostic) else text
        return self.cache[path]

    def lines(self, path: str) -> LineIndex | None:
        text = self.get(path)
        if text is None:
            return None
        if path not in self.indexes:
            self.indexes[path] = LineIndex(text)
        return self.indexes[path]
