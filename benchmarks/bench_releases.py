"""What `tallinn release create` costs, split into the gates' time and the store's time.

    uv run python benchmarks/bench_releases.py [--commands 1000] [--store URL]

Writes the synthetic library (benchmarks/synth.py) and makes a release of it the way `tallinn
release create` does, each step timed in one process: loading the library; the gates (all five,
as `release create` runs them); and the store part, which is everything releasing adds to
gating: reading the library's files through the read path, the git state, opening the store,
checking that the content and the version are new, the readiness report as JSON, and the one
transaction that writes the blobs, the file rows, the release row and its audit entry. Then a
second release with one command changed, again through every step: only that file's blob is
new. Without --store it uses a SQLite file in a temporary folder, and $TALLINN_TEST_PG as well
when set. The store part of the first release is held to 2 s (exit 1 above it).

Last, end to end: `tallinn release create` as a process on the same library and SQLite store,
with the gate time it reports itself; the rest is the process's start, the load and the store.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synth import generate
from tallinn.gates.report import Format, render
from tallinn.gates.runner import check_settings, run_gates
from tallinn.gates.runner import select as gates
from tallinn.library import load_library
from tallinn.ops.schema import blobs
from tallinn.ops.snapshot import git_state, library_files
from tallinn.ops.store import open_store

STORAGE_BUDGET_S = 2.0


@dataclass(frozen=True, slots=True)
class Split:
    """Seconds each step of one release took, and the blobs in the store afterwards."""

    load: float
    gates: float
    read: float
    git: float
    open: float
    check: float
    report: float
    write: float
    blobs: int

    @property
    def store(self) -> float:
        """What releasing adds to gating: every step but the load and the gates."""
        return self.read + self.git + self.open + self.check + self.report + self.write

    def __str__(self) -> str:
        return (f"gates {self.gates:.2f} s, store {self.store:.2f} s (read {self.read:.2f}, "
                f"git {self.git:.2f}, open {self.open:.2f}, check {self.check:.2f}, "
                f"report {self.report:.2f}, write {self.write:.2f}); load {self.load:.2f} s; "
                f"{self.blobs} blobs held")


def release_create(root: Path, url: str, version: str) -> Split:
    """Release the library at `root` into the store at `url` as `tallinn release create
    --force` does (in its order), timing each step."""
    clock = time.perf_counter
    t0 = clock()
    library = load_library(root)
    t1 = clock()
    files, problems = library_files(root, library.config.limits)
    assert not problems, problems
    t2 = clock()
    git = git_state(root)
    t3 = clock()
    with open_store(url) as store:
        t4 = clock()
        store.releases.check_new(files, version)
        t5 = clock()
        names = gates(None)
        check_settings(library, names)
        readiness = run_gates(library, names)
        t6 = clock()
        report = render(readiness, Format.JSON)
        t7 = clock()
        store.releases.create(files, actor="bench", version=version, notes="benchmark",
                              git_commit=git.commit, git_dirty=git.dirty, report=report,
                              force_reason=None if readiness.verdict.go else "benchmark")
        t8 = clock()
        with store.engine.connect() as connection:
            held = connection.execute(select(func.count()).select_from(blobs)).scalar_one()
    return Split(load=t1 - t0, gates=t6 - t5, read=t2 - t1, git=t3 - t2, open=t4 - t3,
                 check=t5 - t4, report=t7 - t6, write=t8 - t7, blobs=int(held))


def pg_database(url: str, name: str, statement: str) -> str:
    """Create or drop database `name` on the PostgreSQL server of `url`; its URL."""
    admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(statement.format(name=name)))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def cli_release(root: Path, url: str) -> tuple[float, float | None]:
    """Seconds one `tallinn release create` process takes, start to exit, and the gate time it
    reports on stderr (`gates 2.1 s`)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tallinn", "release", "create", "--library",
                           str(root), "--store", url, "--force", "--reason", "benchmark"],
                          check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    found = re.search(r"gates (\d+(?:\.\d+)?) s\s*$", done.stderr)
    return took, float(found[1]) if found else None


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
        files, _ = library_files(root)
        print(f"library: {args.commands} commands, {len(files)} files, "
              f"{sum(map(len, files.values())) / 1e6:.2f} MB")
        changed = root / "commands" / "review" / "cmd-00000.md"
        original = changed.read_bytes()
        for url in urls:
            open_store(url).close()  # migrated before the clock starts
            dialect = url.split(":", 1)[0].split("+", 1)[0]
            first = release_create(root, url, "1")
            changed.write_bytes(original + b"\nOne more line.\n")
            second = release_create(root, url, "2")
            changed.write_bytes(original)
            print(f"{dialect}: release create 1: {first}")
            print(f"{dialect}: release create 2, one file changed: {second} "
                  f"(+{second.blobs - first.blobs} blob)")
            if first.store > STORAGE_BUDGET_S:
                print(f"{dialect}: the store part is over the budget of {STORAGE_BUDGET_S} s")
                failed = True
        if scratch_pg:
            pg_database(scratch_pg, name, 'DROP DATABASE "{name}" WITH (FORCE)')
        (root / "README.md").write_text("# A third release\n", encoding="utf-8")
        total, gated = cli_release(root, urls[0])
        shown = f"{gated:.1f} s" if gated is not None else "not reported"
        print(f"cli: tallinn release create {total:.2f} s start to exit, of which the gates "
              f"{shown} (its own figure)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
