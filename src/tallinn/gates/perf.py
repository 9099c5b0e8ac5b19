"""Gate 3, performance: measured in this process on the library being gated.

Figures, from `[gates.perf]` in `tallinn.toml`:

    library load time (median)   <= max_load_seconds (1 s) per 1,000 commands, at least 1 s
    compose+render p95           <= max_render_p95_ms (1 ms), over every command
    peak memory (RSS)            <= max_rss_mb (150 MB), the peak of this whole process

Each command is rendered with the arguments of its first prompt test that renders, else of
its first example that renders, else with none. Every iteration composes the command afresh
(its includes tokenised and expanded again) and renders it, timed with `perf_counter_ns`.
`--load` also serves the library on a free loopback port and drives it with `load_clients`
concurrent MCP sessions calling `prompts/get` for `load_seconds`; its p95 and error rate are
graded too. The server side is a `LoadDriver` the CLI injects as `options["load_driver"]`
(`tallinn.serve.run_load_test`): this gate never imports the server. Without a driver the
load test is reported as skipped.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from tallinn.gates.base import (
    GateContext,
    GateResult,
    GateSettings,
    Metric,
    describe,
    gate_settings,
    grade,
)
from tallinn.library import (
    ArgValue,
    Command,
    Diagnostic,
    Library,
    RenderError,
    Severity,
    format_value,
    load_library,
    render,
)
from tallinn.library.compose import Composer
from tallinn.library.prompttests import PromptSuite, load_tests

NAME = "perf"
TITLE = "Performance"

SLOW_COMMAND = "P101"
UNMEASURED_COMMAND = "P102"

describe(SLOW_COMMAND, "A command's compose+render p95 latency is over the threshold",
         NAME, Severity.WARNING, "slow-command-render", doc="""
    ## What it does
    Reports a command whose compose+render p95 latency, measured by the performance gate, is
    over `[gates.perf] max_render_p95_ms` (1 ms by default).

    ## Why is this bad?
    Every `prompts/get` pays it. A slow command usually includes a very large component or
    many levels of includes.
    """)
describe(UNMEASURED_COMMAND, "A command renders with none of its test or example arguments, "
         "so its latency cannot be measured", NAME, Severity.WARNING, "unmeasured-command",
         doc="""
    ## What it does
    Reports a command that renders neither with the `vars` of its prompt tests, nor with the
    `args` of its examples, nor with no arguments, so the performance gate cannot time it.

    ## Why is this bad?
    Its latency is left out of the compose+render p95 and `P101` can never flag it, so a
    slow command passes the gate unseen; the `--load` test leaves it out too. And none of
    its examples or tests shows arguments it accepts, so users have no working call to copy.

    ## Use instead
    Give the command an example with valid arguments.
    """)

Step = Callable[[str, int, int], None]  # (message, steps done, steps in all)
MB = 1_000_000


class PerfSettings(GateSettings):
    """`[gates.perf]`."""

    load_runs: int = Field(5, ge=1, le=1000)
    iterations: int = Field(100, ge=1, le=1_000_000)  # compose+render runs per command
    warmup: int = Field(3, ge=0, le=1000)
    max_load_seconds: float = Field(1.0, gt=0)  # per 1,000 commands, at least one unit
    load_floor_seconds: float | None = Field(None, gt=0)
    max_render_p95_ms: float = Field(1.0, gt=0)
    render_p95_floor_ms: float | None = Field(None, gt=0)
    max_rss_mb: float = Field(150.0, gt=0)
    rss_floor_mb: float | None = Field(None, gt=0)
    load_clients: int = Field(50, ge=1, le=10_000)
    load_seconds: float = Field(10.0, gt=0, le=3600)
    max_error_rate: float = Field(0.0, ge=0, le=1)
    # Closed-loop clients share this process with the server: the p95 includes their
    # own work and the queueing of `load_clients` requests at once.
    max_server_p95_ms: float = Field(500.0, gt=0)


SETTINGS = PerfSettings


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of a set of timings, in nanoseconds (nearest-rank)."""

    count: int
    p50: int
    p95: int
    max: int

    @classmethod
    def of(cls, samples: Sequence[int]) -> Latency:
        if not samples:
            return cls(0, 0, 0, 0)
        ordered = sorted(samples)
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 95), ordered[-1])

    def as_ms(self) -> dict[str, float]:
        return {"count": self.count, "p50_ms": self.p50 / 1e6, "p95_ms": self.p95 / 1e6,
                "max_ms": self.max / 1e6}


def percentile(ordered: Sequence[int], pct: float) -> int:
    """The nearest-rank percentile of sorted `ordered`: the smallest value >= pct% of them."""
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Invocation:
    """The arguments a command is benchmarked with, and where they came from."""

    arguments: Mapping[str, ArgValue]
    raw: str | None
    source: str  # "test: <id>", "example 1" or "no arguments"


@dataclass(frozen=True, slots=True)
class Measurements:
    """Everything `measure` found."""

    commands: int
    load_ns: tuple[int, ...]
    compose_render: Latency
    render: Latency
    per_command: Mapping[str, Latency] = field(default_factory=dict)
    invocations: Mapping[str, Invocation] = field(default_factory=dict)
    unmeasured: Mapping[str, str] = field(default_factory=dict)  # command -> why
    peak_rss: int = 0  # bytes
    rss: int = 0  # bytes, after the measurements

    @property
    def load_median(self) -> float:
        return statistics.median(self.load_ns) / 1e9

    @property
    def load_best(self) -> float:
        return min(self.load_ns) / 1e9


def invocation(library: Library, command: Command, suite: PromptSuite) -> Invocation | str:
    """The first known-good arguments of `command`, or why there are none."""
    candidates: list[Invocation] = [
        Invocation(t.vars, t.raw, f"test: {t.id}")
        for t in suite.for_command(command.name) if not t.expects_error
    ]
    candidates += [Invocation(e.args, None, f"example {n}")
                   for n, e in enumerate(command.examples, 1)]
    candidates.append(Invocation({}, None, "no arguments"))
    last = ""
    for candidate in candidates:
        try:
            render(library, command, candidate.arguments, candidate.raw)
        except RenderError as exc:
            last = str(exc)
            continue
        return candidate
    return f"no prompt test or example renders it ({last})"


def measure(library: Library, root: Path, settings: PerfSettings,
            step: Step | None = None) -> Measurements:
    """Time loading and rendering the library at `root`; `step` reports progress."""
    report: Step = step or (lambda _message, _done, _total: None)
    commands = list(library.commands.values())
    total = settings.load_runs + len(commands)
    loads: list[int] = []
    for run in range(settings.load_runs):
        report(f"loading the library ({run + 1}/{settings.load_runs})", run, total)
        started = time.perf_counter_ns()
        load_library(root)
        loads.append(time.perf_counter_ns() - started)
    suite = load_tests(root)
    both: list[int] = []
    only: list[int] = []
    per_command: dict[str, Latency] = {}
    invocations: dict[str, Invocation] = {}
    unmeasured: dict[str, str] = {}
    gc.collect()
    for index, command in enumerate(commands):
        report(f"rendering {command.name}", settings.load_runs + index, total)
        chosen = invocation(library, command, suite)
        if isinstance(chosen, str):
            unmeasured[command.name] = chosen
            continue
        invocations[command.name] = chosen
        samples, render_samples = _time_command(library, command, chosen, settings)
        both += samples
        only += render_samples
        per_command[command.name] = Latency.of(samples)
    report("measuring memory", total, total)
    return Measurements(
        commands=len(commands), load_ns=tuple(loads), compose_render=Latency.of(both),
        render=Latency.of(only), per_command=per_command, invocations=invocations,
        unmeasured=unmeasured, peak_rss=peak_rss_bytes(), rss=current_rss_bytes(),
    )


def _time_command(library: Library, command: Command, chosen: Invocation,
                  settings: PerfSettings) -> tuple[list[int], list[int]]:
    clock = time.perf_counter_ns
    components = library.components
    arguments, raw = chosen.arguments, chosen.raw
    both: list[int] = []
    only: list[int] = []
    for iteration in range(settings.warmup + settings.iterations):
        started = clock()
        Composer(components, {}).compose(command)
        composed = clock()
        render(library, command, arguments, raw)
        done = clock()
        if iteration >= settings.warmup:
            both.append(done - started)
            only.append(done - composed)
    return both, only


def peak_rss_bytes() -> int:
    """The peak resident set size of this process so far, in bytes."""
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no resource module
        import psutil

        info = psutil.Process().memory_info()
        return int(getattr(info, "peak_wset", info.rss))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes. The kernel updates the peak lazily, so it can
    # trail the current size for a moment.
    peak = int(peak) if sys.platform == "darwin" else int(peak) * 1024
    return max(peak, current_rss_bytes())


def current_rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def run(ctx: GateContext) -> GateResult:
    """Measure the library's load time, render latency and memory, and grade them."""
    started = time.perf_counter()
    settings = gate_settings(ctx.library, NAME, PerfSettings)
    measured = measure(ctx.library, ctx.root, settings,
                       lambda message, _done, _total: ctx.progress(message))
    load = None
    if ctx.options.get("load"):
        ctx.progress("load test against a live server")
        load = load_test(ctx.library, settings, ctx.options)
    return evaluate(ctx.library, measured, settings, load,
                    duration=time.perf_counter() - started)


class LoadRun(Protocol):
    """What a load driver measured (`tallinn.serve.LoadResult` is one).

    `calls` counts every `prompts/get` made, failed ones included, and each session that
    could not be opened; `errors` counts the failures. Latencies are of the successful
    calls, nearest-rank, in nanoseconds.
    """

    @property
    def calls(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def p50_ns(self) -> int: ...
    @property
    def p95_ns(self) -> int: ...
    @property
    def max_ns(self) -> int: ...
    @property
    def error_messages(self) -> Sequence[str]: ...


class LoadDriver(Protocol):
    """Serves the library at `root` and drives it with concurrent MCP clients.

    The CLI passes `tallinn.serve.run_load_test` as `options["load_driver"]`, so that this
    gate never imports the server. Given `calls` like `[("greet", {"name": "Ada"})]`,
    `clients` sessions call `prompts/get` with them in turn for `seconds`.
    """

    def __call__(self, root: Path, calls: Sequence[tuple[str, Mapping[str, str]]], *,
                 clients: int, seconds: float) -> LoadRun: ...


NO_DRIVER = ("the load test needs the server package (tallinn.serve): no load driver was "
             "given (options['load_driver'])")


def load_test(library: Library, settings: PerfSettings,
              options: Mapping[str, Any]) -> dict[str, Any]:
    """Drive the library, served live, with concurrent MCP clients: `options["load_driver"]`.

    Each client opens its own session and calls `prompts/get` in turn over every measurable
    command until the time is up. Skipped when no driver is given (the server package is
    not there) or no command renders with known arguments.
    """
    driver: LoadDriver | None = options.get("load_driver")
    if driver is None:
        return {"status": "SKIPPED", "reason": NO_DRIVER}
    clients = int(options.get("clients") or settings.load_clients)
    seconds = float(options.get("duration") or settings.load_seconds)
    suite = load_tests(library.root)
    calls: list[tuple[str, dict[str, str]]] = []
    for command in library.commands.values():
        chosen = invocation(library, command, suite)
        if isinstance(chosen, Invocation) and chosen.raw is None:
            calls.append((command.name, {k: format_value(v) for k, v in
                                         chosen.arguments.items()}))
    if not calls:
        return {"status": "SKIPPED", "reason": "no command renders with known arguments"}
    measured = driver(library.root, calls, clients=clients, seconds=seconds)
    requests = measured.calls
    answered = measured.calls - measured.errors
    return {
        "status": "MEASURED",
        "clients": clients,
        "seconds": seconds,
        "requests": requests,
        "errors": measured.errors,
        "error_rate": measured.errors / requests if requests else 1.0,
        "first_errors": sorted(set(measured.error_messages))[:5],
        "requests_per_second": requests / seconds,
        "count": answered,
        "p50_ms": measured.p50_ns / 1e6,
        "p95_ms": measured.p95_ns / 1e6,
        "max_ms": measured.max_ns / 1e6,
    }


def evaluate(library: Library, measured: Measurements, settings: PerfSettings,
             load: Mapping[str, Any] | None = None, *, duration: float = 0.0) -> GateResult:
    """Grade measurements against the settings."""
    units = max(1.0, measured.commands / 1000)
    load_limit = settings.max_load_seconds * units
    load_floor = settings.load_floor_seconds * units if settings.load_floor_seconds else None
    p95_ms = measured.compose_render.p95 / 1e6
    metrics = [
        Metric("library load time (median)", measured.load_median, load_limit, "s",
               higher_is_better=False, floor=load_floor),
        Metric("compose+render p95", p95_ms, settings.max_render_p95_ms, "ms",
               higher_is_better=False, floor=settings.render_p95_floor_ms),
        Metric("peak memory (RSS)", measured.peak_rss / MB, settings.max_rss_mb, "MB",
               higher_is_better=False, floor=settings.rss_floor_mb),
    ]
    if load is not None and load.get("status") == "MEASURED":
        metrics += [
            Metric("server prompts/get p95 under load", load["p95_ms"],
                   settings.max_server_p95_ms, "ms", higher_is_better=False),
            Metric("server error rate under load", load["error_rate"] * 100,
                   round(settings.max_error_rate * 100, 9), "%", higher_is_better=False),
        ]
    findings: list[Diagnostic] = []
    for name, latency in measured.per_command.items():
        if latency.p95 / 1e6 > settings.max_render_p95_ms:
            findings.append(Diagnostic(
                SLOW_COMMAND,
                f"command '{name}' takes {latency.p95 / 1e6:.3f} ms to compose and render "
                f"(p95), over {settings.max_render_p95_ms:g} ms",
                library.commands[name].path, severity=Severity.WARNING,
            ))
    for name, reason in measured.unmeasured.items():
        findings.append(Diagnostic(UNMEASURED_COMMAND, f"command '{name}' is not measured: "
                                   f"{reason}", library.commands[name].path,
                                   severity=Severity.WARNING))
    cr, ro = measured.compose_render, measured.render
    details = [
        f"load: best {measured.load_best * 1e3:.1f} ms, median {measured.load_median * 1e3:.1f} ms"
        f" over {len(measured.load_ns)} run(s), {measured.commands} command(s); limit "
        f"{load_limit:g} s",
        f"compose+render: p50 {cr.p50 / 1e6:.3f} ms, p95 {cr.p95 / 1e6:.3f} ms, "
        f"max {cr.max / 1e6:.3f} ms over {cr.count} run(s) of "
        f"{len(measured.per_command)} command(s)",
        f"render only: p50 {ro.p50 / 1e6:.3f} ms, p95 {ro.p95 / 1e6:.3f} ms, "
        f"max {ro.max / 1e6:.3f} ms",
        f"memory: peak RSS {measured.peak_rss / MB:.1f} MB (the whole process), "
        f"{measured.rss / MB:.1f} MB now",
    ]
    if load is not None and load.get("status") == "MEASURED":
        details.append(
            f"load test: {load['clients']} client(s) for {load['seconds']:g} s, "
            f"{load['requests']} prompts/get ({load['requests_per_second']:.0f}/s), "
            f"p50 {load['p50_ms']:.2f} ms, p95 {load['p95_ms']:.2f} ms, "
            f"max {load['max_ms']:.2f} ms, {load['errors']} error(s)")
        details += [f"load test error: {e}" for e in load["first_errors"]]
    elif load is not None:
        details.append(f"load test: {load['status']} ({load['reason']})")
    data: dict[str, Any] = {
        "commands": measured.commands,
        "load_seconds": [n / 1e9 for n in measured.load_ns],
        "load_limit_seconds": load_limit,
        "compose_render": measured.compose_render.as_ms(),
        "render": measured.render.as_ms(),
        "per_command": {name: {**lat.as_ms(), "arguments": measured.invocations[name].source}
                        for name, lat in measured.per_command.items()},
        "unmeasured": dict(measured.unmeasured),
        "peak_rss_mb": measured.peak_rss / MB,
        "rss_mb": measured.rss / MB,
    }
    if load is not None:
        data["load_test"] = dict(load)
    return GateResult(NAME, TITLE, grade(metrics), tuple(metrics), tuple(findings),
                      tuple(details), duration=duration, data=data)
