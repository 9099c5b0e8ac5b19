"""Tallinn's MCP server against a bare SDK server, side by side, in one run.

    uv run python benchmarks/bench_serve.py [--seconds 10] [--open-seconds 15] [--rounds 1]
    uv run python benchmarks/bench_serve.py --reload-only [--reload-sizes 1000 10000]
                                            [--reload-edits 20] [--against REV]
    uv run python benchmarks/bench_serve.py --gates-only [--gates-sizes 1000 10000]
                                            [--gates-repeat 3] [--against REV]
    uv run python benchmarks/bench_serve.py --throughput-only --against REV [--rounds 2]

Both servers serve a synthetic library of 1,000 commands (benchmarks/synth.py): Tallinn from
the folder, the bare server (benchmarks/bare_server.py) from the prompt list and the one
rendered text Tallinn would answer, computed here. Measured:

(a) prompts/get throughput at 50 connections (wrk, else benchmarks/loadgen.py closed),
    stateless and stateful; Tallinn in production mode (bearer token, metrics, JSON logs,
    the rate limit set far above the load);
(b) an open-loop team load: 200 clients at 1 request/s each (benchmarks/loadgen.py open),
    against the stateful servers, one session per client: p50, p99, errors;
(c) stdio cold start to the first prompts/list answer, and `python -c "import mcp"`; Tallinn
    also without its front-matter cache, as on a library's first start;
(d) the RSS of both HTTP servers at start, after (a) and (b), and at start with 10 commands
    (what a server costs before its library);
(e) the reload after one edit, at 1,000 and 10,000 commands: a command or a component file
    is rewritten, and the time runs until the registry has swapped the new library in, in a
    process of its own: `reload` is Registry.reload given the edited path (what the watcher
    passes), `watched` the whole way through the inotify watcher, its debounce (25 ms)
    included. Median and p95 over `--reload-edits` edits; with `--against REV`, REV (checked
    out and installed as benchmarks/bench_gates.py does) is measured beside this tree.
(f) the RSS of both HTTP servers at start with bytecode caches and without (an empty
    PYTHONPYCACHEPREFIX and PYTHONDONTWRITEBYTECODE: what a fresh, __pycache__-free copy
    costs), and of Tallinn started on a store it must migrate first (the migration runs in a
    child process) against one already migrated; and what each step of a production start
    adds, in the server's order, up to its first token check and its first security event
    and its first failed request, both written through the database driver. `--memory-only`
    runs (f) alone.
(g) whole runs of `tallinn gates` on the 2025 corpus (when it is beside the project) and on
    synthetic libraries of `--gates-sizes` commands (1,000 and 10,000), median of
    `--gates-repeat`, bytecode kept, each beside its target (benchmarks/bench_gates.py has
    more). `--gates-only` runs (g) alone. With `--against REV`, REV stands beside this tree
    in (e) and (g).
(h) `--throughput-only`: (a) alone, stateful and stateless, with REV's server (each version on a
    store it made itself) beside this tree's and the bare server, taking turns in every round
    (`--rounds`, the best kept): what a change cost the request path, measured in one run.

Every load targets 127.0.0.1 only, and is bounded in time. About 3 minutes with the defaults
(5 with `--against`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from loadgen import PROTOCOL, headers, initialize_body  # noqa: E402
from synth import generate  # noqa: E402

PYTHON = sys.executable
COMMAND = "cmd-00000"
ARGUMENTS = {"target": "src/parser.py", "depth": "deep"}
# Every request gets an id of its own (__ID__): requests in flight in one session must not
# share one, or the SDK routes their answers to the wrong stream.
GET_BODY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "prompts/get",
        "params": {"name": COMMAND, "arguments": ARGUMENTS},
    },
    separators=(",", ":"),
).replace('"id":0', '"id":__ID__')
# Production mode with the rate limit far above anything the benchmark sends.
HIGH_RATE = "1000000/s"
START_TIMEOUT = 60.0

# Targets (GitHub issue #4).
MIN_THROUGHPUT_RATIO = 0.85
MAX_P99_MS = 20.0
MAX_COLD_START_EXTRA_S = 0.150
MAX_RSS_EXTRA_MB = 25.0
SMALL_LIBRARY = 10  # commands: what a server costs before its library


# -- the library, the bare server's input, the state store ---------------------------------


@dataclass(frozen=True, slots=True)
class Fixture:
    root: Path  # the temporary folder
    library: Path
    spec: Path  # what the bare server serves
    store_url: str
    token: str
    commands: int


def prepare(root: Path, commands: int) -> Fixture:
    """Write the library, the bare server's prompts file and a store with one token."""
    from tallinn.library import render
    from tallinn.ops.store import open_store
    from tallinn.serve import Registry

    library = generate(root / "library", commands)
    snapshot = Registry(library).load()
    command = snapshot.library.commands[COMMAND]
    spec = {
        "prompts": list(snapshot.prompts),
        "get": {
            "description": command.description,
            "text": render(snapshot.library, command, ARGUMENTS),
        },
    }
    spec_path = root / "prompts.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    store_url = f"sqlite:///{root / 'state.db'}"
    with open_store(store_url) as store:
        token = store.create_token("bench")
    return Fixture(root, library, spec_path, store_url, token, commands)


# -- (e) reload after one edit ---------------------------------------------------------------

# Run in a process of its own, by this tree's Python or an earlier revision's: it uses only
# what every revision has (Registry, watch_library), and passes the edited path to reload
# where reload takes one.
RELOAD_PROBE = r"""
import inspect, json, os, statistics, sys, time
from pathlib import Path
import anyio
from tallinn.serve import Registry
from tallinn.serve._reload import watch_library

root, edits = Path(sys.argv[1]), int(sys.argv[2])
targets = sorted(str(p.relative_to(root)) for p in root.glob("commands/*/*.md"))[:edits]
parts = sorted(str(p.relative_to(root)) for p in root.glob("components/*/*.md"))[:edits]
registry = Registry(root)
registry.load()
hinted = "changed" in inspect.signature(registry.reload).parameters

def edit(rel, n):
    path = root / rel
    text = path.read_text(encoding="utf-8")
    path.write_text(text.rstrip(chr(10)) + f" (edit {n})" + chr(10), encoding="utf-8")

async def measure():
    reload_ms, watched_ms = [], []
    for n in range(edits):
        rel = (targets if n % 2 else parts)[n // 2]
        edit(rel, n)
        start = time.perf_counter()
        result = await (registry.reload({rel}) if hinted else registry.reload())
        reload_ms.append((time.perf_counter() - start) * 1000)
        assert result.outcome == "swapped", result
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(watch_library, registry, stop)
        for n in range(edits):
            rel = (targets if n % 2 else parts)[(edits + n) // 2 % len(targets)]
            before = registry.current
            edit(rel, edits + n)
            start = time.perf_counter()
            with anyio.fail_after(60):
                while registry.current is before:
                    await anyio.sleep(0.001)
            watched_ms.append((time.perf_counter() - start) * 1000)
        stop.set()
    return reload_ms, watched_ms

reload_ms, watched_ms = anyio.run(measure)
print(json.dumps({"reload": reload_ms, "watched": watched_ms}))
"""


def p95(values: Sequence[float]) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * 95 // 100) - 1)]


def reload_figures(python: Path, library: Path, edits: int) -> dict[str, Any]:
    """Median and p95 of both reload figures, from a copy of `library` (edits change it)."""
    work = Path(tempfile.mkdtemp(prefix="tallinn-reload-"))
    try:
        copy = work / "library"
        shutil.copytree(library, copy)
        # Files written long ago, as a served library's are: a file written within the last
        # two seconds is read again at each reload, whatever its identity says.
        for path in copy.rglob("*"):
            os.utime(path, (time.time() - 3600,) * 2)
        done = subprocess.run([str(python), "-c", RELOAD_PROBE, str(copy), str(edits)],
                              capture_output=True, text=True, check=False, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"the reload probe failed ({python}):\n{done.stderr}")
        raw = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {kind: {"median_ms": statistics.median(v), "p95_ms": p95(v), "n": len(v)}
            for kind, v in raw.items()}


@contextlib.contextmanager
def versions_of(root: Path, args: argparse.Namespace) -> Iterator[list[tuple[str, Path]]]:
    """This tree, and `--against` checked out and installed under `root` (removed after)."""
    versions = [("this tree", Path(PYTHON))]
    if args.against:
        from bench_gates import install_revision

        versions.append((args.against, install_revision(args.against, root / "rev")))
    try:
        yield versions
    finally:
        if args.against:
            from bench_gates import remove_revision

            remove_revision(root / "rev")


def reload_report(root: Path, args: argparse.Namespace,
                  versions: Sequence[tuple[str, Path]]) -> dict[str, Any]:
    """(e): every size and version, printed as a table; returns the figures."""
    results: dict[str, Any] = {}
    print(f"(e) reload after one edit, median / p95 ms over {args.reload_edits} edits")
    print(f"  {'library':18} {'version':12} {'reload':>17} {'watched (with debounce)':>26}")
    for size in args.reload_sizes:
        library = generate(root / f"reload-{size}", size)
        for name, python in versions:
            figures = reload_figures(python, library, args.reload_edits)
            results[f"{size}/{name}"] = figures
            shown = ["{median_ms:7.1f} / {p95_ms:7.1f}".format(**figures[kind])
                     for kind in ("reload", "watched")]
            print(f"  {size:>8,} commands {name:12} {shown[0]:>17} {shown[1]:>26}",
                  flush=True)
    return results


def throughput_report(fx: Fixture, args: argparse.Namespace,
                      versions: Sequence[tuple[str, Path]]) -> dict[str, Any]:
    """(h): (a) for the bare server and every version, taking turns in each round."""
    global PYTHON
    fixtures = {"this tree": fx}
    for name, python in versions[1:]:
        url = f"sqlite:///{fx.root / f'state-{len(fixtures)}.db'}"
        made = subprocess.run(
            [str(python), "-c", "import sys; from tallinn.ops.store import open_store; "
             "print(open_store(sys.argv[1]).create_token('bench'))", url],
            capture_output=True, text=True, check=True)
        fixtures[name] = dataclasses.replace(fx, store_url=url,
                                             token=made.stdout.strip().splitlines()[-1])
    pythons = dict(versions)
    found: dict[str, list[float]] = {}
    own = PYTHON
    try:
        for _ in range(args.rounds):
            for stateless in (True, False):
                mode = "stateless" if stateless else "stateful"
                servers = [("bare SDK", bare_http(fx, stateless=stateless, json_response=True))]
                for name, fixture in fixtures.items():
                    PYTHON = str(pythons[name])
                    servers.append((name, tallinn_http(fixture, stateless=stateless)))
                PYTHON = own
                for name, server in servers:
                    with running(server):
                        session = None if stateless else server.session()
                        rps = throughput(server, session, args.seconds, args.warmup,
                                         args.connections, use_wrk=args.use_wrk)["rps"]
                    found.setdefault(f"{mode}/{name}", []).append(rps)
    finally:
        PYTHON = own
    print(f"(h) prompts/get req/s at {args.connections} connections, best of {args.rounds}, "
          "share of the bare server")
    for mode in ("stateless", "stateful"):
        bare = max(found[f"{mode}/bare SDK"])
        for name in ("bare SDK", *fixtures):
            best = max(found[f"{mode}/{name}"])
            print(f"  {mode:9} {name:12} {best:7.0f} req/s  {best / bare:6.0%}")
    return {key: max(values) for key, values in found.items()}


def gates_report(root: Path, args: argparse.Namespace,
                 versions: Sequence[tuple[str, Path]]) -> dict[str, Any]:
    """(g): whole runs of `tallinn gates` on every library and version; returns the figures."""
    from bench_gates import libraries_for, whole_runs

    print("(g) ", end="")
    runs = whole_runs(libraries_for(root / "gates", args.gates_sizes), versions,
                      args.gates_repeat, root / "gates", bytecode=True)
    return {f"{label}/{name}": {"seconds": run.seconds, "cpu_s": run.cpu, "rss_mb": run.rss_mb,
                                "gates": run.gates}
            for label, by_version in runs.items() for name, run in by_version.items()}


# -- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process on 127.0.0.1; its output goes to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    token: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.argv, "--port", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx2.Client(headers=headers(self.token), timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited; see {self.log}")
                with contextlib.suppress(httpx2.HTTPError):
                    if client.post(self.url, json=initialize_body()).status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not answer in {START_TIMEOUT:.0f} s")
                time.sleep(0.05)

    def session(self) -> str:
        """A new session's id (stateful servers)."""
        with httpx2.Client(headers=headers(self.token), timeout=5.0) as client:
            response = client.post(self.url, json=initialize_body())
            response.raise_for_status()
            session = response.headers["mcp-session-id"]
            client.headers["Mcp-Session-Id"] = session
            client.post(
                self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}
            ).raise_for_status()
            return session

    def media_type(self) -> str:
        """How the server answers a POST: application/json or text/event-stream."""
        with httpx2.Client(headers=headers(self.token), timeout=5.0) as client:
            response = client.post(self.url, json=initialize_body())
            return response.headers.get("content-type", "").split(";")[0]

    def rss_mb(self) -> float:
        assert self.process is not None
        return rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server.start()
    finally:
        server.stop()


def bare_http(fx: Fixture, *, stateless: bool, json_response: bool) -> Server:
    argv = [PYTHON, str(HERE / "bare_server.py"), "--prompts", str(fx.spec), "http"]
    argv += ["--stateless"] * stateless + ["--json"] * json_response
    mode = "stateless" if stateless else "stateful"
    return Server(f"bare SDK ({mode})", argv, dict(os.environ), fx.root / "bare.log")


def tallinn_http(fx: Fixture, *, stateless: bool) -> Server:
    argv = [PYTHON, "-m", "tallinn", "serve", "--http", "--library", str(fx.library)]
    argv += ["--production", "--rate-limit", HIGH_RATE] + ["--stateless"] * stateless
    env = {**os.environ, "TALLINN_STORE_URL": fx.store_url}
    mode = "stateless" if stateless else "stateful"
    return Server(f"Tallinn ({mode})", argv, env, fx.root / "tallinn.log", fx.token)


def bytecode_env(env: dict[str, str], caches: Path | None, empty: Path) -> dict[str, str]:
    """`env` reading and writing bytecode caches under `caches`, or reading none at all."""
    dropped = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in env.items() if k not in dropped}
    if caches is None:
        return {**env, "PYTHONPYCACHEPREFIX": str(empty), "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, "PYTHONPYCACHEPREFIX": str(caches)}


class HealthyServer(Server):
    """A server counted as started once /health answers: it may have no token to offer."""

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [*self.argv, "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
            )
        health = self.url.removesuffix("/mcp") + "/health"
        deadline = time.monotonic() + START_TIMEOUT
        while self.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(health, timeout=2.0).status_code == 200:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become healthy; see {self.log}")


def memory_starts(fx: Fixture, runs: int) -> dict[str, Any]:
    """(f) RSS MB at start, the median of `runs` starts: both HTTP servers with and without
    bytecode caches, and Tallinn on a store its start migrates against one already migrated."""
    caches, empty = fx.root / "pycache", fx.root / "no-pycache"
    empty.mkdir(exist_ok=True)
    servers = {
        "bare": lambda: bare_http(fx, stateless=False, json_response=True),
        "tallinn": lambda: tallinn_http(fx, stateless=False),
    }
    found: dict[str, Any] = {}
    for label, where in (("cached", caches), ("uncached", None)):
        for kind, make in servers.items():
            if where is not None:  # a first start writes the caches, as an install would
                first = make()
                first.env = bytecode_env(first.env, where, empty)
                with running(first):
                    pass
            sizes = []
            for _ in range(runs):
                server = make()
                server.env = bytecode_env(server.env, where, empty)
                with running(server):
                    sizes.append(server.rss_mb())
            found[f"{label}/{kind}"] = statistics.median(sizes)
    migrated, fresh = [], []
    for run in range(runs):
        for sizes, url in (
            (migrated, fx.store_url),
            (fresh, f"sqlite:///{fx.root / f'fresh-{run}.db'}"),
        ):
            server = tallinn_http(fx, stateless=False)
            server = HealthyServer(server.name, server.argv, server.env, server.log)
            server.env = {**bytecode_env(server.env, caches, empty), "TALLINN_STORE_URL": url}
            with running(server):
                sizes.append(server.rss_mb())
    found["migrated_store"] = statistics.median(migrated)
    found["fresh_store"] = statistics.median(fresh)
    return found


def report_memory(found: dict[str, Any]) -> None:
    print("(f) RSS MB at start, production HTTP, stateful (median of starts):")
    for label, title in (("cached", "with bytecode caches"), ("uncached", "without")):
        bare, tallinn = found[f"{label}/bare"], found[f"{label}/tallinn"]
        print(f"  {title:28s} bare SDK {bare:6.1f}  Tallinn {tallinn:6.1f}  "
              f"({tallinn - bare:+.1f})")
    migrated, fresh = found["migrated_store"], found["fresh_store"]
    print(f"  Tallinn on a migrated store {migrated:6.1f}, on one its start migrated "
          f"{fresh:6.1f} ({fresh - migrated:+.1f})")


# What each step of a production HTTP start adds to the RSS, in the server's own order (as
# `tallinn serve --http --production` runs them) after what the bare server imports too, then
# what the first token check, the first security event and the first failed request add. Run
# in a process of its own; the RSS is read from /proc, so that nothing is imported to measure
# it.
STEPS_PROBE = r"""
import json, sys
from pathlib import Path

def rss():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

library, url, token = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
steps = [("the interpreter", rss())]
import json, argparse, contextlib
import uvicorn
from mcp import types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.routing import Route
steps.append(("what the bare server imports (the SDK, Starlette, uvicorn)", rss()))
import typer
steps.append(("Typer (the command line that starts the server)", rss()))
import tallinn.cli, tallinn.cli.serve
steps.append(("tallinn.cli", rss()))
from tallinn import serve as serving
serving.configure_logging(json_lines=True)
steps.append(("tallinn.serve with prometheus-client", rss()))
registry = serving.Registry(library)
registry.load()
steps.append((f"the library of {len(registry.current.library.commands)} commands, loaded", rss()))
store = serving.open_state_store(url, library, required=True)
steps.append(("the state store opened (" + type(store).__name__ + ")", rss()))
server = serving.http_server(registry, store, serving.ServeConfig(production=True))
steps.append(("the app and uvicorn's server built", rss()))
assert store.verify_token(token) is not None
steps.append(("a token checked", rss()))
store.record_event("auth_failure", client="ip:127.0.0.1", detail="a bad token")
steps.append(("a security event written (through the driver too)", rss()))
from datetime import UTC, datetime
from tallinn.ops.error_events import ErrorEvent
store.record_errors([ErrorEvent.capture("boom", at=datetime.now(UTC), where="greet")])
steps.append(("a failed request written (through the driver too)", rss()))
print(json.dumps({"steps": steps, "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


def memory_steps(fx: Fixture, runs: int) -> list[tuple[str, float]]:
    """RSS MB each step of a production start adds, the median of `runs` runs, with bytecode
    caches (written by a first run that is not counted)."""
    caches, empty = fx.root / "pycache", fx.root / "no-pycache"
    empty.mkdir(exist_ok=True)
    env = bytecode_env({**os.environ}, caches, empty)
    argv = [PYTHON, "-c", STEPS_PROBE, str(fx.library), fx.store_url, fx.token]
    found: list[list[tuple[str, float]]] = []
    for run in range(runs + 1):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                              check=True)
        if run:
            found.append(json.loads(done.stdout)["steps"])
    names = [name for name, _ in found[0]]
    rows = [(names[0], statistics.median(r[0][1] for r in found))]
    for i in range(1, len(names)):
        rows.append((names[i], statistics.median(r[i][1] - r[i - 1][1] for r in found)))
    return rows


def report_steps(rows: list[tuple[str, float]]) -> None:
    print("RSS MB added by each step of a production HTTP start (median of runs, bytecode "
          "caches):")
    for name, mb in rows:
        print(f"  {name:58s} {mb:6.1f}")


# -- loads ---------------------------------------------------------------------------------


def wrk_load(
    server: Server, session: str | None, seconds: float, connections: int
) -> dict[str, Any]:
    env = {
        **os.environ,
        "BENCH_BODY": GET_BODY,
        "BENCH_TOKEN": server.token or "",
        "BENCH_SESSION": session or "",
        "BENCH_PROTOCOL": PROTOCOL,
    }
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "prompts_get.lua"),
        server.url,
    ]
    output = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH "))
    fields = dict(item.split("=") for item in line.split()[1:])
    requests = int(fields["requests"])
    return {
        "rps": requests / (int(fields["duration_us"]) / 1e6),
        "requests": requests,
        "errors": int(fields["errors"]) + int(fields["socket_errors"]),
        "p50_ms": int(fields["p50_us"]) / 1000,
        "p99_ms": int(fields["p99_us"]) / 1000,
    }


def loadgen(mode: str, server: Server, seconds: float, *extra: str) -> dict[str, Any]:
    argv = [
        PYTHON,
        str(HERE / "loadgen.py"),
        mode,
        server.url,
        "--body",
        GET_BODY,
        "--seconds",
        str(seconds),
        *extra,
    ]
    if server.token:
        argv += ["--token", server.token]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def throughput(
    server: Server,
    session: str | None,
    seconds: float,
    warmup: float,
    connections: int,
    *,
    use_wrk: bool,
) -> dict[str, Any]:
    stateful = ["--stateful"] if session else []
    if use_wrk:
        wrk_load(server, session, warmup, connections)
        return wrk_load(server, session, seconds, connections)
    args = ["--connections", str(connections), *stateful]
    loadgen("closed", server, warmup, *args)
    return loadgen("closed", server, seconds, *args)


# -- stdio cold start ----------------------------------------------------------------------


def first_list(argv: Sequence[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Seconds from starting `argv` to its first prompts/list answer over stdio, and its RSS."""
    messages = [
        initialize_body(),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 1, "method": "prompts/list"},
    ]
    wire = b"".join(json.dumps(m).encode() + b"\n" for m in messages)
    with log.open("ab") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env
        )
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            # A client writes initialize at once; the rest may wait in the pipe meanwhile.
            process.stdin.write(wire)
            process.stdin.flush()
            for line in process.stdout:
                answer = json.loads(line)
                if answer.get("id") == 1:
                    elapsed = time.perf_counter() - started
                    if len(answer["result"]["prompts"]) == 0:
                        raise RuntimeError(f"{argv}: empty prompts/list")
                    return elapsed, rss_mb(process.pid)
                if time.perf_counter() - started > START_TIMEOUT:
                    break
            raise RuntimeError(f"{argv} gave no prompts/list answer; see {log}")
        finally:
            process.stdin.close()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def import_time(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", "import mcp"], check=True, timeout=60, env=env)
    return time.perf_counter() - started


def cold_starts(fx: Fixture, runs: int) -> dict[str, Any]:
    bare = [PYTHON, str(HERE / "bare_server.py"), "--prompts", str(fx.spec), "stdio"]
    tallinn = [PYTHON, "-m", "tallinn", "serve", "--library", str(fx.library)]
    # Bytecode caches are written by the warm-up starts, as an installed package has them.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["TALLINN_STORE_URL"] = fx.store_url
    log = fx.root / "stdio.log"
    import_time(env)
    first_list(bare, env, log)
    first_list(tallinn, env, log)  # a first start may migrate the store; not a cold start
    # A library's first start, or one after every file changed, parses all its front matter.
    uncached = {**env, "TALLINN_NO_CACHE": "1"}
    imports, bare_s, tallinn_s, uncached_s, bare_rss, tallinn_rss = [], [], [], [], [], []
    for _ in range(runs):  # interleaved, so drift hits all of them alike
        imports.append(import_time(env))
        seconds, rss = first_list(bare, env, log)
        bare_s.append(seconds)
        bare_rss.append(rss)
        seconds, rss = first_list(tallinn, env, log)
        tallinn_s.append(seconds)
        tallinn_rss.append(rss)
        uncached_s.append(first_list(tallinn, uncached, log)[0])
    return {
        "import_mcp_s": statistics.median(imports),
        "bare_s": statistics.median(bare_s),
        "tallinn_s": statistics.median(tallinn_s),
        "tallinn_uncached_s": statistics.median(uncached_s),
        "bare_rss_mb": statistics.median(bare_rss),
        "tallinn_rss_mb": statistics.median(tallinn_rss),
    }


# -- the run -------------------------------------------------------------------------------


def measure(fx: Fixture, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "throughput": {}, "open_loop": {}, "rss_mb": {}, "rss_start_mb": {}, "rss_small_mb": {}
    }
    # Answer the way Tallinn answers (JSON bodies or SSE streams), so the bodies compare.
    with running(tallinn_http(fx, stateless=True)) as probe:
        json_response = probe.media_type() == "application/json"
    results["json_response"] = json_response
    for stateless in (True, False):
        mode = "stateless" if stateless else "stateful"
        servers = {
            "bare": bare_http(fx, stateless=stateless, json_response=json_response),
            "tallinn": tallinn_http(fx, stateless=stateless),
        }
        for kind, server in servers.items():
            with running(server):
                if not stateless:
                    results["rss_start_mb"][kind] = server.rss_mb()
                rounds = []
                for _ in range(args.rounds):
                    session = None if stateless else server.session()
                    rounds.append(
                        throughput(
                            server,
                            session,
                            args.seconds,
                            args.warmup,
                            args.connections,
                            use_wrk=args.use_wrk,
                        )
                    )
                best = max(rounds, key=lambda r: r["rps"])
                best["errors"] = sum(r["errors"] for r in rounds)
                results["throughput"][(mode, kind)] = best
                print(f"  {server.name}: {best['rps']:.0f} req/s", file=sys.stderr)
                if not stateless:
                    results["open_loop"][kind] = loadgen(
                        "open",
                        server,
                        args.open_seconds,
                        "--stateful",
                        "--clients",
                        str(args.clients),
                        "--rate",
                        str(args.rate),
                    )
                    print(
                        f"  {server.name}: open loop {results['open_loop'][kind]}", file=sys.stderr
                    )
                    results["rss_mb"][kind] = server.rss_mb()
    # What a server costs before its library: the same servers with a library of 10 commands.
    small = prepare(fx.root / "small", SMALL_LIBRARY)
    for kind, server in {
        "bare": bare_http(small, stateless=False, json_response=json_response),
        "tallinn": tallinn_http(small, stateless=False),
    }.items():
        with running(server):
            results["rss_small_mb"][kind] = server.rss_mb()
    results["cold"] = cold_starts(fx, args.cold_runs)
    results["memory"] = memory_starts(fx, args.memory_runs)
    return results


def uvicorn_loop() -> str:
    """What uvicorn's "auto" picks for both servers: uvloop and httptools when installed."""
    from importlib.util import find_spec

    loop = f"uvloop {version('uvloop')}" if find_spec("uvloop") else "asyncio"
    http = f"httptools {version('httptools')}" if find_spec("httptools") else "h11"
    return f"{loop}, {http}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(fx: Fixture, args: argparse.Namespace, r: dict[str, Any]) -> bool:
    loader = "wrk" if args.use_wrk else "loadgen.py closed"
    bodies = "JSON" if r["json_response"] else "SSE"
    print(
        f"Tallinn serving benchmark: {fx.commands} commands, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, mcp {version('mcp')}, uvicorn {version('uvicorn')} "
        f"({uvicorn_loop()})"
    )
    print(
        f"(a) {loader}, {args.connections} connections, {args.seconds:g} s "
        f"(best of {args.rounds}); responses as {bodies}; Tallinn: --production, "
        f"rate limit {HIGH_RATE}"
    )
    print(
        f"(b) {args.clients} clients x {args.rate:g} req/s, open loop, {args.open_seconds:g} s, "
        f"stateful, one session each; (c) median of {args.cold_runs} starts"
    )
    print()
    rows: list[tuple[str, str, str, str, str, str]] = []
    passed: list[bool] = []

    def row(
        label: str, bare: str, tallinn: str, compare: str, target: str, ok: bool | None
    ) -> None:
        rows.append((label, bare, tallinn, compare, target, "" if ok is None else verdict(ok)))
        if ok is not None:
            passed.append(ok)

    for mode in ("stateless", "stateful"):
        bare, tallinn = r["throughput"][(mode, "bare")], r["throughput"][(mode, "tallinn")]
        ratio = tallinn["rps"] / bare["rps"]
        row(
            f"prompts/get req/s, {mode}",
            f"{bare['rps']:.0f}",
            f"{tallinn['rps']:.0f}",
            f"{ratio:.0%}",
            f">= {MIN_THROUGHPUT_RATIO:.0%}",
            ratio >= MIN_THROUGHPUT_RATIO,
        )
        row(
            f"  latency p50 / p99 ms, {mode}",
            f"{bare['p50_ms']:.1f} / {bare['p99_ms']:.1f}",
            f"{tallinn['p50_ms']:.1f} / {tallinn['p99_ms']:.1f}",
            "",
            "",
            None,
        )
        errors = bare["errors"] + tallinn["errors"]
        row(f"  errors, {mode}", str(bare["errors"]), str(tallinn["errors"]), "", "0", errors == 0)
    bare, tallinn = r["open_loop"]["bare"], r["open_loop"]["tallinn"]
    row("open loop p50 ms", f"{bare['p50_ms']:.1f}", f"{tallinn['p50_ms']:.1f}", "", "", None)
    row(
        "open loop p99 ms",
        f"{bare['p99_ms']:.1f}",
        f"{tallinn['p99_ms']:.1f}",
        "",
        f"<= {MAX_P99_MS:g}",
        tallinn["p99_ms"] <= MAX_P99_MS,
    )
    row(
        "open loop errors / requests",
        f"{bare['errors']} / {bare['requests']}",
        f"{tallinn['errors']} / {tallinn['requests']}",
        "",
        "0",
        tallinn["errors"] == 0,
    )
    cold = r["cold"]
    extra = cold["tallinn_s"] - cold["import_mcp_s"]
    row('python -c "import mcp" s', f"{cold['import_mcp_s']:.3f}", "", "", "", None)
    row(
        "stdio start to prompts/list s",
        f"{cold['bare_s']:.3f}",
        f"{cold['tallinn_s']:.3f}",
        f"import {extra * 1000:+.0f} ms",
        f"<= +{MAX_COLD_START_EXTRA_S * 1000:.0f} ms",
        extra <= MAX_COLD_START_EXTRA_S,
    )
    uncached = cold["tallinn_uncached_s"] - cold["import_mcp_s"]
    row(
        "  first start (no front-matter cache) s",
        "",
        f"{cold['tallinn_uncached_s']:.3f}",
        f"import {uncached * 1000:+.0f} ms",
        "",
        None,
    )
    stdio_extra = cold["tallinn_rss_mb"] - cold["bare_rss_mb"]
    row(
        "stdio RSS MB at prompts/list",
        f"{cold['bare_rss_mb']:.0f}",
        f"{cold['tallinn_rss_mb']:.0f}",
        f"+{stdio_extra:.0f}",
        f"<= +{MAX_RSS_EXTRA_MB:g}",
        stdio_extra <= MAX_RSS_EXTRA_MB,
    )
    for label, key in (
        (f"HTTP RSS MB at start, {SMALL_LIBRARY} commands", "rss_small_mb"),
        (f"HTTP RSS MB at start, {fx.commands} commands", "rss_start_mb"),
    ):
        bare_mb, tallinn_mb = r[key]["bare"], r[key]["tallinn"]
        row(label, f"{bare_mb:.0f}", f"{tallinn_mb:.0f}", f"+{tallinn_mb - bare_mb:.0f}", "", None)
    grown = r["rss_mb"]["tallinn"] - r["rss_mb"]["bare"]
    row(
        "HTTP RSS MB after load",
        f"{r['rss_mb']['bare']:.0f}",
        f"{r['rss_mb']['tallinn']:.0f}",
        f"+{grown:.0f}",
        f"<= +{MAX_RSS_EXTRA_MB:g}",
        grown <= MAX_RSS_EXTRA_MB,
    )

    header = ("", "bare SDK", "Tallinn", "compared", "target", "")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(6)]
    for line in [header, *rows]:
        cells = [line[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        print("  ".join(cells).rstrip())
    print()
    report_memory(r["memory"])
    print()
    print(f"{sum(passed)} of {len(passed)} targets met")
    return all(passed)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=1000, help="library size")
    parser.add_argument("--seconds", type=float, default=10, help="(a) seconds per run")
    parser.add_argument("--warmup", type=float, default=2, help="(a) warm-up seconds")
    parser.add_argument("--rounds", type=int, default=1, help="(a) runs per server; best kept")
    parser.add_argument("--connections", type=int, default=50, help="(a) connections")
    parser.add_argument("--open-seconds", type=float, default=15, help="(b) seconds")
    parser.add_argument("--clients", type=int, default=200, help="(b) clients")
    parser.add_argument("--rate", type=float, default=1.0, help="(b) requests/s per client")
    parser.add_argument("--cold-runs", type=int, default=5, help="(c) starts per server")
    parser.add_argument("--memory-runs", type=int, default=3, help="(f) starts per figure")
    parser.add_argument("--memory-only", action="store_true", help="run (f) alone")
    parser.add_argument("--json", action="store_true", help="also print raw results as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--no-wrk", dest="use_wrk", action="store_false", help="(a) load from Python, not wrk"
    )
    parser.add_argument("--reload-only", action="store_true", help="measure (e) alone")
    parser.add_argument("--reload-sizes", type=int, nargs="*", default=[1000, 10000],
                        help="(e) library sizes")
    parser.add_argument("--reload-edits", type=int, default=20, help="(e) edits per figure")
    parser.add_argument("--gates-only", action="store_true", help="measure (g) alone")
    parser.add_argument("--throughput-only", action="store_true",
                        help="measure (a) alone, with --against beside this tree (h)")
    parser.add_argument("--gates-sizes", type=int, nargs="*", default=[1000, 10000],
                        help="(g) synthetic library sizes, beside the 2025 corpus")
    parser.add_argument("--gates-repeat", type=int, default=3, help="(g) runs per figure")
    parser.add_argument("--against", metavar="REV",
                        help="(e), (g), (h) an earlier commit to compare")
    args = parser.parse_args()
    if args.reload_only or args.gates_only:
        root = Path(tempfile.mkdtemp(prefix="tallinn-bench-"))
        try:
            with versions_of(root, args) as versions:
                report_of = reload_report if args.reload_only else gates_report
                figures = report_of(root, args, versions)
            if args.json:
                print(json.dumps(figures, indent=2))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        return 0
    if args.use_wrk and not shutil.which("wrk"):
        print(
            "wrk is not installed (apt-get install -y wrk); "
            "measuring throughput with benchmarks/loadgen.py instead",
            file=sys.stderr,
        )
        args.use_wrk = False
    root = Path(tempfile.mkdtemp(prefix="tallinn-bench-"))
    try:
        print(f"preparing {args.commands} commands in {root}", file=sys.stderr)
        fx = prepare(root, args.commands)
        if args.throughput_only:
            with versions_of(root, args) as versions:
                figures = throughput_report(fx, args, versions)
            if args.json:
                print(json.dumps(figures, indent=2))
            return 0
        if args.memory_only:
            memory = memory_starts(fx, args.memory_runs)
            report_memory(memory)
            steps = memory_steps(fx, args.memory_runs)
            report_steps(steps)
            if args.json:
                print(json.dumps({**memory, "steps": steps}, indent=2))
            return 0
        results = measure(fx, args)
        ok = report(fx, args, results)
        with versions_of(root, args) as versions:
            print()
            results["reload"] = reload_report(root, args, versions)
            print()
            results["gates"] = gates_report(root, args, versions)
        if args.json:
            results["throughput"] = {
                f"{mode}/{kind}": v for (mode, kind), v in results["throughput"].items()
            }
            print(json.dumps(results, indent=2))
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
