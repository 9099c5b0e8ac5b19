"""The live load test (`run_load_test`) and `--load` end to end, against a real server."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from tests.helpers import write_files
from tests.serve.serve_helpers import free_port
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.gates.perf import LoadDriver
from tallinn.serve import LoadResult, run_load_test
from tallinn.serve._loadtest import _drive, _LoopbackServer, _percentile

runner = CliRunner()

# A generous server limit keeps the live figures from grading the machine.
LIBRARY = {
    "tallinn.toml": """
        [gates.perf]
        rounds = 5
        max_rounds = 5
        repeat = 2
        max_server_p95_ms = 100000
    """,
    "commands/people/greet.md": """
        ---
        description: Greet a person by name, politely
        arguments:
          - {name: name, description: Who to greet, required: true}
        examples:
          - {description: Greet Ada, args: {name: Ada}}
        ---
        Hello {{name}}, welcome.
    """,
    "commands/people/bye.md": """
        ---
        description: Say goodbye to everyone present
        ---
        Goodbye, everyone.
    """,
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_files(tmp_path / "library", LIBRARY)


def test_run_load_test_is_the_gates_load_driver() -> None:
    """`run_load_test` keeps to the protocol the performance gate documents."""
    driver: LoadDriver = run_load_test
    assert driver is run_load_test


def test_run_load_test_drives_a_live_server(root: Path) -> None:
    """Concurrent MCP clients call prompts/get on a loopback server until the time is up."""
    result = run_load_test(root, [("greet", {"name": "Ada"}), ("bye", {})], clients=2,
                           seconds=0.3)
    assert isinstance(result, LoadResult)
    assert result.errors == 0, result.error_messages
    assert result.calls > 0
    assert result.error_messages == ()
    assert 0 < result.p50_ns <= result.p95_ns <= result.max_ns
    assert result.duration >= 0.3


def test_failed_calls_are_counted_with_their_messages(root: Path) -> None:
    """A prompt the server does not have is an error each time, its message kept once."""
    result = run_load_test(root, [("no-such-prompt", {})], clients=2, seconds=0.2)
    assert result.calls == result.errors > 0
    assert (result.p50_ns, result.p95_ns, result.max_ns) == (0, 0, 0)
    (message,) = result.error_messages
    assert message.startswith("prompts/get no-such-prompt: ")


def test_run_load_test_needs_a_call(root: Path) -> None:
    with pytest.raises(ValueError, match="at least one call"):
        run_load_test(root, [], clients=1, seconds=0.1)


def test_a_session_that_cannot_connect_is_an_error() -> None:
    """Nothing listening: each client's session fails once, and no call is timed."""
    latencies, errors = _drive(f"http://127.0.0.1:{free_port()}", [("greet", {})], 2, 0.1)
    assert latencies == []
    assert len(errors) == 2
    assert all(e.startswith("session: ") for e in errors)


# uvicorn ends its thread with SystemExit(3) when the application's startup fails.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_server_that_does_not_start_is_an_error() -> None:
    """A failing startup stops the load test at once instead of waiting for it."""

    @contextlib.asynccontextmanager
    async def broken(_app: Starlette) -> AsyncIterator[None]:
        raise RuntimeError("no startup")
        yield  # pragma: no cover - makes this a generator

    loopback = _LoopbackServer(Starlette(lifespan=broken))
    with pytest.raises(RuntimeError, match="did not start within"), loopback:
        pass  # pragma: no cover - never entered
    assert not loopback.thread.is_alive()


def test_percentiles_are_nearest_rank() -> None:
    assert _percentile(list(range(1, 101)), 95) == 95
    assert _percentile([7], 50) == 7
    assert _percentile([], 95) == 0


# --- --load end to end ------------------------------------------------------------------


def test_bench_load_drives_the_library(root: Path) -> None:
    """`tallinn bench --load` serves the library and grades the server under load."""
    result = runner.invoke(app, ["bench", "-L", str(root), "--json", "--load", "--clients",
                                 "2", "--duration", "0.3"])
    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout)
    load = data["data"]["load_test"]
    assert load["status"] == "MEASURED"
    assert (load["clients"], load["seconds"]) == (2, 0.3)
    assert load["requests"] > 0
    assert load["errors"] == 0, load["first_errors"]
    assert [m["name"] for m in data["metrics"]][-2:] == [
        "server prompts/get p95 under load", "server error rate under load"]


def test_gates_load_drives_the_library(root: Path) -> None:
    """`tallinn gates --only perf --load` runs the load test; the report has no driver in it."""
    (root / "tallinn.toml").write_text(
        (root / "tallinn.toml").read_text(encoding="utf-8") + "load_clients = 2\n"
        "load_seconds = 0.3\n", encoding="utf-8")
    result = runner.invoke(app, ["gates", "-L", str(root), "--only", "perf", "--load", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["options"] == {"baseline": None, "coverage_xml": None, "load": True}
    (perf,) = report["gates"]
    assert perf["data"]["load_test"]["status"] == "MEASURED"
    assert perf["data"]["load_test"]["errors"] == 0, perf["data"]["load_test"]["first_errors"]
    assert any(d.startswith("load test: 2 clients for 0.3 s") for d in perf["details"])
