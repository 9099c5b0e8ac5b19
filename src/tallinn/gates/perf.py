"""Gate 3, performance: what the library costs, measured so that the verdict is the library's.

A gate whose verdict depends on what else the machine is doing teaches a team to re-run it
until it passes. So most figures are counted, not timed, and the one that must be timed is
judged against a reference workload timed in the same process at the same moments. (A load's
time is not graded: the loader is linear in what it reads, so the source size stands for it,
and a load's time depends on the machine's memory and disk as much as on the library.)

    largest render (estimated tokens)  <= max_render_tokens (20,000)  counted
    deepest include chain              <= max_include_depth (8)       counted
    library memory                     <= max_library_mb (150 MB)     counted: the sizes of
                                                                      the loaded library's objects
    library source                     <= max_source_mb (50 MB)       counted: what a load reads
    compose+render cost                <= max_render_cost (50)        timed, in reference renders

A *reference render* is one compose and render of a fixed command that ships with this module
(about 2 KB of text, two includes, three placeholders). Each of `rounds` rounds times the
reference, each of the `sample` longest commands and the reference again (`repeat` runs of
each, the fastest kept: a busy machine only ever adds time to a run), and divides by the faster
reference; a busy machine slows both sides alike and leaves the ratio where it was. The figure
is the median over the rounds, with a distribution-free confidence interval (order statistics
of the rounds); when the interval straddles the threshold the gate runs more rounds, up to
`max_rounds`, and the report says how confident the verdict is.

Each command is rendered with the arguments of its first prompt test that renders, else of its
first example that renders, else with none. `--load` also serves the library on a free loopback
port and drives it with `load_clients` concurrent MCP sessions calling `prompts/get` for
`load_seconds`; its p95 and error rate are graded too (a live server's latency is the machine's,
so that part is opt-in). The server side is a `LoadDriver` the CLI injects as
`options["load_driver"]` (`tallinn.serve.run_load_test`): this gate never imports the server.
"""

from __future__ import annotations

import gc
import math
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field, model_validator

from tallinn.gates.base import (
    RENDERS,
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
from tallinn.library.compose import Composer, walk
from tallinn.library.prompttests import PromptSuite, PromptTest, estimate_tokens, load_tests
from tallinn.library.source import LibrarySource
from tallinn.wording import plural

NAME = "perf"
TITLE = "Performance"

SLOW_COMMAND = "P101"
UNMEASURED_COMMAND = "P102"
LARGE_RENDER = "P103"
DEEP_INCLUDES = "P104"

describe(SLOW_COMMAND, "A command costs more to compose and render than the threshold allows",
         NAME, Severity.WARNING, "slow-command-render", doc="""
    ## What it does
    Reports a command whose compose+render cost, measured by the performance gate in
    reference renders (see docs/gates.md), is over `[gates.perf] max_render_cost` (50 by
    default). The gate times the largest commands of the library (`sample`, 50 by default).

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
    Its cost is left out of the gate's figures and `P101` can never flag it, so a slow
    command passes the gate unseen; the `--load` test leaves it out too. And none of its
    examples or tests shows arguments it accepts, so users have no working call to copy.

    ## Use instead
    Give the command an example with valid arguments.
    """)
describe(LARGE_RENDER, "A command's render is larger than the token budget", NAME,
         Severity.WARNING, "oversized-render", doc="""
    ## What it does
    Reports a command whose rendered prompt (with its test or example arguments) is estimated
    at more tokens than `[gates.perf] max_render_tokens` (20,000 by default). The estimate is
    the one prompt tests use for `max-tokens` (docs/testing.md).

    ## Why is this bad?
    Every use of the command spends that much of the model's context before any work starts,
    and the cost grows with each component it includes.

    ## Use instead
    Include less, or split the command.
    """)
describe(DEEP_INCLUDES, "A command's include chain is deeper than the threshold", NAME,
         Severity.WARNING, "deep-include-chain", doc="""
    ## What it does
    Reports a command whose includes nest deeper than `[gates.perf] max_include_depth`
    (8 by default): a component that includes a component that includes another, and so on.

    ## Why is this bad?
    Each level is composed on every load, and a deep chain is hard to read and to change:
    an edit to the innermost component reaches commands nobody thought of.
    """)

Step = Callable[[str, int, int], None]  # (message, steps done, steps in all)
MB = 1_000_000

# Keys of `[gates.perf]` that timed the machine rather than the library, and what replaced them.
_REPLACED = {
    "load_runs": "max_source_mb", "iterations": "rounds", "warmup": "rounds",
    "max_load_seconds": "max_source_mb", "load_floor_seconds": "source_mb_floor",
    "max_render_p95_ms": "max_render_cost", "render_p95_floor_ms": "render_cost_floor",
    "max_rss_mb": "max_library_mb", "rss_floor_mb": "library_mb_floor",
}


class PerfSettings(GateSettings):
    """`[gates.perf]`."""

    max_render_tokens: int = Field(20_000, ge=1)
    render_tokens_floor: int | None = Field(None, ge=1)
    max_include_depth: int = Field(8, ge=0)
    max_library_mb: float = Field(150.0, gt=0)
    library_mb_floor: float | None = Field(None, gt=0)
    max_render_cost: float = Field(50.0, gt=0)  # reference renders per compose+render
    render_cost_floor: float | None = Field(None, gt=0)
    max_source_mb: float = Field(50.0, gt=0)  # the bytes of every command and component
    source_mb_floor: float | None = Field(None, gt=0)
    sample: int = Field(50, ge=1, le=100_000)  # the largest commands are timed
    rounds: int = Field(6, ge=5, le=1000)
    max_rounds: int = Field(60, ge=5, le=10_000)
    repeat: int = Field(3, ge=1, le=10_000)  # runs of each side per round; the fastest counts
    load_clients: int = Field(50, ge=1, le=10_000)
    load_seconds: float = Field(10.0, gt=0, le=3600)
    max_error_rate: float = Field(0.0, ge=0, le=1)
    # Closed-loop clients share this process with the server: the p95 includes their
    # own work and the queueing of `load_clients` requests at once.
    max_server_p95_ms: float = Field(500.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _replaced_keys(cls, values: Any) -> Any:
        if isinstance(values, Mapping):
            old = sorted(set(values) & set(_REPLACED))
            if old:
                raise ValueError("; ".join(
                    f"{key} was replaced by {_REPLACED[key]} (docs/gates.md)" for key in old))
        return values


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
class Ratio:
    """A timed figure in reference renders: the median of the rounds and its interval.

    `low`..`high` hold the median with probability `confidence`, whatever the distribution
    of the rounds (the order statistics of a binomial(n, 1/2)).
    """

    median: float
    low: float
    high: float
    confidence: float
    rounds: int

    @classmethod
    def of(cls, ratios: Sequence[float]) -> Ratio:
        ordered = sorted(ratios)
        n = len(ordered)
        k, confidence = median_interval(n)
        return cls(statistics.median(ordered), ordered[k], ordered[n - 1 - k], confidence, n)

    def straddles(self, threshold: float) -> bool:
        return self.low <= threshold < self.high

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "low": self.low, "high": self.high,
                "confidence": self.confidence, "rounds": self.rounds}


def median_interval(n: int, wanted: float = 0.95) -> tuple[int, float]:
    """Given n rounds, the largest `k` for which sorted[k]..sorted[n - 1 - k] holds the median
    with probability >= `wanted` (k = 0, the whole range, when no k reaches it), and that
    probability: 1 - 2 P(Binomial(n, 1/2) <= k)."""
    k, tail = 0, 0.5 ** n
    for j in range(1, (n - 1) // 2):
        below = tail + math.comb(n, j) * 0.5 ** n
        if 1 - 2 * below < wanted:
            break
        k, tail = j, below
    return k, 1 - 2 * tail


@dataclass(frozen=True, slots=True)
class Invocation:
    """The arguments a command is benchmarked with, and where they came from."""

    arguments: Mapping[str, ArgValue]
    raw: str | None
    source: str  # "test: <id>", "example 1" or "no arguments"


@dataclass(frozen=True, slots=True)
class Measurements:
    """Everything `measure` found. Costs are in reference renders (see the module docstring)."""

    commands: int
    render_chars: Mapping[str, int]  # measured command -> characters of its render
    render_tokens: Mapping[str, int]  # estimated tokens, of the renders that could matter
    include_depth: Mapping[str, int]  # command -> its deepest include chain (0: no include)
    library_bytes: int
    source_bytes: int  # what a load reads: the UTF-8 text of every command and component
    render_cost: Mapping[str, Ratio]  # the timed sample
    reference_ns: float  # one reference render, the median of the rounds
    invocations: Mapping[str, Invocation] = field(default_factory=dict)
    unmeasured: Mapping[str, str] = field(default_factory=dict)  # command -> why

    @property
    def costliest(self) -> tuple[str, Ratio] | None:
        if not self.render_cost:
            return None
        return max(self.render_cost.items(), key=lambda item: (item[1].median, item[0]))


def invocation(library: Library, command: Command,
               cases: Sequence[PromptTest]) -> Invocation | str:
    """The first known-good arguments of `command`, or why there are none; `cases` are the
    command's prompt tests (`cases_by_command`)."""
    chosen = first_render(library, command, cases)
    return chosen if isinstance(chosen, str) else chosen[0]


def first_render(library: Library, command: Command, cases: Sequence[PromptTest],
                 rendered: Mapping[str, str] | None = None) -> tuple[Invocation, str] | str:
    """`invocation`, with the text it renders. `rendered` holds the renders the tests gate
    made of this run's cases, by case id: those are not rendered again."""
    known = rendered or {}
    candidates: list[tuple[Invocation, str | None]] = [
        (Invocation(t.vars, t.raw, f"test: {t.id}"), known.get(t.id))
        for t in cases if not t.expects_error
    ]
    candidates += [(Invocation(e.args, None, f"example {n}"), None)
                   for n, e in enumerate(command.examples, 1)]
    candidates.append((Invocation({}, None, "no arguments"), None))
    last = ""
    for candidate, text in candidates:
        if text is not None:
            return candidate, text
        try:
            return candidate, render(library, command, candidate.arguments, candidate.raw)
        except RenderError as exc:
            last = str(exc)
    return f"no prompt test or example renders it ({last})"


def cases_by_command(suite: PromptSuite) -> dict[str, list[PromptTest]]:
    """The suite's cases grouped by command, in one pass (not one pass per command)."""
    grouped: dict[str, list[PromptTest]] = {}
    for case in suite.tests:
        grouped.setdefault(case.command, []).append(case)
    return grouped


REFERENCE_FILES = {
    "tallinn.toml": '[library]\nname = "tallinn-perf-reference"\n',
    "commands/reference/review.md": (
        "---\ndescription: The performance gate's reference command\narguments:\n"
        "  - {name: path, description: The file to review, required: true}\n"
        "  - {name: focus, description: What to look at hardest, default: correctness}\n"
        "---\n<role>You are a careful reviewer.</role>\n<instructions>\n"
        "Review `{{path}}`, focusing on {{focus}}.\n"
        + "Read the code before you change it, and say what you found and why. " * 12
        + "\nReport on `{{path}}` last.\n</instructions>\n"
        '<include component="reference/findings"/>\n<include component="reference/style"/>\n'
    ),
    "components/reference/findings.md": (
        "---\ndescription: How to report findings\n---\n<findings>\n"
        + "List each finding with its file, line and severity, most severe first. " * 6
        + "\n</findings>\n"
    ),
    "components/reference/style.md": (
        "---\ndescription: How to write\n---\n<style>\n"
        + "Be brief and exact; quote the code you mean. " * 6 + "\n</style>\n"
    ),
}
REFERENCE_ARGUMENTS: Mapping[str, ArgValue] = {"path": "src/app.py", "focus": "security"}
_reference: list[tuple[Library, Command]] = []


def reference() -> tuple[Library, Command]:
    """The reference command, loaded once per process from files written to a scratch folder."""
    if not _reference:
        with tempfile.TemporaryDirectory(prefix="tallinn-perf-") as folder:
            root = Path(folder)
            for rel, text in REFERENCE_FILES.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text, encoding="utf-8")
            library = load_library(root)
        _reference.append((library, library.commands["review"]))
    return _reference[0]


def compose_and_render(library: Library, command: Command, arguments: Mapping[str, ArgValue],
                       raw: str | None) -> str:
    """Compose `command` afresh (its includes expanded again), then render it."""
    Composer(library.components, {}).compose(command)
    return render(library, command, arguments, raw)


def _best(work: Callable[[], object], repeat: int) -> int:
    """The fastest of `repeat` timed runs of `work`, in nanoseconds. A busy machine only ever
    adds time (a preemption, a cache refill), so the fastest run is the one it left alone."""
    clock = time.perf_counter_ns
    best = sys.maxsize
    for _ in range(repeat):
        started = clock()
        work()
        best = min(best, clock() - started)
    return best


def measure(library: Library, root: Path | None, settings: PerfSettings,
            step: Step | None = None, suite: PromptSuite | None = None,
            rendered: Mapping[str, str] | None = None) -> Measurements:
    """Count what the library costs and time what must be timed; `step` reports progress.
    `suite` is the library's prompt tests when they were read already, `rendered` the texts
    its cases rendered to, by case id (see `first_render`)."""
    report: Step = step or (lambda _message, _done, _total: None)
    commands = list(library.commands.values())
    report("rendering every command once", 0, 3)
    if suite is None:
        suite = load_tests(library.source if root is None else root)
    cases = cases_by_command(suite) if suite is not None else {}
    texts: dict[str, str] = {}
    invocations: dict[str, Invocation] = {}
    unmeasured: dict[str, str] = {}
    for command in commands:
        found = first_render(library, command, cases.get(command.name, ()), rendered)
        if isinstance(found, str):
            unmeasured[command.name] = found
            continue
        invocations[command.name], texts[command.name] = found
    sizes = {name: len(text) for name, text in texts.items()}
    longest = sorted(sizes, key=lambda name: (-sizes[name], name))
    # The estimate never counts more tokens than characters, so a render shorter than the
    # budget cannot be over it: only the longest ones, and any long enough, are estimated.
    estimated = set(longest[: settings.sample])
    estimated.update(name for name in longest if sizes[name] > settings.max_render_tokens)
    tokens = {name: estimate_tokens(texts[name]) for name in estimated}
    del texts
    depths = {name: max((depth + 1 for depth, _ in walk(template.includes)), default=0)
              for name, template in library.templates.items()}
    report("measuring the library's memory", 1, 3)
    library_bytes = deep_size(library)
    documents = [*library.commands.values(), *library.components.values()]
    source_bytes = sum(len(d.source.encode("utf-8")) for d in documents)
    report("timing the largest commands against the reference", 2, 3)
    sample = longest[: settings.sample]
    ref_library, ref_command = reference()

    def ref() -> object:
        return compose_and_render(ref_library, ref_command, REFERENCE_ARGUMENTS, None)

    ratios: dict[str, list[float]] = {name: [] for name in sample}
    reference_ns: list[float] = []
    paused = gc.isenabled()
    gc.disable()  # a collection inside one side of a pair would count against it alone
    try:
        ref()

        def one_round(names: Sequence[str]) -> None:
            before = _best(ref, settings.repeat)
            spent: dict[str, int] = {}
            for name in names:
                command, chosen = library.commands[name], invocations[name]

                def work(command: Command = command, chosen: Invocation = chosen) -> object:
                    return compose_and_render(library, command, chosen.arguments, chosen.raw)

                spent[name] = _best(work, settings.repeat)
            unit = max(1, min(before, _best(ref, settings.repeat)))
            for name, best in spent.items():
                ratios[name].append(best / unit)
            reference_ns.append(unit)

        for _ in range(settings.rounds):
            one_round(sample)
        rounds = settings.rounds
        while rounds < settings.max_rounds:
            unsure = [n for n in sample
                      if Ratio.of(ratios[n]).straddles(settings.max_render_cost)]
            if not unsure:
                break
            for _ in range(min(settings.rounds, settings.max_rounds - rounds)):
                one_round(unsure)
            rounds += settings.rounds
    finally:
        if paused:
            gc.enable()
    report("done", 3, 3)
    return Measurements(
        commands=len(commands), render_chars=sizes, render_tokens=tokens,
        include_depth=depths,
        library_bytes=library_bytes, source_bytes=source_bytes,
        render_cost={name: Ratio.of(values) for name, values in ratios.items()},
        reference_ns=statistics.median(reference_ns) if reference_ns else 0.0,
        invocations=invocations, unmeasured=unmeasured,
    )


def deep_size(root: object) -> int:
    """The bytes of every object reachable from `root`, each counted once: what keeping it
    costs, whatever else the process holds. Classes, modules and functions are not counted
    (they are shared with the rest of the program)."""
    shared = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType, types.CodeType)
    atoms = {str, bytes, int, float, bool, type(None)}  # nothing to follow inside
    sizeof, referents = sys.getsizeof, gc.get_referents
    seen: set[int] = set()
    stack: list[object] = [root]
    total = 0
    while stack:
        obj = stack.pop()
        key = id(obj)
        if key in seen:
            continue
        seen.add(key)
        if type(obj) in atoms:
            total += sizeof(obj)
        elif not isinstance(obj, shared):
            total += sizeof(obj)
            stack.extend(referents(obj))
    return total


def run(ctx: GateContext) -> GateResult:
    """Measure the library's load time, render latency and memory, and grade them."""
    started = time.perf_counter()
    settings = gate_settings(ctx.library, NAME, PerfSettings)
    suite = ctx.prompt_tests()
    measured = measure(ctx.library, ctx.root, settings,
                       lambda message, _done, _total: ctx.progress(message), suite,
                       ctx.shared.get(RENDERS))
    load = None
    if ctx.options.get("load"):
        ctx.progress("load test against a live server")
        load = load_test(ctx.library, settings, ctx.options, suite)
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

    def __call__(self, root: Path | LibrarySource,
                 calls: Sequence[tuple[str, Mapping[str, str]]], *,
                 clients: int, seconds: float) -> LoadRun: ...


NO_DRIVER = ("the load test needs the server package (tallinn.serve): no load driver was "
             "given (options['load_driver'])")


def load_test(library: Library, settings: PerfSettings, options: Mapping[str, Any],
              suite: PromptSuite | None = None) -> dict[str, Any]:
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
    cases = cases_by_command(suite if suite is not None else load_tests(library.source))
    calls: list[tuple[str, dict[str, str]]] = []
    for command in library.commands.values():
        chosen = invocation(library, command, cases.get(command.name, ()))
        if isinstance(chosen, Invocation) and chosen.raw is None:
            calls.append((command.name, {k: format_value(v) for k, v in
                                         chosen.arguments.items()}))
    if not calls:
        return {"status": "SKIPPED", "reason": "no command renders with known arguments"}
    where = library.root if library.root is not None else library.source
    measured = driver(where, calls, clients=clients, seconds=seconds)
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
    largest = max(measured.render_tokens.values(), default=0)
    deepest = max(measured.include_depth.values(), default=0)
    costliest = measured.costliest
    metrics = [
        Metric("largest render", largest, settings.max_render_tokens, "tokens",
               higher_is_better=False, floor=settings.render_tokens_floor),
        Metric("deepest include chain", deepest, settings.max_include_depth, "",
               higher_is_better=False),
        Metric("library memory", measured.library_bytes / MB, settings.max_library_mb, "MB",
               higher_is_better=False, floor=settings.library_mb_floor),
        Metric("library source", measured.source_bytes / MB, settings.max_source_mb, "MB",
               higher_is_better=False, floor=settings.source_mb_floor),
    ]
    if costliest is not None:
        metrics.append(Metric("compose+render cost (costliest)", costliest[1].median,
                              settings.max_render_cost, "x ref", higher_is_better=False,
                              floor=settings.render_cost_floor))
    if load is not None and load.get("status") == "MEASURED":
        metrics += [
            Metric("server prompts/get p95 under load", load["p95_ms"],
                   settings.max_server_p95_ms, "ms", higher_is_better=False),
            Metric("server error rate under load", load["error_rate"] * 100,
                   round(settings.max_error_rate * 100, 9), "%", higher_is_better=False),
        ]
    findings = _findings(library, measured, settings)
    details = _details(measured, settings, load)
    data: dict[str, Any] = {
        "commands": measured.commands,
        "reference_render_us": measured.reference_ns / 1e3,
        "library_mb": measured.library_bytes / MB,
        "largest_render_tokens": largest,
        "deepest_include_chain": deepest,
        "render_cost": {name: ratio.as_dict() for name, ratio in measured.render_cost.items()},
        "source_mb": measured.source_bytes / MB,
        "per_command": {
            name: {"chars": chars, "tokens": measured.render_tokens.get(name),
                   "include_depth": measured.include_depth.get(name, 0),
                   "arguments": measured.invocations[name].source}
            for name, chars in measured.render_chars.items()
        },
        "unmeasured": dict(measured.unmeasured),
    }
    if load is not None:
        data["load_test"] = dict(load)
    return GateResult(NAME, TITLE, grade(metrics), tuple(metrics), tuple(findings),
                      tuple(details), duration=duration, data=data)


def _findings(library: Library, measured: Measurements,
              settings: PerfSettings) -> list[Diagnostic]:
    found: list[Diagnostic] = []

    def add(code: str, name: str, message: str) -> None:
        found.append(Diagnostic(code, message, library.commands[name].path,
                                severity=Severity.WARNING))

    for name, ratio in sorted(measured.render_cost.items()):
        if ratio.median > settings.max_render_cost:
            add(SLOW_COMMAND, name, f"command '{name}' costs {ratio.median:.1f} reference "
                f"renders to compose and render, over {settings.max_render_cost:g}")
    for name, reason in measured.unmeasured.items():
        add(UNMEASURED_COMMAND, name, f"command '{name}' is not measured: {reason}")
    for name, tokens in measured.render_tokens.items():
        if tokens > settings.max_render_tokens:
            add(LARGE_RENDER, name, f"command '{name}' renders to about {tokens:,} tokens, over "
                f"{settings.max_render_tokens:,}")
    for name, depth in measured.include_depth.items():
        if depth > settings.max_include_depth and name in library.commands:
            add(DEEP_INCLUDES, name, f"command '{name}' nests includes {depth} deep, over "
                f"{settings.max_include_depth}")
    return found


def _details(measured: Measurements, settings: PerfSettings,
             load: Mapping[str, Any] | None) -> list[str]:
    details = [
        f"reference render: {measured.reference_ns / 1e3:.1f} µs on this machine now; costs "
        "below are in reference renders, which a busy machine leaves as they are",
        f"library memory: {measured.library_bytes / MB:.2f} MB for "
        f"{plural(measured.commands, 'command')} (the loaded library's own objects); source "
        f"{measured.source_bytes / MB:.2f} MB",
    ]
    costliest = measured.costliest
    if costliest is not None:
        name, ratio = costliest
        details.append(
            f"compose+render: '{name}' costs {ratio.median:.2f} (interval {ratio.low:.2f}.."
            f"{ratio.high:.2f} at {ratio.confidence:.0%} confidence, {ratio.rounds} rounds); "
            f"the {plural(len(measured.render_cost), 'longest command')} timed; "
            + _confidence(ratio, settings.max_render_cost))
    if load is not None and load.get("status") == "MEASURED":
        details.append(
            f"load test: {plural(load['clients'], 'client')} for {load['seconds']:g} s, "
            f"{load['requests']} prompts/get ({load['requests_per_second']:.0f}/s), "
            f"p50 {load['p50_ms']:.2f} ms, p95 {load['p95_ms']:.2f} ms, "
            f"max {load['max_ms']:.2f} ms, {plural(load['errors'], 'error')}")
        details += [f"load test error: {e}" for e in load["first_errors"]]
    elif load is not None:
        details.append(f"load test: {load['status']} ({load['reason']})")
    return details


def _confidence(ratio: Ratio, threshold: float) -> str:
    if ratio.high <= threshold:
        return f"below the threshold {threshold:g} with {ratio.confidence:.0%} confidence"
    if ratio.low > threshold:
        return f"over the threshold {threshold:g} with {ratio.confidence:.0%} confidence"
    return f"the interval straddles the threshold {threshold:g}: judged by the median, low " \
           "confidence"
