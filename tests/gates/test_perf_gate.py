"""Gate 3 (performance) and `tallinn bench`, measured on real libraries written to disk."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import WriteLibrary
from tests.helpers import count_calls
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates import perf
from tallinn.gates.base import GateContext, Status
from tallinn.library import load_library
from tallinn.library.prompttests import estimate_tokens, load_tests

runner = CliRunner()


# Few rounds keep the suite fast; the timed figures are ratios, so the defaults hold anywhere.
FAST = """
[gates.perf]
rounds = 5
max_rounds = 5
repeat = 2
"""
GREET = """
    ---
    description: Greet a person by name, politely
    argument-hint: "<name>"
    arguments:
      - {name: name, description: Who to greet, required: true, pattern: "[A-Z][a-z]+"}
    examples:
      - {description: Greet Ada, args: {name: Ada}}
    ---
    Hello {{name}}, welcome.
    <include component="style/polite"/>
"""
POLITE = """
    ---
    description: A polite closing line for any message
    ---
    Thank you for your time.
"""
SHOUT = """
    ---
    description: Shout a word that only the tests give
    arguments:
      - {name: word, description: The word, required: true}
    ---
    {{word}}!
"""
ORPHAN = """
    ---
    description: Needs a value that nobody ever gives it
    arguments:
      - {name: value, description: The value, required: true}
    ---
    Value: {{value}}
"""
BYE = """
    ---
    description: Say goodbye to everyone present
    ---
    Goodbye, everyone.
"""


@pytest.fixture
def root(write_library: WriteLibrary) -> Path:
    return write_library({
        "tallinn.toml": FAST,
        "commands/people/greet.md": GREET,
        "commands/people/shout.md": SHOUT,
        "commands/people/orphan.md": ORPHAN,
        "commands/people/bye.md": BYE,
        "components/style/polite.md": POLITE,
        "tests/shout.yaml": """
            command: shout
            tests:
              - description: no word fails
                assert: [{type: error, value: missing}]
              - description: shouts
                vars: {word: hey}
        """,
    })


def run_gate(root: Path, **options: object):  # type: ignore[no-untyped-def]
    messages: list[str] = []
    result = perf.run(GateContext(root, load_library(root), options, messages.append))
    assert any(m.startswith("rendering ") for m in messages)
    return result


def test_figures_of_a_small_library(root: Path) -> None:
    """Counted figures are exact; timed ones are ratios to the reference render."""
    result = run_gate(root)
    assert result.status is Status.PASSED
    names = [(m.name, m.unit) for m in result.metrics]
    assert names == [("largest render", "tokens"), ("deepest include chain", ""),
                     ("library memory", "MB"), ("library source", "MB"),
                     ("compose+render cost (costliest)", "x ref")]
    tokens, depth, memory, source, render_cost = (m.value for m in result.metrics)
    data = result.data
    assert tokens == max(t["tokens"] for t in data["per_command"].values()) > 0
    assert all(t["chars"] >= t["tokens"] for t in data["per_command"].values())
    assert depth == 1  # greet includes style/polite
    assert 0 < memory < 1
    files = [*root.glob("commands/*/*.md"), *root.glob("components/*/*.md")]
    assert source == sum(len(f.read_bytes()) for f in files) / perf.MB
    assert render_cost > 0
    assert data["commands"] == 4
    assert set(data["render_cost"]) == {"greet", "shout", "bye"}  # the measurable ones
    assert all(r["rounds"] == 5 for r in data["render_cost"].values())
    assert data["per_command"]["greet"]["arguments"] == "example 1"
    assert data["per_command"]["greet"]["include_depth"] == 1
    assert data["per_command"]["shout"]["arguments"] == "test: tests/shout.yaml::shouts"
    assert data["per_command"]["bye"]["arguments"] == "no arguments"
    assert "orphan" in data["unmeasured"]
    (finding,) = result.findings
    assert (finding.code, finding.path) == ("P102", "commands/people/orphan.md")
    assert "no prompt test or example renders it (missing required argument 'value')" in (
        finding.message)
    assert any(d.startswith("compose+render: '") for d in result.details)
    assert any(d.startswith("reference render: ") for d in result.details)


def test_tight_limits_fail_and_floors_give_partial(root: Path) -> None:
    """Limits no library can meet fail every figure and flag every command; floors give
    PARTIAL."""
    (root / "tallinn.toml").write_text(
        FAST + "max_render_tokens = 1\nmax_include_depth = 0\nmax_library_mb = 0.000001\n"
        "max_render_cost = 0.000001\nmax_source_mb = 0.000001\n", "utf-8")
    result = run_gate(root)
    assert result.status is Status.FAILED
    assert {m.status for m in result.metrics} == {Status.FAILED}
    flagged = {(f.code, f.path.rsplit("/", 1)[-1]) for f in result.findings}
    assert {("P101", "bye.md"), ("P101", "greet.md"), ("P101", "shout.md")} <= flagged
    assert {("P103", "bye.md"), ("P103", "greet.md"), ("P103", "shout.md")} <= flagged
    assert ("P104", "greet.md") in flagged
    assert ("P104", "bye.md") not in flagged
    (root / "tallinn.toml").write_text(
        FAST + "max_library_mb = 0.000001\nlibrary_mb_floor = 100000\n", "utf-8")
    assert run_gate(root).status is Status.PARTIAL


def test_settings_that_timed_the_machine_name_their_replacement(root: Path) -> None:
    """An old `[gates.perf]` key is a settings error that says what replaced it."""
    with pytest.raises(ValueError, match="max_render_p95_ms was replaced by max_render_cost"):
        perf.PerfSettings.model_validate({"max_render_p95_ms": 1})
    (root / "tallinn.toml").write_text("[gates.perf]\niterations = 5\n", "utf-8")
    result = runner.invoke(app, ["bench", "--library", str(root)])
    assert result.exit_code == 2
    assert "iterations was replaced by rounds" in " ".join(result.output.split())


@given(st.text(max_size=200))
def test_the_token_estimate_never_exceeds_the_characters(text: str) -> None:
    """The gate estimates only renders long enough to reach the budget: that is sound only
    because an estimate is never more tokens than the text has characters."""
    assert estimate_tokens(text) <= len(text)


def test_only_renders_that_could_reach_the_budget_are_estimated(
    write_library: WriteLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sample of one, the longest render and those longer than the budget are
    estimated, and no other; the longest over the budget is still flagged."""
    files = {f"commands/c/cmd-{n}.md": f"---\ndescription: Command number {n}\n---\n"
             + "word " * (10 * n) for n in range(1, 21)}
    root = write_library({**files, "tallinn.toml": FAST + "sample = 1\nmax_render_tokens = 150\n"})
    estimated = count_calls(monkeypatch, perf, "estimate_tokens")
    result = run_gate(root)
    long_enough = [n for n in range(1, 21) if len("word " * (10 * n)) > 150]
    assert estimated() == len(long_enough)
    flagged = {f.path for f in result.findings if f.code == "P103"}
    assert "commands/c/cmd-20.md" in flagged
    assert result.metrics[0].value == result.data["per_command"]["cmd-20"]["tokens"]


def test_the_median_interval_is_the_binomial_one() -> None:
    """15 rounds: the 4th to the 12th smallest hold the median with 96.5% confidence."""
    k, confidence = perf.median_interval(15)
    assert k == 3
    assert confidence == pytest.approx(1 - 2 * sum(math.comb(15, i) for i in range(4)) / 2**15)
    assert perf.median_interval(5) == (0, pytest.approx(1 - 2 / 32))
    ratio = perf.Ratio.of([float(n) for n in range(1, 16)])
    assert (ratio.median, ratio.low, ratio.high, ratio.rounds) == (8, 4, 12, 15)
    assert ratio.straddles(10)
    assert not ratio.straddles(12)
    assert not ratio.straddles(3)


def test_library_memory_counts_the_library_not_the_process(
    write_library: WriteLibrary,
) -> None:
    """Ten times the commands cost about ten times the memory; shared text is counted once."""
    def library_of(count: int) -> int:
        files = {f"commands/c/cmd-{n}.md": f"---\ndescription: Command number {n}\n---\n"
                 f"Do thing {n} with care. " * 20 for n in range(count)}
        return perf.deep_size(load_library(write_library(files)))

    small, large = library_of(10), library_of(100)
    assert 8 * small < large < 12 * small
    shared = "x" * 10_000
    assert perf.deep_size([shared, shared]) < perf.deep_size([shared, "y" * 10_000])


def test_percentiles_are_nearest_rank() -> None:
    samples = list(range(1, 101))
    assert perf.percentile(samples, 50) == 50
    assert perf.percentile(samples, 95) == 95
    assert perf.percentile([7], 95) == 7
    assert perf.Latency.of([]) == perf.Latency(0, 0, 0, 0)
    assert perf.Latency.of([5, 1, 3]).as_ms() == {"count": 3, "p50_ms": 3e-6, "p95_ms": 5e-6,
                                                  "max_ms": 5e-6}


def test_invocation_prefers_tests_then_examples(root: Path) -> None:
    library = load_library(root)
    cases = perf.cases_by_command(load_tests(root))
    greet = perf.invocation(library, library.commands["greet"], cases.get("greet", ()))
    assert isinstance(greet, perf.Invocation)
    assert (dict(greet.arguments), greet.source) == ({"name": "Ada"}, "example 1")
    shout = perf.invocation(library, library.commands["shout"], cases["shout"])
    assert isinstance(shout, perf.Invocation)
    assert shout.source.startswith("test: ")
    assert perf.invocation(library, library.commands["orphan"], ()) == (
        "no prompt test or example renders it (missing required argument 'value')")


# --- --load, with a fake driver (the live server is tested in tests/serve) ----------------


@dataclass(frozen=True)
class FakeRun:
    """What a `LoadDriver` returns, without a server."""

    calls: int = 40
    errors: int = 0
    p50_ns: int = 2_000_000
    p95_ns: int = 5_000_000
    max_ns: int = 9_000_000
    error_messages: tuple[str, ...] = ()


class FakeDriver:
    """A `LoadDriver` that records how it was called and returns `run`."""

    def __init__(self, run: FakeRun | None = None) -> None:
        self.run = run or FakeRun()
        self.seen: list[tuple[Path, list[tuple[str, dict[str, str]]], int, float]] = []

    def __call__(self, root: Path, calls: Sequence[tuple[str, Mapping[str, str]]], *,
                 clients: int, seconds: float) -> FakeRun:
        self.seen.append((root, [(n, dict(a)) for n, a in calls], clients, seconds))
        return self.run


def test_fake_driver_is_a_load_driver() -> None:
    """The fake keeps to the `LoadDriver` protocol the gate documents."""
    driver: perf.LoadDriver = FakeDriver()
    assert callable(driver)


def test_load_test_without_a_driver_is_skipped(root: Path) -> None:
    """`--load` needs the server package's driver; without one the load test is skipped."""
    result = run_gate(root, load=True)
    assert result.status is Status.PASSED
    assert result.data["load_test"] == {"status": "SKIPPED", "reason": perf.NO_DRIVER}
    assert "needs the server package (tallinn.serve)" in perf.NO_DRIVER
    assert any(d.startswith("load test: SKIPPED (the load test needs the server package")
               for d in result.details)
    assert [m.name for m in result.metrics][-1] == "compose+render cost (costliest)"


def test_load_test_grades_what_the_driver_measured(root: Path) -> None:
    """The driver gets every measurable command with its arguments; its figures are graded."""
    driver = FakeDriver()
    result = run_gate(root, load=True, clients=2, duration=0.5, load_driver=driver)
    assert driver.seen == [(root, [("bye", {}), ("greet", {"name": "Ada"}),
                                   ("shout", {"word": "hey"})], 2, 0.5)]
    assert result.status is Status.PASSED
    assert result.data["load_test"] == {
        "status": "MEASURED", "clients": 2, "seconds": 0.5, "requests": 40, "errors": 0,
        "error_rate": 0.0, "first_errors": [], "requests_per_second": 80.0,
        "count": 40, "p50_ms": 2.0, "p95_ms": 5.0, "max_ms": 9.0,
    }
    p95, error_rate = result.metrics[-2:]
    assert (p95.name, p95.value, p95.threshold) == ("server prompts/get p95 under load", 5.0,
                                                    500.0)
    assert (error_rate.name, error_rate.value) == ("server error rate under load", 0.0)
    assert "load test: 2 clients for 0.5 s, 40 prompts/get (80/s), p50 2.00 ms, " \
           "p95 5.00 ms, max 9.00 ms, 0 errors" in result.details


def test_load_test_errors_fail_the_gate(root: Path) -> None:
    """Errors over `max_error_rate` fail the gate; the first five distinct ones are shown."""
    messages = tuple(f"prompts/get greet: boom {n}" for n in (6, 5, 4, 3, 2, 1, 1))
    driver = FakeDriver(FakeRun(calls=10, errors=7, error_messages=messages))
    result = run_gate(root, load=True, clients=1, duration=1, load_driver=driver)
    assert result.status is Status.FAILED
    load = result.data["load_test"]
    assert (load["count"], load["error_rate"]) == (3, 0.7)
    assert load["first_errors"] == [f"prompts/get greet: boom {n}" for n in (1, 2, 3, 4, 5)]
    assert result.metrics[-1].value == 70.0
    assert result.metrics[-1].status is Status.FAILED
    assert "load test error: prompts/get greet: boom 1" in result.details


def test_load_test_with_no_requests_has_a_full_error_rate(root: Path) -> None:
    """A run that made no request at all counts as all errors, never as a clean run."""
    library = load_library(root)
    driver = FakeDriver(FakeRun(calls=0, p50_ns=0, p95_ns=0, max_ns=0))
    load = perf.load_test(library, perf.PerfSettings(), {"load_driver": driver})
    assert load["error_rate"] == 1.0
    assert driver.seen[0][2:] == (50, 10.0)  # [gates.perf] load_clients and load_seconds


def test_load_test_needs_a_renderable_command(write_library: WriteLibrary) -> None:
    """Without a command that renders with known arguments, no server is started."""
    root = write_library({"tallinn.toml": FAST, "commands/people/orphan.md": ORPHAN})
    driver = FakeDriver()
    load = perf.load_test(load_library(root), perf.PerfSettings(), {"load_driver": driver})
    assert load == {"status": "SKIPPED", "reason": "no command renders with known arguments"}
    assert driver.seen == []


# --- tallinn bench --------------------------------------------------------------------


def test_bench_json(root: Path) -> None:
    result = runner.invoke(app, ["bench", "--library", str(root), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["gate"] == "perf"
    assert data["status"] == "PASSED"
    assert [m["name"] for m in data["metrics"]] == [
        "largest render", "deepest include chain", "library memory", "library source",
        "compose+render cost (costliest)"]
    assert data["findings"][0]["code"] == "P102"


def test_bench_table_and_failure_exit(root: Path) -> None:
    result = runner.invoke(app, ["bench", "-L", str(root)])
    assert result.exit_code == 0, result.stderr
    assert "compose+render cost" in result.stdout
    assert "PASSED" in result.stdout
    (root / "tallinn.toml").write_text(FAST + "max_render_cost = 0.000001\n", "utf-8")
    slow = runner.invoke(app, ["bench", "-L", str(root)])
    assert slow.exit_code == 1
    assert "P101" in slow.stdout


def test_bench_load_option_without_server(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the server package `bench --load` measures the rest and skips the load test."""
    monkeypatch.setitem(sys.modules, "tallinn.serve", None)
    result = runner.invoke(app, ["bench", "-L", str(root), "--json", "--load"])
    assert result.exit_code == 0, result.stderr
    load = json.loads(result.stdout)["data"]["load_test"]
    assert load == {"status": "SKIPPED", "reason": perf.NO_DRIVER}


def test_bench_load_option_passes_the_servers_driver(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bench --load` hands the gate the server's driver with --clients and --duration."""
    driver = FakeDriver()
    monkeypatch.setattr("tallinn.cli.quality.load_driver", lambda: driver)
    result = runner.invoke(app, ["bench", "-L", str(root), "--load", "--clients", "3",
                                 "--duration", "0.3"])
    assert result.exit_code == 0, result.stdout
    assert "server error rate under load" in result.stdout
    assert [seen[2:] for seen in driver.seen] == [(3, 0.3)]
