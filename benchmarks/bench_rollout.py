"""What a rollout costs the serving path, side by side in one run, and how fast a move spreads.

    uv run python benchmarks/bench_rollout.py [--seconds 10] [--rounds 1] [--moves 20]
                                              [--postgres URL]

(a) prompts/get throughput at 50 connections (wrk, else benchmarks/loadgen.py), stateless, in
    production mode, against the bare SDK server of benchmarks/bench_serve.py, for the same
    1,000-command synthetic library served four ways: the bare server; Tallinn from the folder;
    Tallinn from the store (`--from-store`, release 1 on its channel); and Tallinn from the
    store with a rollout of release 2 at 50% under way, so every request is assigned to a
    release and counted for it.
(b) propagation: a server following the store, and the time from a channel move's commit (a
    rollout started, then rolled back, `--moves` times) to the server's `/ready` showing it.
    On SQLite the server polls (`--store-poll 0.2`); with `--postgres URL` (an empty
    database) it is also measured there, where LISTEN/NOTIFY carries the move.

Every load targets 127.0.0.1 only, and is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_serve import (  # noqa: E402
    HIGH_RATE,
    PYTHON,
    Fixture,
    Server,
    bare_http,
    prepare,
    running,
    tallinn_http,
    throughput,
)


def store_release(fx: Fixture, store_url: str) -> None:
    """Release 1 (the library) on production, and release 2 (one command edited) beside it."""
    from tallinn.ops.snapshot import library_files
    from tallinn.ops.store import open_store

    files, _ = library_files(fx.library)
    files = dict(files)
    edited = dict(files)
    first = sorted(p for p in files if p.startswith("commands/"))[0]
    edited[first] = files[first] + b"\nEdited.\n"
    with open_store(store_url) as store:
        store.releases.create(files, actor="bench", version="1")
        store.releases.create(edited, actor="bench", version="2")
        store.channels.promote("1", actor="bench", reason="bench")


def start_rollout(store_url: str) -> None:
    from tallinn.ops.rollout import RolloutPlan
    from tallinn.ops.store import open_store

    with open_store(store_url) as store:
        store.rollouts.start(RolloutPlan("2", channel="production", steps=(50, 100),
                                         holds=(timedelta(days=1),)),
                             actor="bench", reason="bench")


def from_store(fx: Fixture, store_url: str, name: str, *extra: str,
               production: bool = True) -> Server:
    argv = [PYTHON, "-m", "tallinn", "serve", "--http", "--from-store", "--rate-limit",
            HIGH_RATE, "--stateless", *(["--production"] if production else []), *extra]
    env = {**os.environ, "TALLINN_STORE_URL": store_url}
    return Server(name, argv, env, fx.root / f"{name.split()[0]}.log",
                  fx.token if production else None)


def load(args: argparse.Namespace, fx: Fixture) -> list[tuple[str, dict[str, Any]]]:
    use_wrk = shutil.which("wrk") is not None
    store_release(fx, fx.store_url)
    results: list[tuple[str, dict[str, Any]]] = []

    def measure(server: Server) -> None:
        best: dict[str, Any] | None = None
        for _ in range(args.rounds):
            with running(server):
                got = throughput(server, None, args.seconds, args.warmup, args.connections,
                                 use_wrk=use_wrk)
            if best is None or got["rps"] > best["rps"]:
                best = got
        assert best is not None
        results.append((server.name, best))

    measure(bare_http(fx, stateless=True, json_response=True))
    measure(tallinn_http(fx, stateless=True))
    measure(from_store(fx, fx.store_url, "from-store (no rollout)", "--no-controller"))
    start_rollout(fx.store_url)
    measure(from_store(fx, fx.store_url, "from-store (rollout at 50%)", "--no-controller"))
    return results


def propagation(fx: Fixture, store_url: str, moves: int, label: str) -> dict[str, float]:
    """Seconds from a move's commit to the server's /ready showing it, `moves` times."""
    from tallinn.ops.rollout import RolloutPlan
    from tallinn.ops.store import open_store

    if store_url != fx.store_url:
        store_release(fx, store_url)
    server = from_store(fx, store_url, f"{label} follower", "--store-poll", "0.2",
                        "--no-controller", production=False)
    times: list[float] = []
    with running(server), open_store(store_url) as store, httpx2.Client(timeout=5) as http:
        ready = server.url.removesuffix("/mcp") + "/ready"

        def rollout_shown() -> bool:
            return "rollout" in http.get(ready).json()["release"]

        for _ in range(moves):
            for action in ("start", "rollback"):
                committed = time.perf_counter()
                if action == "start":
                    store.rollouts.start(RolloutPlan("2", channel="production", steps=(50, 100),
                                                     holds=(timedelta(days=1),)),
                                         actor="bench", reason="bench")
                else:
                    store.rollouts.roll_back("production", actor="bench", reason="bench")
                want = action == "start"
                deadline = committed + 30
                while rollout_shown() != want:
                    if time.perf_counter() > deadline:
                        raise RuntimeError(f"{label}: the move was not served within 30 s")
                    time.sleep(0.002)
                times.append(time.perf_counter() - committed)
    ordered = sorted(times)
    return {"median_ms": statistics.median(times) * 1000,
            "p95_ms": ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000,
            "max_ms": ordered[-1] * 1000, "moves": len(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--postgres", help="an empty PostgreSQL database's URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tallinn-bench-rollout-") as folder:
        fx = prepare(Path(folder), args.commands)
        print(f"# prompts/get, {args.commands} commands, {args.connections} connections, "
              f"stateless, production, {os.cpu_count()} cores")
        results = load(args, fx)
        bare = results[0][1]["rps"]
        for name, got in results:
            print(f"{name:32} {got['rps']:8.0f} req/s  {got['rps'] / bare:5.2f}x bare  "
                  f"p99 {got['p99_ms']:6.1f} ms  errors {got['errors']}")
        print("# propagation: a move's commit until /ready shows it")
        stores = [("SQLite (poll 0.2 s)", fx.store_url)]
        if args.postgres:
            stores.append(("PostgreSQL (LISTEN/NOTIFY)", args.postgres))
        for label, url in stores:
            if url == fx.store_url:
                from tallinn.ops.store import open_store

                with open_store(url) as store:
                    store.rollouts.roll_back("production", actor="bench", reason="bench")
            got = propagation(fx, url, args.moves, label.split()[0])
            print(f"{label:32} median {got['median_ms']:6.1f} ms  p95 {got['p95_ms']:6.1f} ms"
                  f"  max {got['max_ms']:6.1f} ms  ({got['moves']} moves)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
