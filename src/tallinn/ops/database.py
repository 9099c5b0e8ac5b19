"""The database every part of the store shares: one engine, opened lazily, watched for faults.

    database = Database(make_engine(resolve_url(None)), is_open=False)
    with database.transaction("list tokens") as connection:
        rows = connection.execute(...).all()

A server's store outlives faults (see `tallinn.ops.watched`, which this shares with the
driver-only token checks): a database that is not open is opened at its first use, at most
once every `RETRY_INTERVAL`; a SQLite file replaced under it is reopened (and migrated), one
deleted is `store_missing` until a file is back at the path.

Database failures raise `StoreError` with a code (see `StoreError`); `ping()` and `health()`
never raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tallinn.ops import migrate, sqlite_file
from tallinn.ops.engine import safe_url
from tallinn.ops.errors import StoreError
from tallinn.ops.watched import FILE_CHECK_INTERVAL, RETRY_INTERVAL, WatchedStore

__all__ = [
    "FILE_CHECK_INTERVAL", "RETRY_INTERVAL", "Clock", "Database", "reason", "upsert_for", "utcnow",
]

Clock = Callable[[], datetime]


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


class Database(WatchedStore):
    """One SQLAlchemy engine with opening, retries, the SQLite file check and transactions.

    Parts of the store (`Tokens`, `Events`, `Releases`, ...) each take the one `Database`;
    `on_reset` callbacks run when the file under a SQLite store changed, so a part can drop
    what it remembers of the old one.
    """

    def __init__(self, engine: Engine, *, is_open: bool = True,
                 isolated_migrations: bool = False) -> None:
        super().__init__(sqlite_file.file_path(engine.url), is_open=is_open)
        self._engine = engine
        self._isolated_migrations = isolated_migrations
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

    def on_reset(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever the store is closed or its SQLite file replaced."""
        self._resets.append(callback)

    def _reset(self) -> None:
        for callback in self._resets:
            callback()

    # -- what `WatchedStore` asks of it -----------------------------------------------------

    def _connect(self) -> None:
        try:
            migrate.upgrade(self._engine, isolated=self._isolated_migrations)
        except (SQLAlchemyError, StoreError) as exc:
            self._engine.dispose()
            raise self.failure(exc, "open it") from exc

    def _disconnect(self) -> None:
        # Pooled connections still hold the old file; every write to it would be lost.
        self._engine.dispose()
        self._reset()

    def _answer(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def _reason(self, exc: BaseException) -> str:
        return reason(exc)

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def transaction(self, action: str, *, immediate: bool = False) -> Iterator[Connection]:
        """One transaction; database errors become `StoreError` naming `action`.

        `IntegrityError` passes through for callers that give it a meaning. `immediate` takes
        SQLite's write lock at the start (`BEGIN IMMEDIATE`), so a read-then-write transaction
        cannot be overtaken between its read and its write; PostgreSQL callers lock rows.
        """
        if self._closed:
            raise self._closed_error(action)
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
