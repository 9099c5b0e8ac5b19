"""What a flush of errors costs the store, and what redaction costs a request.

    uv run python benchmarks/bench_error_log.py [--store URL] [--events 5000] [--shapes 20]

Without --store it uses a SQLite file in a temporary folder ($TALLINN_TEST_PG is used as well
when set). Prints, per store: the time to record one batch of EVENTS errors spread over SHAPES
groups and two releases (what a replica flushes every few seconds), the statements it ran
and the rows it left (at most 20 samples per group), a `groups(samples=True)` listing, and
the cost of `ErrorEvent.capture` (the redaction a server pays per failed request).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from tallinn.ops.error_log import ErrorEvent
from tallinn.ops.schema import error_samples
from tallinn.ops.store import open_store

RELEASES = ("a" * 64, "b" * 64)


def batch(events: int, shapes: int, now: datetime) -> list[ErrorEvent]:
    return [ErrorEvent(now, RELEASES[i % 2], f"prompt-{i % shapes}", "RenderError",
                       f"missing argument 'focus' at line {i} of commands/p{i % shapes}.md",
                       client=f"client-{i % 7}", replica="bench-1") for i in range(events)]


def bench(url: str, events: int, shapes: int) -> None:
    with open_store(url) as store:
        now = datetime.now(UTC)
        flushes = []
        for _ in range(5):
            pending = batch(events, shapes, now)
            before = store.errors.statements
            start = time.perf_counter()
            store.errors.record(pending)
            flushes.append(time.perf_counter() - start)
            statements = store.errors.statements - before
        start = time.perf_counter()
        listed = store.errors.groups(samples=True)
        listing = time.perf_counter() - start
        with store.engine.connect() as connection:
            samples = connection.execute(select(func.count()).select_from(error_samples)).scalar()
        print(f"{store.url}")
        print(f"  record {events:,} events in {shapes} groups  "
              f"{statistics.median(flushes) * 1e3:8.1f} ms a batch (median of 5), "
              f"{statements} statements")
        print(f"  stored                              {len(listed)} groups, "
              f"{listed[0].count:,} events in the first, {samples} samples")
        print(f"  list groups with samples            {listing * 1e3:8.1f} ms")
        store.errors.prune(datetime.now(UTC))
    error = KeyError("argument 'path' = 'src/app.py' has token=tln_0123456789abcdef_secret00")
    arguments = ("src/app.py", "security")
    repeat, start = 20_000, time.perf_counter()
    for _ in range(repeat):
        ErrorEvent.capture(error, at=now, where="code-review", arguments=arguments)
    capture = (time.perf_counter() - start) / repeat
    print(f"  ErrorEvent.capture (redaction)      {capture * 1e6:8.1f} µs a failed request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="store URL (default: a temporary SQLite file)")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--shapes", type=int, default=20)
    args = parser.parse_args()
    urls = [args.store] if args.store else []
    with tempfile.TemporaryDirectory() as folder:
        if not urls:
            urls.append(f"sqlite:///{Path(folder) / 'state.db'}")
            if os.environ.get("TALLINN_TEST_PG"):
                urls.append(os.environ["TALLINN_TEST_PG"])
        for url in urls:
            bench(url, args.events, args.shapes)


if __name__ == "__main__":
    main()
