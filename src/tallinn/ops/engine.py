"""Where the store lives and how to connect to it: URL resolution and engine setup."""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from tallinn.ops import sqlite_file
from tallinn.ops.errors import StoreError

# Re-exported: the store's callers name them here.
from tallinn.ops.store_defaults import (
    PG_CONNECT_TIMEOUT_S,
    SQLITE_BUSY_TIMEOUT_MS,
    default_sqlite_path,
)
from tallinn.ops.store_defaults import STATE_DIR as STATE_DIR
from tallinn.ops.store_defaults import STATE_FILE as STATE_FILE


def resolve_url(url: str | None, library_root: Path | None = None) -> URL:
    """Turn the user's URL (or none) into the URL SQLAlchemy connects to.

    `None` is the default SQLite file of `library_root` (the CLI passes `$TALLINN_STORE_URL`
    from its settings: the environment is read at the edge, not here). `postgresql://` and
    `postgres://` select the psycopg 3 driver.
    """
    if url is None or not url.strip():
        path = default_sqlite_path(library_root)
        return URL.create("sqlite", database=str(path))
    try:
        parsed = make_url(url.strip())
    except ArgumentError as exc:
        raise StoreError(f"invalid store URL: {exc}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def make_engine(url: URL) -> Engine:
    """An engine for `url`: SQLite gets WAL, a busy timeout and foreign keys on every connection.

    SQLite file databases use SQLAlchemy's default `QueuePool` with `check_same_thread` off, so
    the engine may be shared by threads; `:memory:` uses one shared connection. Nothing is
    touched on disk until the first connection (`Store.open` prepares the folder).
    """
    backend = url.get_backend_name()
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if backend == "sqlite":
        if is_memory(url):
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(url, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"cannot use store URL {safe_url(url)}: {exc}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", partial(_sqlite_on_connect, sqlite_file.file_path(url)))
    return engine


def _sqlite_on_connect(
    path: Path | None, dbapi_connection: sqlite3.Connection, _record: object
) -> None:
    if path is not None:
        # Every new connection may be the one that creates the -shm index: never on a full
        # file system, where mapping it can kill the process (see `sqlite_file`).
        free = sqlite_file.free_bytes(path.parent)
        if free is not None and free < sqlite_file.MIN_FREE_BYTES:
            raise sqlite3.OperationalError(f"database or disk is full ({free} bytes free)")
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # safe with WAL: no corruption, ever
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def safe_url(url: URL | str) -> str:
    """The URL with its password hidden, for messages and logs."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except ArgumentError:
            return "<invalid URL>"
    return url.render_as_string(hide_password=True)
