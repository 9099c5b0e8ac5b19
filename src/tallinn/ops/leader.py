"""One leader among the processes that share a store: the one that runs the rollout controller.

    leadership = Leadership(store.engine.url)
    if leadership.try_acquire():          # cheap when held: checks the hold is still good
        ...                               # lead: decide the rollouts
    leadership.close()                    # at shutdown; a killed process lets go by itself

On PostgreSQL the leader holds a session advisory lock, `pg_try_advisory_lock(LEADER_KEY)`,
on a connection of its own kept open. The server releases a session lock when the session
ends, so a leader that dies (SIGKILL included) lets go as soon as PostgreSQL sees its
connection close. Every `try_acquire()` while leading runs `SELECT 1` on that connection:
when it fails the leadership is lost (logged), the connection is dropped, and the next call
tries to take the lock again. Advisory locks are per database: replicas on another database
of the same server have their own leader.

On SQLite the leader holds an exclusive, non-blocking `flock` on a file beside the database,
`<db>.leader`: the kernel drops it when the process dies, however it dies. Each
`try_acquire()` while leading checks that the path still names the file locked (one
replaced or deleted would let another process lock a new file and lead too). An in-memory
SQLite is private to its process, which leads alone.

Nothing here blocks for long: the lock attempts never wait, and a PostgreSQL connection
gives up after `CONNECT_TIMEOUT_S` (and a dead peer after `TCP_USER_TIMEOUT_MS`). Two leaders
for a moment (a network split, before PostgreSQL notices) cannot corrupt a rollout: every
controller change is a compare-and-set on the rollout's version.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL, make_url

from tallinn.ops import sqlite_file
from tallinn.ops.changes import _conninfo as conninfo
from tallinn.ops.database import reason

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("tallinn.ops")

# The advisory lock's key: "tallinn" in ASCII, a 64-bit number no other program is likely to use.
LEADER_KEY = int.from_bytes(b"tallinn", "big")
# How long a PostgreSQL connection attempt may take, in seconds.
CONNECT_TIMEOUT_S = 3
# How long sent data may stay unacknowledged before the kernel drops the connection, in ms.
TCP_USER_TIMEOUT_MS = 5000
# How long the liveness check may run on the server, in milliseconds.
STATEMENT_TIMEOUT_MS = 3000
LEADER_SUFFIX = ".leader"


class Leadership:
    """Leadership of the processes on one store: at most one holds it at a time.

    `held` says whether this one holds it (no I/O); `problem` why it could not try, or why it
    lost it (empty when all is well); `acquired` and `lost` count, so tests count events.
    """

    def __init__(self, url: URL | str) -> None:
        self.url = make_url(url) if isinstance(url, str) else url
        self.backend = self.url.get_backend_name()
        self.path: Path | None = None
        if self.backend == "sqlite":
            database = sqlite_file.file_path(self.url)
            if database is not None:
                self.path = database.with_name(database.name + LEADER_SUFFIX)
        self.problem = ""
        self.acquired = 0
        self.lost = 0
        self._held = False
        self._fd: int | None = None
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None

    @property
    def held(self) -> bool:
        return self._held

    @property
    def alone(self) -> bool:
        """A store no other process can share (in-memory SQLite): it always leads."""
        return self.backend == "sqlite" and self.path is None

    def try_acquire(self) -> bool:
        """Lead if no one else does; True while this process leads. Never waits for a lock."""
        if self._held:
            if self._still_held():
                return True
            self._lose()
        if self.alone:
            won = True
        elif self.backend == "postgresql":
            won = self._acquire_pg()
        else:
            won = self._acquire_file()
        if won:
            self._held = True
            self.acquired += 1
            self.problem = ""
        return won

    def release(self) -> None:
        """Stop leading now, so that another process can take over at its next try."""
        if self._held and self._connection is not None:
            # Unlock before closing: the server ends a closed session after close() returns,
            # and another process trying at once would still find the lock taken.
            with contextlib.suppress(Exception):
                self._connection.execute("SELECT pg_advisory_unlock(%s)", (LEADER_KEY,))
        self._held = False
        self._drop()

    def close(self) -> None:
        self.release()

    def __enter__(self) -> Leadership:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- PostgreSQL -------------------------------------------------------------------------

    def _acquire_pg(self) -> bool:
        import psycopg

        try:
            if self._connection is None:
                self._connection = psycopg.connect(
                    conninfo(self.url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                    tcp_user_timeout=TCP_USER_TIMEOUT_MS, keepalives=1, keepalives_idle=5,
                    keepalives_interval=2, keepalives_count=2,
                    options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                    application_name="tallinn leader")
            row = self._connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (LEADER_KEY,)).fetchone()
        except psycopg.Error as exc:
            self._drop()
            self._fail(f"cannot try the leader lock on {self._where}: {reason(exc)}")
            return False
        # Not won: keep the connection for the next try (a new one each tick would cost more).
        return bool(row and row[0])

    # -- SQLite -----------------------------------------------------------------------------

    def _acquire_file(self) -> bool:
        assert self.path is not None
        try:
            if self._fd is None:
                # O_NOFOLLOW: a link planted at the path does not make us create a file elsewhere.
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                                   | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another process leads; the open file is kept for the next try
        except OSError as exc:
            self._drop()
            self._fail(f"cannot lock {self.path}: {exc.strerror or exc}")
            return False
        return True

    # -- holding ----------------------------------------------------------------------------

    def _still_held(self) -> bool:
        if self.alone:
            return True
        if self._connection is not None:
            try:
                self._connection.execute("SELECT 1").fetchone()
            except Exception as exc:  # any failure: the session, and its lock, may be gone
                self.problem = (f"lost the leader lock: the connection to {self._where} "
                                f"failed ({reason(exc)})")
                return False
            return True
        if self._fd is not None and self.path is not None:
            try:
                held, there = os.fstat(self._fd), os.stat(self.path, follow_symlinks=False)
                same = (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)
            except OSError:
                same = False
            if not same:
                self.problem = f"lost the leader lock: {self.path} was replaced or deleted"
            return same
        return False

    def _lose(self) -> None:
        log.warning("%s; no longer the leader", self.problem)
        self.lost += 1
        self.problem = ""  # said once; trying again below is the normal course
        self.release()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing ends the session: the lock goes
                self._connection.close()
            self._connection = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _fail(self, problem: str) -> None:
        if problem != self.problem:
            log.warning("%s", problem)
        self.problem = problem

    @property
    def _where(self) -> str:
        return self.url.render_as_string(hide_password=True)
