"""What `tallinn release create` costs beside the gates, on SQLite and PostgreSQL.

    uv run python benchmarks/bench_releases.py [--commands 1000] [--store URL]

Writes the synthetic library (benchmarks/synth.py), runs every gate on it as `release create`
does (the gate time), then reads its files and stores them as a release (the storage time:
reading through the library's read path, hashing, one transaction with the audit entry).
Then a second release with one command changed: only that file's blob is new. Without --store
it uses a SQLite file in a temporary folder, and $TALLINN_TEST_PG as well when set.
The storage time of the first release is held to 2 s (exit 1 above it).

Last, end to end: `tallinn gates` and `tallinn release create --force` as processes on the
same library and SQLite store; the difference is what releasing adds to gating (reading,
hashing, opening the store, one transaction, git).
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import generate
from tallinn.gates.runner import run_gates
from tallinn.gates.runner import select as gates
from tallinn.library import load_library
from tallinn.ops.schema import blobs
from tallinn.ops.snapshot import library_files
from tallinn.ops.store import open_store

STORAGE_BUDGET_S = 2.0


def store_once(root: Path, url: str, version: str) -> tuple[float, int]:
    """Read the library's files and store them as a release; the seconds it took, and the
    number of blobs in the store afterwards."""
    with open_store(url) as store:
        start = time.perf_counter()
        files, problems = library_files(root)
        assert not problems, problems
        store.releases.create(files, actor="bench", version=version, report="{}")
        took = time.perf_counter() - start
        with store.engine.connect() as connection:
            held = connection.execute(select(func.count()).select_from(blobs)).scalar_one()
    return took, int(held)


def pg_database(url: str, name: str, statement: str) -> str:
    """Create or drop database `name` on the PostgreSQL server of `url`; its URL."""
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement.format(name=name)))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def cli(root: Path, *args: str) -> float:
    """Seconds one `tallinn ARGS --library ROOT` process takes, start to exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tallinn", *args, "--library", str(root)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1000)
    parser.add_argument("--store", action="append", default=[], metavar="URL")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        root = generate(Path(scratch) / "lib", args.commands)
        urls = args.store or [f"sqlite:///{Path(scratch) / 'state.db'}"]
        scratch_pg = os.environ.get("TALLINN_TEST_PG", "") if not args.store else ""
        name = f"tallinn_bench_{secrets.token_hex(4)}"
        if scratch_pg:
            urls.append(pg_database(scratch_pg, name, 'CREATE DATABASE "{name}"'))
        library = load_library(root)
        start = time.perf_counter()
        readiness = run_gates(library, gates(None))
        gate_s = time.perf_counter() - start
        files, _ = library_files(root)
        print(f"library: {args.commands} commands, {len(files)} files, "
              f"{sum(map(len, files.values())) / 1e6:.2f} MB")
        print(f"gates: {gate_s:.2f} s ({readiness.verdict.label})")
        for url in urls:
            open_store(url).close()  # migrated before the clock starts
            first_s, first_blobs = store_once(root, url, "1")
            changed = root / "commands" / "review" / "cmd-00000.md"
            original = changed.read_bytes()
            changed.write_bytes(original + b"\nOne more line.\n")
            second_s, second_blobs = store_once(root, url, "2")
            changed.write_bytes(original)
            dialect = url.split(":", 1)[0]
            print(f"{dialect}: release 1 stored in {first_s:.2f} s ({first_blobs} blobs); "
                  f"release 2, one file changed, in {second_s:.2f} s "
                  f"(+{second_blobs - first_blobs} blob)")
            if first_s > STORAGE_BUDGET_S:
                print(f"{dialect}: storage over the budget of {STORAGE_BUDGET_S} s")
                failed = True
        if scratch_pg:
            pg_database(scratch_pg, name, 'DROP DATABASE "{name}" WITH (FORCE)')
        (root / "README.md").write_text("# A third release\n", encoding="utf-8")
        gates_s = cli(root, "gates", "--exit-zero")
        create_s = cli(root, "release", "create", "--store", urls[0],
                       "--force", "--reason", "benchmark")
        print(f"cli: tallinn gates {gates_s:.2f} s, tallinn release create {create_s:.2f} s: "
              f"releasing adds {create_s - gates_s:.2f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
