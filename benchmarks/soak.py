"""Soak: many clients for a minute against one production server, with an attacker beside them.

    uv run python benchmarks/soak.py                      # 500 clients, 60 s, 1 request/s each
    uv run python benchmarks/soak.py --clients 100 --seconds 20

Starts `tallinn serve --http --production` on a free loopback port (the bundled starter
library, a throw-away SQLite store), gives each client a token and a stateful session of its
own, and lets every client send `--rate` requests a second (prompts/list, prompts/get,
tools/call, resources/list, ping) at fixed times, whether or not earlier ones were answered.
The clients run in `--workers` processes of their own, niced, so the server under test gets the
CPU first; on a machine that cannot serve `clients x rate` requests a second, the latency grows
and the server sheds load with 503s, which count as errors.
Beside them an attacker keeps `--hostile` connections half-open or slow (no bytes, headers a
byte at a time, a body that never ends), reopening each one the server cuts, while a probe asks
`/health` twice a second.

It prints requests, errors (anything but a 200 with a JSON-RPC result), latency p50/p99, the
server's RSS at start (after warm-up: every session open), middle and end, and the `/health`
latency under attack (p50, p99, max) against its 100 ms target; it exits 1 if any request
failed, `/health` went unanswered or took longer than 100 ms, or the RSS grew by more than
`--max-growth` MiB from the middle of the run to its end. Loopback only; the run ends after
`--seconds` (plus a few seconds to start and stop).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadgen import PROTOCOL, initialize_body

HEALTH_TARGET_MS = 100.0
CALLS: list[dict[str, Any]] = [
    {"method": "prompts/list", "params": {}},
    {"method": "prompts/get", "params": {"name": "code-review", "arguments": {"path": "a.py"}}},
    {"method": "tools/call", "params": {"name": "search_prompts", "arguments": {"query": "test"}}},
    {"method": "resources/list", "params": {}},
    {"method": "ping"},
]


# The /health probe, run with `python -c PROBE PORT SECONDS`: JSON on stdout.
PROBE = """
import http.client, json, sys, time
port, stop_at = int(sys.argv[1]), float(sys.argv[2])
answered, failed = [], 0
while time.time() < stop_at:
    started = time.monotonic()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/health")
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status == 200:
            answered.append((time.monotonic() - started) * 1000)
        else:
            failed += 1
    except OSError:
        failed += 1
    time.sleep(0.5)
print(json.dumps({"answered_ms": answered, "failed": failed}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Soak:
    def __init__(self, args: argparse.Namespace, folder: Path, port: int = 0) -> None:
        self.args = args
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.store_url = f"sqlite:///{folder / 'state.db'}"
        self.log = folder / "server.log"
        self.latencies: list[float] = []
        self.errors: dict[str, int] = {}
        self.health: list[float] = []
        self.health_failures = 0
        self.cut = 0
        self.rss: dict[str, float] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.stop_at = 0.0
        self.opening = asyncio.Semaphore(10)
        self.tls: ssl.SSLContext | bool = True
        self.cpu_share = 0.0
        self.load = 0.0

    def tokens(self, count: int) -> list[str]:
        from tallinn.ops.store import open_store

        with open_store(self.store_url) as store:
            return [store.create_token(f"soak-{n}") for n in range(count)]

    def start(self) -> None:
        env = {**os.environ, "TALLINN_STORE_URL": self.store_url}
        argv = [sys.executable, "-m", "tallinn", "serve", "--http", "--production"]
        argv += ["--port", str(self.port), "--no-reload"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited; see {self.log}")
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{self.base}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise SystemExit("the server did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def rss_mb(self) -> float:
        assert self.process is not None
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def client(self, token: str, index: int) -> None:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {token}",
        }
        limits = httpx2.Limits(max_connections=2, max_keepalive_connections=1)
        timeout = httpx2.Timeout(self.args.timeout)
        async with httpx2.AsyncClient(
            headers=headers, timeout=timeout, limits=limits, verify=self.tls
        ) as http:
            init = initialize_body(f"soak-{index}")
            # Sessions open a few at a time, before the measured minute begins.
            try:
                async with self.opening:
                    opened = await http.post(f"{self.base}/mcp", json=init)
                    if opened.status_code != 200:
                        self.error(f"initialize HTTP {opened.status_code}")
                        return
                    http.headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
                    http.headers["MCP-Protocol-Version"] = PROTOCOL
                    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
                    await http.post(f"{self.base}/mcp", json=initialized)
            except httpx2.HTTPError as exc:
                self.error(f"initialize {type(exc).__name__}")
                return
            period = 1.0 / self.args.rate
            begin = max(0.0, self.stop_at - self.args.seconds - time.time())
            due = time.monotonic() + begin + random.random() * period
            ids = itertools.count(1)
            async with asyncio.TaskGroup() as tasks:
                while time.time() + (due - time.monotonic()) < self.stop_at:
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    tasks.create_task(self.request(http, next(ids), due))
                    due += period

    async def request(self, http: httpx2.AsyncClient, rid: int, due: float) -> None:
        call = CALLS[rid % len(CALLS)]
        body = {"jsonrpc": "2.0", "id": rid, **call}
        try:
            response = await http.post(f"{self.base}/mcp", json=body)
        except httpx2.HTTPError as exc:
            self.error(type(exc).__name__)
            return
        latency = (time.monotonic() - due) * 1000
        if response.status_code != 200:
            body = response.json() if response.content.startswith(b"{") else {}
            said = body.get("message") or body.get("error", {}).get("message", "")
            self.error(f"HTTP {response.status_code} {said}".strip())
            return
        answer = json.loads(response.content)
        if "result" not in answer:
            self.error(f"JSON-RPC {answer.get('error', {}).get('code')}")
            return
        self.latencies.append(latency)

    async def hostile(self, kind: int) -> None:
        """Keep one half-open or slow connection open, reopening it whenever it is cut."""
        heads = [
            b"",
            b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000\r\n\r\n{",
        ]
        while time.time() < self.stop_at:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            try:
                writer.write(heads[kind])
                while time.time() < self.stop_at:
                    if kind:
                        writer.write(b"a")  # a byte every second, a classic slowloris
                        await writer.drain()
                    with contextlib.suppress(TimeoutError):
                        if not await asyncio.wait_for(reader.read(65536), timeout=1.0):
                            break  # cut by the server
                self.cut += time.time() < self.stop_at
            except (ConnectionError, OSError):
                self.cut += time.time() < self.stop_at
            finally:
                writer.close()

    async def clients(self, tokens: list[str], first: int) -> dict[str, Any]:
        """A worker's share of the clients; what they saw, for the parent to add up."""
        self.opening = asyncio.Semaphore(10)
        # One TLS context for all (the URL is plain http, but each client would build its own).
        self.tls = ssl.create_default_context()
        async with asyncio.TaskGroup() as tasks:
            for n, token in enumerate(tokens):
                tasks.create_task(self.client(token, first + n))
        return {"latencies": self.latencies, "errors": self.errors}

    async def hostiles(self, count: int) -> dict[str, Any]:
        async with asyncio.TaskGroup() as tasks:
            for n in range(count):
                tasks.create_task(self.hostile(n % 3))
        return {"cut": self.cut}

    def worker(self, *extra: str) -> subprocess.Popen[bytes]:
        a = self.args
        argv = [sys.executable, __file__, "--port", str(self.port), "--stop-at", str(self.stop_at)]
        argv += ["--rate", str(a.rate), "--timeout", str(a.timeout), "--seconds", str(a.seconds)]
        argv += extra
        return subprocess.Popen(argv, stdout=subprocess.PIPE)

    def run(self, tokens: list[str]) -> None:
        """Spread the clients over worker processes (one Python process cannot drive 500
        clients at 1 request/s each without falling behind), then add up what they saw."""
        a = self.args
        # Time for the workers to start and open their sessions before the measured window.
        self.stop_at = time.time() + 15 + a.seconds
        folder = self.log.parent
        workers = []
        share = -(-len(tokens) // a.workers)
        for w in range(a.workers):
            part = tokens[w * share : (w + 1) * share]
            if not part:
                continue
            file = folder / f"tokens-{w}.json"
            file.write_text(json.dumps(part), encoding="utf-8")
            workers.append(self.worker("--tokens", str(file), "--first", str(w * share)))
        hostile = self.worker("--hostile", str(a.hostile), "--hostile-worker")
        probe = subprocess.Popen(
            [sys.executable, "-c", PROBE, str(self.port), str(self.stop_at)],
            stdout=subprocess.PIPE,
        )
        time.sleep(max(0.0, self.stop_at - a.seconds - time.time()))
        self.rss["start"] = self.rss_mb()
        assert self.process is not None
        server = psutil.Process(self.process.pid)
        cpu_start = sum(server.cpu_times()[:2])
        time.sleep(max(0.0, self.stop_at - a.seconds / 2 - time.time()))
        self.rss["middle"] = self.rss_mb()
        for process in workers:
            out, _ = process.communicate(timeout=a.seconds + a.timeout + 120)
            result = json.loads(out)
            self.latencies += result["latencies"]
            for kind, count in result["errors"].items():
                self.errors[kind] = self.errors.get(kind, 0) + count
        self.rss["end"] = self.rss_mb()
        # How much CPU the server had, and how busy the machine was: on a shared machine a
        # server that gets a fraction of a core cannot keep up, whatever its code does.
        self.cpu_share = (sum(server.cpu_times()[:2]) - cpu_start) / a.seconds
        self.load = os.getloadavg()[0]
        self.cut = json.loads(hostile.communicate(timeout=120)[0])["cut"]
        probed = json.loads(probe.communicate(timeout=120)[0])
        self.health, self.health_failures = probed["answered_ms"], probed["failed"]

    def report(self) -> bool:
        a = self.args
        done = len(self.latencies)
        failed = sum(self.errors.values())
        rss = self.rss
        print(f"soak: {a.clients} clients x {a.rate:g} req/s for {a.seconds:g} s, one production "
              f"server, {a.hostile} hostile connections beside them")
        print(f"  requests     {done + failed:,} ({(done + failed) / a.seconds:,.0f}/s), "
              f"errors {failed}" + (f" {self.errors}" if failed else ""))
        print(f"  latency      p50 {percentile(self.latencies, 0.5):.1f} ms, "
              f"p99 {percentile(self.latencies, 0.99):.1f} ms (from when each request was due)")
        growth = rss["end"] - rss["middle"]
        flat = growth <= a.max_growth
        print(f"  server RSS   start {rss['start']:.1f} MiB, middle {rss['middle']:.1f} MiB, "
              f"end {rss['end']:.1f} MiB ({growth:+.1f} MiB in the second half, limit "
              f"{a.max_growth:g}: {'flat' if flat else 'growing'})")
        worst = max(self.health) if self.health else float("nan")
        within = worst <= HEALTH_TARGET_MS
        print(f"  /health      {len(self.health)} answered, {self.health_failures} not; "
              f"p50 {percentile(self.health, 0.5):.1f} ms, p99 {percentile(self.health, 0.99):.1f}"
              f" ms, max {worst:.1f} ms (target {HEALTH_TARGET_MS:.0f} ms: "
              f"{'met' if within else 'missed'})")
        print(f"  hostile      {self.cut} connections cut by the server and reopened "
              "(counted from the workers' start)")
        print(f"  machine      server used {self.cpu_share:.0%} of a core; load average "
              f"{self.load:.1f} on {os.cpu_count()} cores")
        answered = self.health_failures == 0 and bool(self.health)
        return failed == 0 and answered and within and flat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1.0, help="requests a second per client")
    parser.add_argument("--hostile", type=int, default=150, help="half-open/slow connections")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--workers", type=int, default=4, help="load generator processes")
    parser.add_argument("--max-growth", type=float, default=5.0,
                        help="MiB the server's RSS may grow from the middle of the run to its end")
    # What the parent gives its worker processes.
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stop-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--hostile-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 < args.clients <= 2000 or not 0 < args.rate <= 50:
        parser.error("keep --seconds <= 600, --clients <= 2000, --rate <= 50")
    if args.port is not None:  # a worker, niced: the server under test gets the CPU first
        os.nice(10)
        soak = Soak(args, Path(tempfile.gettempdir()), port=args.port)
        soak.stop_at = args.stop_at
        if args.hostile_worker:
            result = asyncio.run(soak.hostiles(args.hostile))
        else:
            tokens = json.loads(args.tokens.read_text(encoding="utf-8"))
            result = asyncio.run(soak.clients(tokens, args.first))
        print(json.dumps(result))
        return 0
    with tempfile.TemporaryDirectory(prefix="tallinn-soak-") as tmp:
        soak = Soak(args, Path(tmp))
        tokens = soak.tokens(args.clients)
        soak.start()
        try:
            soak.run(tokens)
        finally:
            soak.stop()
        ok = soak.report()
        if not ok:
            problems = [line for line in soak.log.read_text().splitlines() if '"info"' not in line]
            print("server log (not info):", *problems[-20:], sep="\n  ")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
