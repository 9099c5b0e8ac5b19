"""A release writer killed with SIGKILL at any step leaves the whole release or none of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import func, select

from tallinn.ops.schema import audit_log, blobs, release_files, releases
from tallinn.ops.store import open_store

# Enough files for several batches of blobs and of file rows (`BATCH` is 500).
FILES = 1_200
STEPS = ["locked", "blobs 0", "blobs 500", "blobs 1000", "release", "files 0", "files 500",
         "files 1000", "audit", "committed"]
WRITER = textwrap.dedent("""
    import sys, time
    from tallinn.ops.store import open_store

    url, stop, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    files = {f"commands/c{i:04d}.md": f"command {i}".encode() for i in range(count)}
    store = open_store(url)

    def step(name):
        print(name, flush=True)
        if name == stop:
            time.sleep(120)  # killed here by the test

    store.releases.create(files, actor="writer", on_step=step)
""")


def rows(url: str) -> dict[str, int]:
    with open_store(url) as store, store.engine.connect() as connection:
        return {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (blobs, releases, release_files, audit_log)}


def kill_at(url: str, stop: str) -> list[str]:
    """Run the writer until it reports `stop`, SIGKILL it, return the steps it reported."""
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, url, stop, str(FILES)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    ) as child:
        seen: list[str] = []
        assert child.stdout is not None
        for line in child.stdout:  # bounded: the writer sleeps at `stop`, or ends
            seen.append(line.strip())
            if seen[-1] == stop:
                os.kill(child.pid, signal.SIGKILL)
                break
        child.kill()
        _, errors = child.communicate(timeout=30)
    assert seen, errors
    assert seen[-1] == stop, (seen, errors)
    assert child.returncode == -signal.SIGKILL
    return seen


@pytest.mark.parametrize("stop", STEPS)
def test_a_killed_writer_leaves_all_or_nothing(store_url: str, stop: str) -> None:
    """Killed at `stop`: no row of the release is left (or, once committed, every row), and
    the next release is made as if nothing had happened."""
    open_store(store_url).close()  # migrated first, so the writer's steps are the release's
    kill_at(store_url, stop)
    left = rows(store_url)
    if stop == "committed":
        assert left == {"blobs": FILES, "releases": 1, "release_files": FILES, "audit_log": 1}
    else:
        assert left == {"blobs": 0, "releases": 0, "release_files": 0, "audit_log": 0}
    with open_store(store_url) as store:
        again = store.releases.create({"tallinn.toml": b"after the kill"}, actor="next")
        assert store.releases.files(again.id) == {"tallinn.toml": b"after the kill"}
        assert store.audit_log.verify().ok
        if stop == "committed":
            [old] = [r for r in store.releases.all() if r.id != again.id]
            assert len(store.releases.files(old.id)) == FILES
