"""Gate 4, the security audit: what a prompt library could make a model or a machine do.

The audit reads the files themselves, not only what the loader accepted, so a file with a
front-matter error is audited too: `tallinn.toml`, `README*`, and every file under
`commands/`, `components/` and `tests/`. It reads them through `tallinn.library.files`, the
loader's own read path, so it sees the very text the loader serves (a file the loader has
loaded is audited in the text it loaded, not read again); a file it cannot read
(not UTF-8, over the size limit, not a regular file, a link leading out) is a blocking
finding, S902, never skipped. Prompt rules (code blocks, shell lines, override
phrases, permissions) read commands and components; secrets and hidden characters are
looked for in every file. The rules are in `tallinn.gates.rules.security`.

Severity high/medium/low is `Severity.ERROR/WARNING/INFO`. The gate FAILS on any high
finding that neither the baseline nor an inline suppression accepts; medium and low are
counted and, when `max_medium` / `max_low` are set, fail the gate beyond them::

    [gates.security]
    baseline = ".tallinn/security-baseline.json"   # relative to the library root
    max_medium = 10                                 # default: counted, not graded
    ignore = ["S104"]                               # rules not run

`--baseline FILE` (`options["baseline"]`) takes precedence over the configured file. See
`tallinn.gates.baseline` for baseline entries and inline suppressions.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from tallinn.gates import baseline as baselines
from tallinn.gates.base import (
    Finding,
    GateContext,
    GateResult,
    GateSettings,
    Metric,
    describe,
    gate_settings,
    grade,
)
from tallinn.gates.rules.security import CHECKS, AuditFile, Kind
from tallinn.library import Diagnostic, Severity
from tallinn.library.files import Limits
from tallinn.library.loader import CONFIG_FILE, load_config
from tallinn.library.source import LibrarySource, as_source

NAME = "security"
TITLE = "Security audit"

_FOLDERS = ("commands", "components", "tests")
_SKIP_DIRS = frozenset({"node_modules", "__pycache__"})
_LEVEL = {Severity.ERROR: "high", Severity.WARNING: "medium", Severity.INFO: "low"}


class SecuritySettings(GateSettings):
    """`[gates.security]` in tallinn.toml."""

    baseline: str | None = None
    """Baseline file of accepted findings, relative to the library root."""
    max_medium: int | None = Field(default=None, ge=0)
    """Most medium findings allowed; None counts them without grading."""
    max_low: int | None = Field(default=None, ge=0)
    """Most low findings allowed; None counts them without grading."""
    ignore: list[str] = Field(default_factory=list)
    """Rule codes not to run, e.g. ["S104"]."""

    @field_validator("ignore")
    @classmethod
    def _known_codes(cls, codes: list[str]) -> list[str]:
        unknown = [c for c in codes if c.upper() not in CHECKS]
        if unknown:
            raise ValueError(f"unknown security rule code(s): {', '.join(unknown)}")
        return [c.upper() for c in codes]


@dataclass(frozen=True, slots=True)
class Audit:
    """The raw outcome of auditing a library folder, before suppressions and baseline."""

    findings: tuple[Finding, ...]
    files: tuple[AuditFile, ...]

    def suppressions(self) -> dict[str, list[baselines.Suppression]]:
        return {f.path: f.suppressions for f in self.files if f.suppressions}


UNAUDITABLE = "S902"
describe(UNAUDITABLE, "A library file cannot be read, so it cannot be audited", NAME,
         Severity.ERROR, "unauditable-file", doc="""
    ## What it does
    Reports every file under `commands/`, `components/` and `tests/` (and `tallinn.toml`,
    `README*`) that the audit cannot read: one that is not UTF-8, larger than
    `[limits] max_file_bytes`, not a regular file (a FIFO, a socket, a device), or a
    symbolic link that is broken, loops or leads outside the library.

    ## Why is this bad?
    The audit reads each file exactly as the loader does. A file it cannot read is one
    nobody has checked, and one that may hide what a loader elsewhere serves; the gate
    cannot say GO for it.

    ## Example
    `commands/setup.md` saved as UTF-16, or a link `commands/x.md -> /etc/passwd`.

    ## Use instead
    Save the file as UTF-8, keep it under the size limit, and keep links inside the
    library folder; remove files that are not text.
    """)


def audit(
    root: LibrarySource | Path, *, ignore: Collection[str] = (), limits: Limits | None = None,
    texts: Mapping[str, str] | None = None,
) -> Audit:
    """Run every security rule (but those in `ignore`) on the files of the library `root` (a
    source, or a folder).

    A file that cannot be read is an S902 finding. `limits` default to the library's own.
    `texts` are files the loader has read already, by relative path (the `source` of its
    documents): those are audited as loaded, not read again.
    """
    if limits is None:
        limits = load_config(root, [], hashlib.sha256()).limits
    read, problems = read_library_files(root, limits, texts)
    checks = [check for code, check in CHECKS.items() if code not in ignore]
    found: set[Finding] = {_unauditable(problem) for problem in problems}
    for file in read:
        for check in checks:
            found.update(check(file))
    ordered = sorted(found, key=lambda d: (d.path, d.line, d.col, d.code, d.message))
    return Audit(tuple(ordered), tuple(read))


def _unauditable(problem: Diagnostic) -> Finding:
    return Diagnostic(UNAUDITABLE, f"not audited: {problem.message}", problem.path,
                      problem.line, problem.col)


def _audited(name: str) -> bool:
    return not name.startswith(".")


def library_files(
    root: LibrarySource | Path, limits: Limits | None = None
) -> Iterator[AuditFile]:
    """The audited files of a library that can be read, in a stable order, as `AuditFile`s."""
    yield from read_library_files(root, limits or Limits())[0]


def read_library_files(
    root: LibrarySource | Path, limits: Limits, texts: Mapping[str, str] | None = None
) -> tuple[list[AuditFile], list[Diagnostic]]:
    """The audited files of a library, read as the loader reads them (or as it read them:
    `texts`), and those not read."""
    reader = as_source(root).files(limits)
    candidates: list[str] = []
    problems: list[Diagnostic] = []
    if reader.exists(CONFIG_FILE):
        candidates.append(CONFIG_FILE)
    names = reader.names("")
    candidates.extend(name for name in names if name.lower().startswith("readme"))
    for folder in _FOLDERS:
        paths, walked = reader.walk(folder, _audited, _SKIP_DIRS)
        candidates.extend(paths)
        problems.extend(walked)
    read: list[AuditFile] = []
    loaded = texts or {}
    for rel in candidates:
        known = loaded.get(rel)
        text = known if known is not None else reader.read_text(rel)
        if isinstance(text, Diagnostic):
            problems.append(text)
            continue
        read.append(AuditFile(rel, text, Kind.of(rel), limits))
    return read, problems


def baseline_path(ctx: GateContext, settings: SecuritySettings | None = None) -> Path | None:
    """The baseline in use: `options["baseline"]`, else `[gates.security] baseline`."""
    option = ctx.options.get("baseline")
    if option:
        return Path(option)
    configured = (settings or gate_settings(ctx.library, NAME, SecuritySettings)).baseline
    return ctx.root / configured if configured and ctx.root is not None else None


def load_baseline(ctx: GateContext, settings: SecuritySettings) -> baselines.Baseline:
    """The baseline in use (see `baseline_path`), empty when there is none. A library with no
    folder (a stored release) reads `[gates.security] baseline` among its own files, as a
    checkout of it would."""
    path = baseline_path(ctx, settings)
    if path is not None:
        return baselines.Baseline.load(path)
    if settings.baseline and ctx.root is None:
        return baselines.Baseline.read(ctx.library.files(), settings.baseline)
    return baselines.Baseline()


def run(ctx: GateContext) -> GateResult:
    """Audit the library; FAILED on any high finding not accepted."""
    start = time.perf_counter()
    settings = gate_settings(ctx.library, NAME, SecuritySettings)
    accepted_by = load_baseline(ctx, settings)
    path = accepted_by.path
    library = ctx.library
    loaded = {d.path: d.source for d in (*library.commands.values(), *library.components.values())}
    result = audit(library.source, ignore=set(settings.ignore), limits=library.config.limits,
                   texts=loaded)
    ctx.progress(f"audited {len(result.files)} files with {len(CHECKS)} rules")
    open_, inline = baselines.apply_suppressions(result.findings, result.suppressions())
    matched = accepted_by.match(open_)
    findings = matched.open
    counts = dict.fromkeys(_LEVEL.values(), 0)
    for finding in findings:
        counts[_LEVEL[finding.severity]] += 1
    metrics = [Metric("high-severity findings", counts["high"], 0, higher_is_better=False)]
    if settings.max_medium is not None:
        metrics.append(Metric("medium-severity findings", counts["medium"], settings.max_medium,
                              higher_is_better=False))
    if settings.max_low is not None:
        metrics.append(Metric("low-severity findings", counts["low"], settings.max_low,
                              higher_is_better=False))
    accepted = (*inline, *matched.accepted)
    details = [
        f"{len(result.files)} files audited: {counts['high']} high, {counts['medium']} medium, "
        f"{counts['low']} low; {len(inline)} accepted inline, {len(matched.accepted)} by the "
        "baseline",
        *(f"baseline entry without a reason, not accepted: {e}" for e in matched.unjustified),
        *(f"baseline entry matches nothing (fixed, or its message changed): {e}"
          for e in matched.stale),
    ]
    return GateResult(
        gate=NAME,
        title=TITLE,
        status=grade(metrics, blocking=counts["high"] > 0),
        metrics=tuple(metrics),
        findings=findings,
        details=tuple(details),
        accepted=accepted,
        duration=time.perf_counter() - start,
        data=_data(result, counts, path, matched),
    )


def _data(
    result: Audit, counts: Mapping[str, int], path: Path | None, matched: baselines.Matched
) -> dict[str, Any]:
    return {
        "files": len(result.files),
        "rules": len(CHECKS),
        "counts": dict(counts),
        "by_rule": _by_rule(matched.open),
        "baseline": None if path is None else str(path),
        "unjustified": len(matched.unjustified),
        "stale": len(matched.stale),
    }


def _by_rule(findings: Collection[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for finding in findings:
        counts[finding.code] = counts.get(finding.code, 0) + 1
    return dict(sorted(counts.items()))
