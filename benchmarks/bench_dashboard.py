"""How fast /dashboard and /dashboard/data answer over a store with a month of history.

    uv run python benchmarks/bench_dashboard.py [--days 30] [--releases 10] [--prompts 1000]
                                                [--requests 50]

The store (SQLite) holds `--releases` releases, minute-level signals for each of them over
`--days` days (one replica), a rating a minute spread over `--prompts` prompts, a thousand
error groups, and a rollout of the last release under way. A real `tallinn serve --http
--from-store` serves it; the page and the data endpoint are asked for `--requests` times each,
one at a time, over the default window (6 hours), over a day (the longest chart drawn by the
minute, from the minutes themselves), a week and the whole month (drawn by the hour, from the
hourly sums), and the median and p95 are printed. Target: under 100 ms median for the page and
the data endpoint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_serve import free_port  # noqa: E402

MINUTE = timedelta(minutes=1)


def seed(url: str, days: int, releases: int, prompts: int) -> None:
    from tallinn.ops.error_log import ErrorEvent
    from tallinn.ops.release_hours import add_ratings
    from tallinn.ops.rollout import RolloutPlan, SignalBatch
    from tallinn.ops.rollout.signals import ReleaseTotals, minute_of
    from tallinn.ops.schema import rollout_ratings
    from tallinn.ops.store import open_store

    now = minute_of(datetime.now(UTC))
    start = now - timedelta(days=days)
    with open_store(url) as store:
        ids = []
        for n in range(1, releases + 1):
            files = {f"commands/p{i:04d}.md": (f"---\ndescription: Prompt {i}.\n---\n"
                                               f"Prompt {i}, release {n}.\n").encode()
                     for i in range(prompts)}
            ids.append(store.releases.create(files, actor="bench", version=str(n)).id)
        store.channels.promote(str(releases - 1), actor="bench", reason="bench")
        store.rollouts.start(RolloutPlan(str(releases), channel="production", steps=(10, 100),
                                         holds=(timedelta(days=30),)),
                             actor="bench", reason="bench")
        seq = 0
        minutes = int((now - start) / MINUTE)
        for release in ids:
            batch = []
            for m in range(minutes):
                seq += 1
                batch.append(SignalBatch("bench", seq, release, start + m * MINUTE,
                                         ReleaseTotals(100 + m % 7, m % 3, m % 2)))
                if len(batch) == 20_000:
                    store.rollouts.record_signals(batch)
                    batch = []
            store.rollouts.record_signals(batch)
        rows = [{"release_id": ids[m % len(ids)], "prompt": f"p{m % prompts:04d}",
                 "rating": 1 + m % 5, "comment": "fine" if m % 50 == 0 else None,
                 "client": "bench", "at": start + m * MINUTE} for m in range(minutes)]
        with store.database.transaction("seed ratings") as connection:
            for i in range(0, len(rows), 20_000):
                connection.execute(rollout_ratings.insert(), rows[i:i + 20_000])
            add_ratings(connection, [(r["release_id"], r["at"], r["rating"]) for r in rows])
        store.errors.record([ErrorEvent.capture(
            f"failure kind {g}", at=now, where=f"p{g % prompts:04d}", release=ids[-1],
            error_class=f"Error{g}") for g in range(1000)])


def timed(client: httpx2.Client, url: str, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
    ordered = sorted(times)
    return statistics.median(times) * 1000, ordered[max(0, round(0.95 * n) - 1)] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--releases", type=int, default=10)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tallinn-bench-dashboard-") as folder:
        url = f"sqlite:///{Path(folder) / 'state.db'}"
        began = time.perf_counter()
        seed(url, args.days, args.releases, args.prompts)
        print(f"# seeded {args.days} days x {args.releases} releases of minute signals, "
              f"{args.prompts} prompts, in {time.perf_counter() - began:.0f} s")
        port = free_port()
        log = Path(folder) / "server.log"
        with log.open("w") as out:
            server = subprocess.Popen(
                [sys.executable, "-m", "tallinn", "serve", "--http", "--from-store",
                 "--port", str(port), "--no-controller"],
                env={**os.environ, "TALLINN_STORE_URL": url}, stdout=out, stderr=out)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx2.Client(timeout=30) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if client.get(f"{base}/health").status_code == 200:
                            break
                    except httpx2.HTTPError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit(f"the server did not start: {log.read_text()}")
                    time.sleep(0.1)
                for label, path in (("page, 6 h", "/dashboard/"),
                                    ("data, 6 h", "/dashboard/data"),
                                    ("data, 24 h", "/dashboard/data?hours=24"),
                                    ("data, 7 d", "/dashboard/data?hours=168"),
                                    ("page, 30 d", f"/dashboard/?hours={24 * args.days}"),
                                    ("data, 30 d", f"/dashboard/data?hours={24 * args.days}")):
                    timed(client, base + path, 3)  # warm up
                    median, p95 = timed(client, base + path, args.requests)
                    print(f"{label:12} median {median:7.1f} ms  p95 {p95:7.1f} ms")
        finally:
            server.terminate()
            server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
