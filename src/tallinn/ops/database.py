"""The database every part of the store shares: one engine, opened lazily, watched for faults.

    database = Database(make_engine(resolve_url(None)), is_open=False)
    with database.transaction("list tokens") as connection:
        rows = connection.execute(...).all()

A server's store outlives faults. A database that is not open is opened at its first use (at
most once every `RETRY_INTERVAL`, failing fast in between), so a database down at start-up is
used as soon as it answers. A SQLite file is checked every `FILE_CHECK_INTERVAL` against the
file at its path (device and inode): one replaced is reopened (and migrated), one deleted makes
the store unavailable, with the code `store_missing`, until a file is back at the path.

Database failures raise `StoreError` with a code (see `StoreError`); `ping()` and `health()`
never raise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tallinn.ops import migrate, sqlite_file
from tallinn.ops.engine import safe_url
from tallinn.ops.errors import StoreError
from tallinn.ops.records import StoreHealth

log = logging.getLogger("tallinn.ops")

Clock = Callable[[], datetime]

# How often a SQLite store compares its open file with the file at its path, in seconds.
FILE_CHECK_INTERVAL = 1.0
# How often a store that is not open tries again, in seconds; in between it fails at once.
RETRY_INTERVAL = 1.0


def utcnow() -> datetime:
    return datetime.now(UTC)


def upsert_for(connection: Connection) -> Any:
    """The dialect's `insert`, which has `on_conflict_do_update`, imported only for that
    dialect (naming PostgreSQL's costs every SQLite process 20 ms and 2 MB)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


class Database:
    """One SQLAlchemy engine with opening, retries, the SQLite file check and transactions.

    Parts of the store (`Tokens`, `Events`, `Releases`, ...) each take the one `Database`;
    `on_reset` callbacks run when the file under a SQLite store changed, so a part can drop
    what it remembers of the old one.
    """

    def __init__(self, engine: Engine, *, is_open: bool = True,
                 isolated_migrations: bool = False) -> None:
        self._engine = engine
        self._isolated_migrations = isolated_migrations
        self._closed = False
        self._path = sqlite_file.file_path(engine.url)
        # Set while the store is open; for SQLite, also the file it opened.
        self._open = is_open
        self._identity = sqlite_file.identity(self._path) if self._path and is_open else None
        self._opened_once = is_open
        self._problem: StoreError | None = None
        self._next_file_check = 0.0
        self._next_retry = 0.0
        self._lock = threading.Lock()
        self._resets: list[Callable[[], None]] = []

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return safe_url(self._engine.url)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self._engine.dialect.name

    @property
    def closed(self) -> bool:
        return self._closed

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the store is closed or its SQLite file replaced."""
        self._resets.append(callback)

    def _reset(self) -> None:
        for callback in self._resets:
            callback()

    # -- health -----------------------------------------------------------------------------

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
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
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
        try:
            migrate.upgrade(self._engine, isolated=self._isolated_migrations)
        except (SQLAlchemyError, StoreError) as exc:
            self._engine.dispose()
            raise self.failure(exc, "open it") from exc
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
            # Pooled connections still hold the old file; every write to it would be lost.
            self._open = False
            self._engine.dispose()
            self._reset()
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
        code, message = "store_unavailable", reason(exc)
        if isinstance(exc, StoreError):
            code = exc.code
        elif self._path is not None:
            code, message = sqlite_file.diagnose(self._path, message)
        return StoreError(f"state store {self.url}: cannot {action}: {message}", code)

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self, action: str, *, immediate: bool = False) -> Iterator[Connection]:
        """One transaction; database errors become `StoreError` naming `action`.

        `IntegrityError` passes through for callers that give it a meaning. `immediate` takes
        SQLite's write lock at the start (`BEGIN IMMEDIATE`), so a read-then-write transaction
        cannot be overtaken between its read and its write; PostgreSQL callers lock rows.
        """
        if self._closed:
            raise StoreError(
                f"state store {self.url}: cannot {action}: it is closed", "store_closed"
            )
        self._ensure_open()
        try:
            with self._engine.connect() as connection:
                if immediate and self.dialect == "sqlite":
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        yield connection
                    except BaseException:
                        connection.rollback()
                        raise
                    connection.commit()
                else:
                    with connection.begin():
                        yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise self.failure(exc, action) from exc

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection. The store is unusable afterwards."""
        self._closed = True
        self._reset()
        self._engine.dispose()


def reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's echo of the statement and parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        message = str(exc.orig).strip()
    else:
        message = str(exc).split("\n[SQL:", 1)[0].strip()
    return message.splitlines()[0] if message else type(exc).__name__
