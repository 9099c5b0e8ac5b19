"""Apply the fixes attached to findings, never making a file worse.

A fix is a set of edits to one file (offsets into the text as the loader reads it: no BOM,
`\\n` newlines). `fix_files` applies the fixes of one round, writes only the files that change
(keeping their BOM and CRLF newlines), checks again, and puts back the exact bytes of any file
that now has more errors than before. It repeats while fixes apply, since a fixed file may show
problems its first error hid (YAML stops at the first)::

    >>> report = fix_files(root, lambda: check(load_library(root)).findings)
    >>> [str(a) for a in report.applied], report.remaining
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tallinn.library import Diagnostic, Edit, Fix

Check = Callable[[], Sequence[Diagnostic]]


@dataclass(frozen=True, slots=True)
class Applied:
    """A fix that was applied and kept: `path:line:col: CODE description`."""

    path: str
    line: int
    col: int
    code: str
    description: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.description}"


@dataclass(frozen=True, slots=True)
class FixReport:
    """What `fix_files` did: fixes kept, files put back, files it would not touch."""

    applied: tuple[Applied, ...]
    restored: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, reason)
    remaining: tuple[Diagnostic, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(sorted({a.path for a in self.applied}))


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """Apply non-overlapping `edits` to `text`; raises ValueError if two overlap."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    out: list[str] = []
    pos = 0
    for edit in ordered:
        if edit.start < pos or edit.end < edit.start or edit.end > len(text):
            raise ValueError(f"edit {edit} overlaps another or falls outside the text")
        out.append(text[pos : edit.start])
        out.append(edit.replacement)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


def select_fixes(fixes: Iterable[Fix]) -> list[Fix]:
    """Keep fixes whose edits overlap no fix kept before them (in the order given)."""
    kept: list[Fix] = []
    taken: list[tuple[int, int]] = []
    for fix in fixes:
        spans = [(e.start, e.end) for e in fix.edits]
        if any(_overlap(span, other) for span in spans for other in taken):
            continue
        kept.append(fix)
        taken.extend(spans)
    return kept


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    if a[0] == a[1] or b[0] == b[1]:  # an insertion touches only where it stands
        return b[0] < a[0] < b[1] or a[0] < b[0] < a[1] or a == b
    return a[0] < b[1] and b[0] < a[1]


def fix_files(
    root: Path, check: Check, *, unsafe: bool = False, rounds: int = 10,
    findings: Sequence[Diagnostic] | None = None,
) -> FixReport:
    """Apply the safe fixes (and unsafe ones if `unsafe`) of `check()`'s findings under `root`."""
    current = list(check() if findings is None else findings)
    applied: list[Applied] = []
    restored: set[str] = set()
    skipped: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()  # (path, sha256 of a text written): no loops
    for _ in range(rounds):
        wanted: dict[str, list[Diagnostic]] = defaultdict(list)
        for finding in current:
            fix = finding.fix
            if fix is not None and (fix.safe or unsafe) and finding.path not in restored:
                wanted[finding.path].append(finding)
        if not wanted:
            break
        originals: dict[str, bytes] = {}
        pending: dict[str, list[Applied]] = {}
        for path, chosen in sorted(wanted.items()):
            outcome = _fix_one(root / path, chosen)
            if isinstance(outcome, str):
                skipped[path] = outcome
                continue
            raw, new_raw, done = outcome
            seen.add((path, hashlib.sha256(raw).hexdigest()))
            digest = hashlib.sha256(new_raw).hexdigest()
            if (path, digest) in seen:
                skipped[path] = "the fixes undo each other"
                continue
            seen.add((path, digest))
            (root / path).write_bytes(new_raw)
            originals[path] = raw
            pending[path] = [
                Applied(d.path, d.line, d.col, d.code, d.fix.description)
                for d in done if d.fix is not None
            ]
        if not originals:
            break
        before = _errors(current)
        after_findings = list(check())
        after = _errors(after_findings)
        worse = [p for p in originals if after[p] > before[p]]
        for path in worse:
            (root / path).write_bytes(originals[path])
            restored.add(path)
            del pending[path]
        current = list(check()) if worse else after_findings
        for items in pending.values():
            applied.extend(items)
    return FixReport(
        applied=tuple(applied),
        restored=tuple(sorted(restored)),
        skipped=tuple(sorted(skipped.items())),
        remaining=tuple(current),
    )


def _fix_one(
    path: Path, chosen: list[Diagnostic]
) -> tuple[bytes, bytes, list[Diagnostic]] | str:
    """Apply `chosen` fixes to one file: (old bytes, new bytes, applied) or why not."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read the file: {exc}"
    bom = text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    crlf = "\r\n" in text
    if crlf and text.count("\n") != text.count("\r\n"):
        return "the file mixes CRLF and LF newlines"
    text = text.replace("\r\n", "\n")
    by_fix = {id(d.fix): d for d in chosen}
    kept = select_fixes(d.fix for d in chosen if d.fix is not None)
    try:
        new = apply_edits(text, (edit for fix in kept for edit in fix.edits))
    except ValueError as exc:  # pragma: no cover - select_fixes keeps edits apart
        return str(exc)
    if new == text:
        return "the fixes change nothing"
    if crlf:
        new = new.replace("\n", "\r\n")
    new_raw = (("\ufeff" if bom else "") + new).encode("utf-8")
    return raw, new_raw, [by_fix[id(fix)] for fix in kept]


def _errors(findings: Iterable[Diagnostic]) -> Counter[str]:
    return Counter(f.path for f in findings if f.is_error)
