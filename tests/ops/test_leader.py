"""One leader among the processes sharing a store: a file lock on SQLite, an advisory lock on
PostgreSQL, let go when the holder closes, and when it is killed."""

from __future__ import annotations

import logging
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from tests.serve.serve_helpers import wait_until

from tallinn.ops.leader import LEADER_SUFFIX, Leadership
from tallinn.ops.store import open_store

HOLDER = textwrap.dedent("""
    import sys
    from tallinn.ops.leader import Leadership
    leadership = Leadership(sys.argv[1])
    print("leading" if leadership.try_acquire() else "not leading", flush=True)
    sys.stdin.read()  # hold on until killed, or until the test's end of the pipe closes
""")


class Holder:
    """A real process that tries to lead on a store, says whether it does, then holds on."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", HOLDER, url],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def said(self, timeout: float = 60.0) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, f"the holder said nothing within {timeout} s"
        return self.process.stdout.readline().strip()

    def kill(self) -> float:
        """SIGKILL the holder; the moment it was sent (monotonic)."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        return sent

    def stop(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url):
        pass
    return url


# -- SQLite ---------------------------------------------------------------------------------


def test_two_leaderships_on_one_sqlite_file_never_both_lead(sqlite_url: str,
                                                             tmp_path: Path) -> None:
    """On one SQLite file one `Leadership` leads and the other does not, until the first
    closes; the lock is a file beside the database."""
    first, second = Leadership(sqlite_url), Leadership(sqlite_url)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.try_acquire()  # held: still true, and the other still cannot
        assert not second.try_acquire()
        assert (first.held, second.held) == (True, False)
        assert first.path == tmp_path / f"state.db{LEADER_SUFFIX}"
        first.close()
        assert not first.held
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.close()
        second.close()


def test_a_killed_sqlite_leader_lets_go(sqlite_url: str, holders: list[Holder]) -> None:
    """A process that leads on a SQLite file and is killed with SIGKILL frees the lead."""
    holder = Holder(sqlite_url)
    holders.append(holder)
    assert holder.said() == "leading"
    with Leadership(sqlite_url) as waiting:
        assert not waiting.try_acquire()
        holder.kill()
        assert waiting.try_acquire()


def test_a_replaced_lock_file_loses_the_lead(sqlite_url: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A leader whose lock file was deleted (another process could lock a new one) stops
    leading and says so, then leads again on the file now at the path."""
    with Leadership(sqlite_url) as leader:
        assert leader.try_acquire()
        assert leader.path is not None
        leader.path.unlink()
        with caplog.at_level(logging.WARNING, logger="tallinn.ops"):
            assert leader.try_acquire()
        assert (leader.lost, leader.acquired) == (1, 2)
        assert "was replaced or deleted" in caplog.text
        assert leader.path.exists()


def test_a_link_at_the_lock_path_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    """A symbolic link planted where the lock file goes is not followed: no lead, and a
    problem that names the path."""
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / f"state.db{LEADER_SUFFIX}").symlink_to(elsewhere)
    with Leadership(sqlite_url) as leader:
        assert not leader.try_acquire()
        assert f"state.db{LEADER_SUFFIX}" in leader.problem
    assert not elsewhere.exists()


def test_a_missing_folder_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """A SQLite store whose folder does not exist yet gives no lead and says why."""
    with Leadership(f"sqlite:///{tmp_path / 'nowhere' / 'state.db'}") as leader:
        assert not leader.try_acquire()
        assert "cannot lock" in leader.problem


def test_an_in_memory_store_leads_alone() -> None:
    """An in-memory SQLite store is private to its process, which always leads."""
    with Leadership("sqlite://") as leader:
        assert leader.alone
        assert leader.try_acquire()
        assert leader.try_acquire()
        assert leader.acquired == 1


def test_a_postgresql_that_does_not_answer_gives_no_lead() -> None:
    """With PostgreSQL unreachable, trying to lead fails at once with a problem, not an
    exception, and does not lead."""
    with Leadership("postgresql://nobody@127.0.0.1:1/none") as leader:
        assert not leader.try_acquire()
        assert "cannot try the leader lock" in leader.problem
        assert not leader.held


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_two_leaderships_on_postgresql_never_both_lead(pg_database: str) -> None:
    """On one PostgreSQL database one `Leadership` holds the advisory lock and the other does
    not, until the first releases it."""
    first, second = Leadership(pg_database), Leadership(pg_database)
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert first.try_acquire()
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.close()
        second.close()


@pytest.mark.postgres
def test_a_killed_postgresql_leader_lets_go(pg_database: str, holders: list[Holder]) -> None:
    """A process that holds the advisory lock and is killed with SIGKILL frees it: the other
    takes over (the time it took is printed, not asserted)."""
    holder = Holder(pg_database)
    holders.append(holder)
    assert holder.said() == "leading"
    with Leadership(pg_database) as waiting:
        assert not waiting.try_acquire()
        sent = holder.kill()
        wait_until(waiting.try_acquire, timeout=30, step=0.01)
        print(f"PostgreSQL takeover {time.monotonic() - sent:.3f} s after SIGKILL")


@pytest.mark.postgres
def test_a_leader_whose_connection_dies_loses_the_lead(
    pg_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    """When the leader's session is ended by the server, its next `try_acquire` notices,
    says it lost the lead, and the other process leads."""
    leader, other = Leadership(pg_database), Leadership(pg_database)
    admin = create_engine(pg_database.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        assert leader.try_acquire()
        with admin.connect() as connection:
            ended = connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'tallinn leader' AND pid <> pg_backend_pid()"
            )).scalars().all()
        assert ended == [True]
        wait_until(other.try_acquire, timeout=30, step=0.01)
        with caplog.at_level(logging.WARNING, logger="tallinn.ops"):
            assert not leader.try_acquire()
        assert leader.lost == 1
        assert "lost the leader lock" in caplog.text
        assert not leader.problem  # said once; another leading is no problem
        assert other.held
    finally:
        leader.close()
        other.close()
        admin.dispose()

