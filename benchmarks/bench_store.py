"""What the state store's fault handling and the 1-second token cache cost, and how long a
revocation made by another store takes to be refused.

    uv run python benchmarks/bench_store.py [--store URL] [--repeat 2000]

Without --store it uses a SQLite file in a temporary folder ($TALLINN_TEST_PG is used as well
when set). Prints, per store: a token verified from the cache, one verified by the database
(what each token costs once a second per replica now that the cache lasts 1 s), the SQLite file
check (device and inode, once a second), and the delay until a token revoked through another
store is refused (bounded by CACHE_TTL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tallinn.ops import sqlite_file
from tallinn.ops.store import CACHE_TTL, Store, open_store


def per_call_us(work: object, repeat: int) -> float:
    assert callable(work)
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def bench(url: str, repeat: int) -> None:
    with open_store(url) as store:
        token = store.create_token(f"bench-{os.getpid()}")
        store.verify_token(token)
        cached = per_call_us(lambda: store.verify_token(token), repeat)
        uncached_store = Store(store.engine, cache_ttl=timedelta(0))
        uncached = per_call_us(lambda: uncached_store.verify_token(token), repeat)
        print(f"{store.url}")
        print(f"  verify, from the cache        {cached:8.1f} µs")
        print(f"  verify, by the database       {uncached:8.1f} µs")
        path = sqlite_file.file_path(store.engine.url)
        if path is not None:
            check = per_call_us(lambda: sqlite_file.identity(path), repeat)
            print(f"  file check (stat)             {check:8.1f} µs, once a second")
        with open_store(url) as other:
            assert store.verify_token(token) is not None
            other.revoke_token(f"bench-{os.getpid()}")
            start = time.perf_counter()
            while store.verify_token(token) is not None:
                time.sleep(0.01)
            delay = time.perf_counter() - start
        print(f"  revoked elsewhere, refused in {delay:8.2f} s (CACHE_TTL {CACHE_TTL})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    urls = list(args.store)
    with tempfile.TemporaryDirectory() as tmp:
        if not urls:
            urls.append(f"sqlite:///{Path(tmp) / 'state.db'}")
            if os.environ.get("TALLINN_TEST_PG"):
                urls.append(os.environ["TALLINN_TEST_PG"])
        for url in urls:
            bench(url, args.repeat)


if __name__ == "__main__":
    main()
