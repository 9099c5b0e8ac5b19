"""Apply the fixes attached to findings, never making a file worse.

A fix is a set of edits to one file (offsets into the text as the loader reads it: no BOM,
`\\n` newlines). `fix_files` applies the fixes of one round, writes only the files that change
(keeping their BOM and CRLF newlines), checks again, and judges each file it changed. The
fixes are kept when each removed its own finding and no kind of error that could be seen
before became more frequent; errors the fix *uncovered* do not count against it (a file whose
front matter did not parse shows only what its body can: once the front matter is fixed, the
checks that need it run, and their findings are new but not the fix's doing). Otherwise the
exact bytes are put back; when several fixes were tried together, each is then tried alone,
so that one bad fix does not hold back the others. It repeats while fixes apply, since a fixed
file may show problems its first error hid (YAML stops at the first)::

    >>> report = fix_files(root, lambda: check(load_library(root)).findings)
    >>> [str(a) for a in report.applied], report.rejected, report.remaining
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tallinn.library import Diagnostic, Edit, Fix

Check = Callable[[], Sequence[Diagnostic]]
ROUNDS = 25
"""How many rounds of fixes `fix_files` runs at most (`tallinn validate --fix` runs them all)."""
# What a body shows even when the front matter of its file does not parse (gates/xml.py
# checks it): more of these after a fix is worse, never uncovered.
BODY_CODES = frozenset({"V201", "V202", "V303", "V401", "V402", "V403", "V404", "V405"})


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
class Rejected:
    """A fix that was tried, then undone: `path:line:col: CODE description: reason`."""

    fix: Applied
    reason: str

    def __str__(self) -> str:
        return f"{self.fix}: {self.reason}"


@dataclass(frozen=True, slots=True)
class FixReport:
    """What `fix_files` did: fixes kept, fixes undone and why, files it would not touch, the
    findings it uncovered (hidden before by a broken front matter) and whether it stopped at
    its last round with fixes still to try."""

    applied: tuple[Applied, ...]
    rejected: tuple[Rejected, ...]
    skipped: tuple[tuple[str, str], ...]  # (path, reason)
    remaining: tuple[Diagnostic, ...]
    uncovered: tuple[Diagnostic, ...] = ()
    unfinished: bool = False

    @property
    def restored(self) -> tuple[str, ...]:
        """Files put back as they were at least once."""
        return tuple(sorted({r.fix.path for r in self.rejected}))

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
    root: Path, check: Check, *, unsafe: bool = False, rounds: int = ROUNDS,
    findings: Sequence[Diagnostic] | None = None,
) -> FixReport:
    """Apply the safe fixes (and unsafe ones if `unsafe`) of `check()`'s findings under `root`."""
    current = list(check() if findings is None else findings)
    applied: list[Applied] = []
    rejected: dict[tuple[str, str, str], Rejected] = {}  # (path, code, message) -> why
    skipped: dict[str, str] = {}
    alone: set[str] = set()  # files whose fixes are tried one at a time
    uncovered: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()  # (path, sha256 of a text written): no loops
    unfinished = False
    for number in range(rounds + 1):
        wanted: dict[str, list[Diagnostic]] = defaultdict(list)
        for finding in current:
            fix = finding.fix
            if (fix is not None and (fix.safe or unsafe) and finding.path not in skipped
                    and _key(finding) not in rejected):
                wanted[finding.path].append(finding)
        if not wanted:
            break
        if number == rounds:
            unfinished = True
            break
        originals: dict[str, bytes] = {}
        written: dict[str, str] = {}  # path -> digest of the text written this round
        pending: dict[str, list[Diagnostic]] = {}
        for path, chosen in sorted(wanted.items()):
            outcome = _fix_one(root / path, chosen[:1] if path in alone else chosen)
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
            written[path] = digest
            (root / path).write_bytes(new_raw)
            originals[path] = raw
            pending[path] = done
        if not originals:
            break
        after = list(check())
        undone = False
        for path, done in pending.items():
            before_here = [f for f in current if f.path == path]
            after_here = [f for f in after if f.path == path]
            reason = judge(done, before_here, after_here)
            if reason is None:
                applied.extend(_applied(d) for d in done)
                uncovered.extend(_new(before_here, after_here))
                continue
            (root / path).write_bytes(originals[path])
            seen.discard((path, written[path]))  # never kept: trying part of it again is no loop
            undone = True
            if len(done) > 1:
                alone.add(path)  # one of them is to blame: try each alone
            else:
                rejected[_key(done[0])] = Rejected(_applied(done[0]), reason)
        current = list(check()) if undone else after
    still = {_key(f) for f in current}
    return FixReport(
        applied=tuple(applied),
        rejected=tuple(sorted(rejected.values(), key=lambda r: (r.fix.path, r.fix.line))),
        skipped=tuple(sorted(skipped.items())),
        remaining=tuple(current),
        uncovered=tuple(f for f in uncovered if _key(f) in still),
        unfinished=unfinished,
    )


def judge(done: Sequence[Diagnostic], before: Sequence[Diagnostic],
          after: Sequence[Diagnostic]) -> str | None:
    """Why the fixes `done` to one file must be undone, given its findings before and after
    them; None when they are kept.

    Each fix must remove its own finding, and no code's errors may grow, except codes that
    need the front matter when the front matter did not parse before (their findings were
    hidden, not caused).
    """
    remaining = Counter(_key(f) for f in after)
    for finding in done:
        if remaining[_key(finding)] >= sum(_key(f) == _key(finding) for f in before):
            return f"its finding is still there ({finding.code} {finding.message})"
    hidden = any(f.is_error and f.code.startswith("V1") for f in before)
    errors_before = Counter(f.code for f in before if f.is_error)
    errors_after = Counter(f.code for f in after if f.is_error)
    for code, count in sorted(errors_after.items()):
        extra = count - errors_before[code]
        if extra <= 0 or (hidden and code not in BODY_CODES):
            continue
        example = next(f for f in after if f.code == code and f.is_error
                       and _key(f) not in {_key(b) for b in before})
        more = "another" if extra == 1 else f"{extra} more"
        return (f"it added {more} {code} error ({example.line}:{example.col}: "
                f"{example.message})")
    return None


def _key(finding: Diagnostic) -> tuple[str, str, str]:
    return (finding.path, finding.code, finding.message)


def _applied(finding: Diagnostic) -> Applied:
    description = finding.fix.description if finding.fix is not None else ""
    return Applied(finding.path, finding.line, finding.col, finding.code, description)


def _new(before: Sequence[Diagnostic], after: Sequence[Diagnostic]) -> list[Diagnostic]:
    old = {_key(f) for f in before}
    return [f for f in after if _key(f) not in old]


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
