"""Run the selected quality gates and decide GO or NO-GO.

A gate never crashes the run: an exception inside it becomes a FAILED result that says
which gate raised what. Only configuration errors stop a run (`LibraryError` with code V106,
raised before any gate runs when their settings can be read up front)::

    >>> readiness = run_gates(library, select("xml,security"))
    >>> readiness.verdict.go
    True

The verdict is GO when no gate FAILED, no finding is blocking (an unaccepted error) and,
unless `[gates] allow_partial = true`, no gate is PARTIAL.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from pydantic import ValidationError

from tallinn.gates import GATE_MODULES
from tallinn.gates.base import (
    Finding,
    GateContext,
    GateResult,
    GateSettings,
    Metric,
    Status,
    gate_settings,
)
from tallinn.library import Diagnostic, Library, LibraryError, NotFoundError, Severity
from tallinn.library.files import FileReader, LibraryFiles
from tallinn.library.frontmatter import parsed_once
from tallinn.wording import plural

CONFIG_CODE = "V106"


class RunnerSettings(GateSettings):
    """The `[gates]` table itself, beside the `[gates.<name>]` tables of each gate."""

    allow_partial: bool = False
    """Let a PARTIAL gate (a figure between its floor and its threshold) through as GO."""


class Observer(Protocol):
    """What watches a run, e.g. a progress display: told when each gate starts and ends."""

    def started(self, gate: str, title: str) -> None: ...

    def progress(self, gate: str, message: str) -> None: ...

    def finished(self, gate: str, result: GateResult) -> None: ...


class _Silent:
    def started(self, gate: str, title: str) -> None:
        pass

    def progress(self, gate: str, message: str) -> None:
        pass

    def finished(self, gate: str, result: GateResult) -> None:
        pass


@dataclass(frozen=True, slots=True)
class LibraryInfo:
    """The facts about the gated library that a readiness report states."""

    name: str
    path: str
    content_hash: str
    commands: int
    components: int
    categories: int
    test_files: int
    load_errors: int
    load_warnings: int

    @classmethod
    def of(cls, library: Library) -> LibraryInfo:
        reader = library.files()
        tests, _ = reader.walk("tests", lambda name: name.endswith((".yaml", ".yml")))
        test_files = sum(1 for rel in tests if rel.count("/") == 1
                         and isinstance(reader.read_bytes(rel), bytes))
        return cls(
            name=library.name,
            path=library.label,
            content_hash=library.content_hash,
            commands=len(library.commands),
            components=len(library.components),
            categories=len(library.categories()),
            test_files=test_files,
            load_errors=len(library.errors),
            load_warnings=len(library.warnings),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """GO or NO-GO, with one reason per thing that decided it."""

    go: bool
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return "GO" if self.go else "NO-GO"


@dataclass(frozen=True, slots=True)
class Readiness:
    """Everything one run of the gates found: what a report in any format is made from."""

    library: LibraryInfo
    results: tuple[GateResult, ...]
    verdict: Verdict
    started: datetime
    duration: float
    settings: RunnerSettings = field(default_factory=RunnerSettings)
    not_run: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    # The gated library's files, for the formats that read them again (SARIF's fix regions,
    # the GitHub annotations' paths): a stored release has no folder to read them from. None
    # in a run built by hand, whose `library.path` is then its folder.
    files: FileReader | None = field(default=None, compare=False, repr=False)

    @property
    def ready(self) -> bool:
        return self.verdict.go

    def reader(self) -> FileReader:
        """The gated library's files: the run's own reader (a folder's or a stored
        release's), else, for a run built by hand, the folder `library.path`."""
        if self.files is not None:
            return self.files
        return LibraryFiles(Path(self.library.path))


def select(only: str | Iterable[str] | None) -> list[str]:
    """Given `"xml, perf"` (or None for all), return the gate names in their canonical order.

    An unknown name raises `NotFoundError` suggesting the closest gate names.
    """
    if only is None:
        return list(GATE_MODULES)
    names = only.split(",") if isinstance(only, str) else list(only)
    wanted = {n.strip().lower() for n in names if n.strip()}
    if not wanted:
        raise NotFoundError("gate", "", list(GATE_MODULES))
    for name in sorted(wanted):
        if name not in GATE_MODULES:
            from tallinn.wording import close_matches

            close = close_matches(name, list(GATE_MODULES), n=2, cutoff=0.5)
            raise NotFoundError("gate", name, close or list(GATE_MODULES))
    return [name for name in GATE_MODULES if name in wanted]


def runner_settings(library: Library) -> RunnerSettings:
    """Read the `[gates]` table: its own keys, and only known `[gates.<name>]` subtables."""
    table = dict(library.config.table("gates"))
    own = {k: v for k, v in table.items() if not (k in GATE_MODULES and isinstance(v, Mapping))}
    try:
        return RunnerSettings.model_validate(own)
    except ValidationError as exc:
        problems = [
            Diagnostic(
                CONFIG_CODE,
                f"[gates] {'.'.join(str(p) for p in e['loc'])}: {e['msg']}",
                "tallinn.toml",
            )
            for e in exc.errors()
        ]
        raise LibraryError("invalid settings in [gates]", problems) from None


def settings_model(module: ModuleType) -> type[GateSettings] | None:
    """The pydantic model of a gate's `[gates.<name>]` table: the module's `SETTINGS`, or
    else the one `GateSettings` subclass it defines (None when there are several)."""
    declared = getattr(module, "SETTINGS", None)
    if isinstance(declared, type) and issubclass(declared, GateSettings):
        return declared
    models = [
        value for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, GateSettings)
        and value is not GateSettings
        and value.__module__ == module.__name__
    ]
    return models[0] if len(models) == 1 else None


def load_gate(name: str) -> ModuleType:
    """Import the module of gate `name` (see `GATE_MODULES`)."""
    return importlib.import_module(GATE_MODULES[name])


def decide(results: Sequence[GateResult], settings: RunnerSettings) -> Verdict:
    """GO when no gate FAILED, nothing blocks and PARTIAL gates are allowed or absent."""
    reasons: list[str] = []
    blocked = False
    for result in results:
        blocking = unaccepted_blocking(result)
        if result.status is Status.FAILED:
            blocked = True
            reasons.append(f"{result.gate} FAILED: {_why(result, blocking)}")
        elif blocking:
            blocked = True
            reasons.append(f"{result.gate} has {plural(len(blocking), 'blocking finding')}")
        elif result.status is Status.PARTIAL:
            missed = "; ".join(_metric_text(m) for m in result.metrics
                               if m.status is not Status.PASSED) or "a figure misses its threshold"
            if settings.allow_partial:
                reasons.append(f"{result.gate} PARTIAL, allowed by allow_partial = true: {missed}")
            else:
                blocked = True
                reasons.append(f"{result.gate} PARTIAL and allow_partial = false: {missed}")
        elif result.status is Status.SKIPPED:
            reasons.append(f"{result.gate} SKIPPED: {_first(result.details, 'no reason given')}")
    if not results:
        return Verdict(False, ("no gate ran",))
    if not blocked:
        passed = sum(r.status is Status.PASSED for r in results)
        reasons.insert(0, f"{passed} of {plural(len(results), 'gate')} PASSED, no blocking "
                       "finding")
    return Verdict(not blocked, tuple(reasons))


def unaccepted_blocking(result: GateResult) -> tuple[Finding, ...]:
    """Blocking findings of `result` that no baseline or inline suppression accepted."""
    accepted = {risk.finding for risk in result.accepted}
    return tuple(f for f in result.blocking if f not in accepted)


def run_gate(name: str, context: GateContext) -> GateResult:
    """Run one gate; any exception becomes a FAILED result naming it. Times the run."""
    title = name
    start = time.perf_counter()
    try:
        module = load_gate(name)
        title = str(getattr(module, "TITLE", name))
        result = module.run(context)
        if not isinstance(result, GateResult):
            raise TypeError(f"run() returned {type(result).__name__}, not a GateResult")
    except LibraryError as exc:
        if exc.diagnostics and all(d.code == CONFIG_CODE for d in exc.diagnostics):
            raise
        result = _crashed(name, title, exc)
    except Exception as exc:  # a broken gate must not stop the others
        result = _crashed(name, title, exc)
    return replace(result, gate=name, duration=time.perf_counter() - start)


def run_gates(
    library: Library,
    names: Sequence[str] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
    observer: Observer | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Readiness:
    """Run gates `names` (default: all five) in order on `library` and decide the verdict.

    Raises `LibraryError` (code V106) when `[gates]` or a gate's settings are invalid,
    before any gate runs.
    """
    selected = list(GATE_MODULES) if names is None else list(names)
    watcher = observer or _Silent()
    settings = check_settings(library, selected)
    started = clock()
    t0 = time.perf_counter()
    results: list[GateResult] = []
    shared: dict[str, Any] = {}  # what one gate reads, the next takes from here
    with parsed_once():  # the gates that read front matter again share one parse of each
        for name in selected:
            watcher.started(name, _title(name))
            context = GateContext(
                root=library.root,
                library=library,
                options=dict(options or {}),
                progress=_progress(watcher, name),
                shared=shared,
            )
            result = run_gate(name, context)
            watcher.finished(name, result)
            results.append(result)
    return Readiness(
        library=LibraryInfo.of(library),
        results=tuple(results),
        verdict=decide(results, settings),
        started=started,
        duration=time.perf_counter() - t0,
        settings=settings,
        not_run=tuple(n for n in GATE_MODULES if n not in selected),
        options=dict(options or {}),
        files=library.files(),
    )


def check_settings(library: Library, names: Sequence[str]) -> RunnerSettings:
    """Read `[gates]` and validate each selected gate's `[gates.<name>]` table up front,
    so that a typo is a config error (V106) before any gate runs."""
    settings = runner_settings(library)
    for name in names:
        try:
            module = load_gate(name)
        except Exception:  # noqa: S112  (reported as that gate's FAILED result when it runs)
            continue
        model = settings_model(module)
        if model is not None:
            gate_settings(library, name, model)
    return settings


def _progress(watcher: Observer, gate: str) -> Callable[[str], None]:
    def report(message: str) -> None:
        watcher.progress(gate, message)

    return report


def _title(name: str) -> str:
    try:
        return str(getattr(load_gate(name), "TITLE", name))
    except Exception:
        return name


def _crashed(name: str, title: str, exc: BaseException) -> GateResult:
    where = traceback.extract_tb(exc.__traceback__)
    place = f" at {where[-1].filename.rsplit('/', 1)[-1]}:{where[-1].lineno}" if where else ""
    message = f"gate '{name}' crashed: {type(exc).__name__}: {exc}{place}"
    module = GATE_MODULES.get(name, "")
    if isinstance(exc, ModuleNotFoundError) and exc.name and (
        module == exc.name or module.startswith(exc.name + ".")
    ):
        message = f"gate '{name}' is not installed: no module {module}"
    return GateResult(
        gate=name,
        title=title,
        status=Status.FAILED,
        details=(message,),
        data={"error": {"type": type(exc).__name__, "message": str(exc)}},
    )


def _why(result: GateResult, blocking: Sequence[Finding]) -> str:
    parts = [_metric_text(m) for m in result.metrics if m.status is Status.FAILED]
    if blocking:
        parts.append(plural(len(blocking), "blocking finding"))
    if not parts:
        parts.append(_first(result.details, "the gate failed"))
    return "; ".join(parts)


def figure(value: float, unit: str = "") -> str:
    """Given `0.2134, "ms"`, return `"0.213 ms"`; whole numbers lose their decimals."""
    if value != value or value in (float("inf"), float("-inf")):  # NaN or infinite
        text = str(value)
    elif float(value).is_integer():
        text = str(int(value))
    elif abs(value) >= 100:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}".rstrip("0").rstrip(".")
    else:
        text = f"{value:.3g}"
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _metric_text(metric: Metric) -> str:
    value = figure(metric.value, metric.unit)
    limit = figure(metric.threshold, metric.unit)
    return f"{metric.name} = {value} (threshold {metric.comparison} {limit})"


def _first(items: Sequence[str], default: str) -> str:
    return items[0] if items else default


def severity_counts(findings: Iterable[Finding]) -> dict[str, int]:
    """Given findings, return {"error": n, "warning": n, "info": n}."""
    counts = {s.value: 0 for s in Severity}
    for finding in findings:
        counts[finding.severity.value] += 1
    return counts
