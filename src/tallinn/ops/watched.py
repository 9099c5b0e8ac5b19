"""A store that outlives faults: opened at its first use, tried again, its SQLite file watched.

The store's `Database` (SQLAlchemy) and the driver-only token checks (`tallinn.ops.verifier`)
both keep their database this way; a subclass says how to connect (`_connect`), how to let go
of its connections (`_disconnect`), how to ask `SELECT 1` (`_answer`) and, if it likes, how to
read a driver's error (`_reason`).

A store that is not open is opened at its first use, at most once every `RETRY_INTERVAL`
(failing fast in between), so a database down at start-up is used as soon as it answers. A
SQLite file is checked every `FILE_CHECK_INTERVAL` against the file at its path (device and
inode): one replaced is reopened (and migrated), one deleted makes the store unavailable,
with the code `store_missing`, until a file is back at the path.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from tallinn.ops import sqlite_file
from tallinn.ops.errors import StoreError
from tallinn.ops.records import StoreHealth

log = logging.getLogger("tallinn.ops")

# How often a SQLite store compares its open file with the file at its path, in seconds.
FILE_CHECK_INTERVAL = 1.0
# How often a store that is not open tries again, in seconds; in between it fails at once.
RETRY_INTERVAL = 1.0


class WatchedStore:
    """Opening, retries and the SQLite file check of a store at `path` (None: not SQLite)."""

    def __init__(self, path: Path | None, *, is_open: bool) -> None:
        self._path = path
        self._closed = False
        # Set while the store is open; for SQLite, also the file it opened.
        self._open = is_open
        self._identity = sqlite_file.identity(path) if path and is_open else None
        self._opened_once = is_open
        self._problem: StoreError | None = None
        self._next_file_check = 0.0
        self._next_retry = 0.0
        self._lock = threading.Lock()

    # -- what a subclass provides -----------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        raise NotImplementedError

    def _connect(self) -> None:
        """Connect and bring the schema to head; `StoreError` (see `failure`) if it cannot."""
        raise NotImplementedError

    def _disconnect(self) -> None:
        """Let go of every connection, and of what was known through them."""
        raise NotImplementedError

    def _answer(self) -> None:
        """Ask the open database `SELECT 1`; raise if it does not answer."""
        raise NotImplementedError

    def _reason(self, exc: BaseException) -> str:
        """The first line of `exc`'s message."""
        message = str(exc).strip()
        return message.splitlines()[0] if message else type(exc).__name__

    # -- health -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def ping(self) -> bool:
        """True when the database answers `SELECT 1`; never raises."""
        return self.health().ok

    def health(self) -> StoreHealth:
        """Whether the store answers now, and if not, why: `StoreHealth(False, "store_full", ...)`.

        Checks the SQLite file at once (not waiting for `FILE_CHECK_INTERVAL`) and tries to
        open a store that is not open (at most once every `RETRY_INTERVAL`); never raises.
        """
        if self._closed:
            return StoreHealth(False, "store_closed", "the store is closed")
        try:
            self._ensure_open(force_check=True)
            self._answer()
        except StoreError as exc:
            return StoreHealth(False, exc.code, str(exc))
        except Exception as exc:  # any failure means "not ready", whatever raised it
            return StoreHealth(False, "store_unavailable", str(self.failure(exc, "answer")))
        return StoreHealth(True, None, "")

    # -- opening ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the store now: prepare the SQLite folder, bring the schema up to date.

        Raises `StoreError` with a code (see `StoreError`) when it cannot.
        """
        with self._lock:
            try:
                self._open_locked()
            except StoreError as exc:
                self._problem = exc  # the caller reports it; retries do not again
                self._next_retry = time.monotonic() + RETRY_INTERVAL
                raise

    def _open_locked(self) -> None:
        if self._path is not None:
            sqlite_file.prepare(self._path, self.url, create=not self._opened_once)
        self._connect()
        if self._path is not None:
            self._identity = sqlite_file.identity(self._path)
        if self._opened_once or self._problem is not None:
            log.warning("state store %s answers; opened it again", self.url)
        self._open, self._opened_once, self._problem = True, True, None

    def _ensure_open(self, *, force_check: bool = False) -> None:
        """Reopen a store that is not open, or whose SQLite file was replaced or deleted."""
        now = time.monotonic()
        if self._open and self._path is not None and (force_check or now >= self._next_file_check):
            self._next_file_check = now + FILE_CHECK_INTERVAL
            self._check_file()
        if self._open:
            return
        if self._problem is not None and now < self._next_retry:
            raise self._again()
        # One thread tries at a time; the others do not queue up behind a connection attempt
        # that may take `PG_CONNECT_TIMEOUT_S`.
        if not self._lock.acquire(timeout=RETRY_INTERVAL):
            raise self._again()
        try:
            if self._open:
                return
            self._next_retry = time.monotonic() + RETRY_INTERVAL
            try:
                self._open_locked()
            except StoreError as exc:
                if self._problem is not None and self._problem.code == exc.code:
                    raise self._again() from None  # the first message, logged once
                log.error("%s", exc)
                self._problem = exc
                raise
        finally:
            self._lock.release()

    def _again(self) -> StoreError:
        """The current problem as a new exception (one raised again and again would keep
        growing its traceback, and threads would share it)."""
        problem = self._problem
        if problem is None:
            return StoreError(f"state store {self.url}: another thread is opening it")
        return StoreError(str(problem), problem.code)

    def _check_file(self) -> None:
        """Given the SQLite file opened earlier, notice when the path holds another or none."""
        assert self._path is not None
        now_there = sqlite_file.identity(self._path)
        if now_there == self._identity:
            return
        with self._lock:
            if not self._open or now_there == self._identity:
                return
            # Open connections still hold the old file; every write to it would be lost.
            self._open = False
            self._disconnect()
            if now_there is None:
                self._problem = StoreError(
                    f"state store {self.url}: the file {self._path} was deleted while in use; "
                    "tokens cannot be checked until a store is back at that path (restore it, "
                    "or run 'tallinn db upgrade' for an empty one)",
                    "store_missing",
                )
                self._next_retry = time.monotonic() + RETRY_INTERVAL
                log.error("%s", self._problem)
            else:
                log.warning(
                    "state store %s: the file %s was replaced by another; reopening it",
                    self.url,
                    self._path,
                )

    def failure(self, exc: BaseException, action: str) -> StoreError:
        """`exc` as one line naming the store: `state store sqlite:///x.db: cannot ...: why`.

        A SQLite file's error is diagnosed (folder, permissions, free room) into a clearer one.
        """
        code, message = "store_unavailable", self._reason(exc)
        if isinstance(exc, StoreError):
            code = exc.code
        elif self._path is not None:
            code, message = sqlite_file.diagnose(self._path, message)
        return StoreError(f"state store {self.url}: cannot {action}: {message}", code)

    def _closed_error(self, action: str) -> StoreError:
        return StoreError(f"state store {self.url}: cannot {action}: it is closed",
                          "store_closed")
