"""Gate 3 (performance) and `tallinn bench`, measured on real libraries written to disk."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import WriteLibrary
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates import perf
from tallinn.gates.base import GateContext, Status
from tallinn.library import load_library
from tallinn.library.prompttests import load_tests

runner = CliRunner()


# Few iterations keep the suite fast; generous limits keep figures from grading the machine.
FAST = """
[gates.perf]
load_runs = 2
iterations = 5
warmup = 1
max_rss_mb = 100000
max_load_seconds = 60
max_render_p95_ms = 1000
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
    result = run_gate(root)
    assert result.status is Status.PASSED
    names = [(m.name, m.unit, m.higher_is_better) for m in result.metrics]
    assert names == [("library load time (median)", "s", False),
                     ("compose+render p95", "ms", False),
                     ("peak memory (RSS)", "MB", False)]
    load_time, p95, rss = (m.value for m in result.metrics)
    assert 0 < load_time < 60
    assert 0 < p95 < 1000
    assert rss > 1  # a Python process holds more than a megabyte
    data = result.data
    assert data["commands"] == 4
    assert len(data["load_seconds"]) == 2
    assert data["compose_render"]["count"] == 3 * 5  # three measurable commands
    assert data["per_command"]["greet"]["arguments"] == "example 1"
    assert data["per_command"]["shout"]["arguments"] == "test: tests/shout.yaml::shouts"
    assert data["per_command"]["bye"]["arguments"] == "no arguments"
    assert "orphan" in data["unmeasured"]
    (finding,) = result.findings
    assert (finding.code, finding.path) == ("P102", "commands/people/orphan.md")
    assert "no prompt test or example renders it (missing required argument 'value')" in (
        finding.message)
    assert any(d.startswith("compose+render: p50") for d in result.details)


def test_tight_limits_fail_and_floors_give_partial(root: Path) -> None:
    """Limits no machine can meet fail every figure and flag every command as slow."""
    (root / "tallinn.toml").write_text(
        "[gates.perf]\nload_runs = 1\niterations = 3\nmax_rss_mb = 0.001\n"
        "max_load_seconds = 0.000000001\nmax_render_p95_ms = 0.000001\n", "utf-8")
    result = run_gate(root)
    assert result.status is Status.FAILED
    assert {m.status for m in result.metrics} == {Status.FAILED}
    slow = sorted(f.path for f in result.findings if f.code == "P101")
    assert slow == ["commands/people/bye.md", "commands/people/greet.md",
                    "commands/people/shout.md"]
    (root / "tallinn.toml").write_text(
        "[gates.perf]\nload_runs = 1\niterations = 3\nmax_rss_mb = 0.001\nrss_floor_mb = 100000\n"
        "max_load_seconds = 60\nmax_render_p95_ms = 1000\n", "utf-8")
    assert run_gate(root).status is Status.PARTIAL


def test_load_limit_scales_with_commands(root: Path) -> None:
    """1 s per 1,000 commands, never under 1 s: 2,500 commands may take 2.5 s."""
    library = load_library(root)
    latency = perf.Latency.of([1_000, 2_000, 3_000])
    measured = perf.Measurements(2500, (2_000_000_000, 2_400_000_000, 3_000_000_000), latency,
                                 latency, peak_rss=50 * perf.MB)
    settings = perf.PerfSettings()
    result = perf.evaluate(library, measured, settings)
    load_time = result.metrics[0]
    assert (load_time.value, load_time.threshold, load_time.status) == (2.4, 2.5, Status.PASSED)
    small = perf.Measurements(10, (1_200_000_000,), latency, latency, peak_rss=1)
    assert perf.evaluate(library, small, settings).metrics[0].threshold == 1.0
    floored = perf.evaluate(library, small, perf.PerfSettings(load_floor_seconds=2))
    assert floored.metrics[0].status is Status.PARTIAL


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
    suite = load_tests(root)
    greet = perf.invocation(library, library.commands["greet"], suite)
    assert isinstance(greet, perf.Invocation)
    assert (dict(greet.arguments), greet.source) == ({"name": "Ada"}, "example 1")
    assert perf.invocation(library, library.commands["orphan"], suite) == (
        "no prompt test or example renders it (missing required argument 'value')")


def test_memory_figures_are_real() -> None:
    assert perf.peak_rss_bytes() >= perf.current_rss_bytes() > 1_000_000


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
    assert [m.name for m in result.metrics][-1] == "peak memory (RSS)"


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
    assert "load test: 2 client(s) for 0.5 s, 40 prompts/get (80/s), p50 2.00 ms, " \
           "p95 5.00 ms, max 9.00 ms, 0 error(s)" in result.details


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
        "library load time (median)", "compose+render p95", "peak memory (RSS)"]
    assert data["findings"][0]["code"] == "P102"


def test_bench_table_and_failure_exit(root: Path) -> None:
    result = runner.invoke(app, ["bench", "-L", str(root)])
    assert result.exit_code == 0, result.stderr
    assert "compose+render p95" in result.stdout
    assert "PASSED" in result.stdout
    (root / "tallinn.toml").write_text("[gates.perf]\nload_runs = 1\niterations = 2\n"
                                       "max_render_p95_ms = 0.000001\n", "utf-8")
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
