"""What a server serving a folder asks of the store, through the database driver alone:
sqlite3 or psycopg, no SQLAlchemy.

    target = direct_target("sqlite:////srv/lib/.tallinn/state.db", None)
    tokens = DirectTokens(target)               # None target: the URL needs the full `Store`
    tokens.database.open()                      # migrates in a child process when due
    assert tokens.verify_token(token) == "ci"
    tokens.record_event("auth_failure", client="ip:10.0.0.7", detail="unknown token")
    DirectErrors(tokens.database).record(events)  # a flush of failed requests

A production server serving a folder needs the store for three things: to check a bearer
token it has not seen lately, to record what it refused, and to record the requests that
failed. Loading SQLAlchemy for those costs 12 MB of the server's memory for as long as it
runs, so they run here: one parameterised SELECT per unknown token, with the hashing, cache,
revocation poll and roles of `TokenChecks`, exactly as `tallinn.ops.token_store` does it; one
INSERT per security event, checked as `tallinn.ops.security_events` checks it; and the error
log's own statements, in one transaction, for a flush of errors. Everything else (releases,
channels) goes through the full `Store`.

The store's behaviour under faults is the store's own (`tallinn.ops.watched.WatchedStore`,
which `Database` is too): retries, the SQLite file check, `StoreError` with the same codes and
messages. A schema behind `HEAD` is migrated in a child process (`python -m
tallinn.ops.migrate`), as a server's `Store` does.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tallinn.ops import sqlite_file
from tallinn.ops.error_events import SAMPLES_PER_GROUP, ErrorEvent, pending_groups
from tallinn.ops.errors import StoreError
from tallinn.ops.security_values import event_values

# Re-exported: the store's own settings, read from the one place the store reads them.
from tallinn.ops.store_defaults import (
    CHILD_TIMEOUT_S,
    CHILD_URL,
    HEAD,
    PG_CONNECT_TIMEOUT_S,
    SQLITE_BUSY_TIMEOUT_MS,
    default_sqlite_path,
)
from tallinn.ops.store_defaults import STATE_DIR as STATE_DIR
from tallinn.ops.store_defaults import STATE_FILE as STATE_FILE
from tallinn.ops.tokens import CACHE_TTL, REVOCATION_POLL, StoredToken, TokenChecks
from tallinn.ops.watched import WatchedStore

log = logging.getLogger("tallinn.ops")
T = TypeVar("T")


class Statements(Protocol):
    """Runs one statement inside `DriverDatabase.transaction`: `?` marks its parameters, a
    list of parameter tuples runs it once for each; returns its rows."""

    def __call__(self, sql: str, parameters: tuple[object, ...] | list[tuple[object, ...]] = (),
                 ) -> list[tuple[Any, ...]]: ...


_PG_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")


@dataclass(frozen=True, slots=True)
class Target:
    """Where a store lives, as the driver connects to it.

    `Target("sqlite", "/srv/.tallinn/state.db", "sqlite:////srv/.tallinn/state.db")`, or for
    PostgreSQL `where` is a libpq URI; `url` is what SQLAlchemy would be given (the child
    migration takes it), `label` the same with any password hidden.
    """

    dialect: str
    where: str
    url: str

    @property
    def label(self) -> str:
        return _hide_password(self.url)


def direct_target(url: str | None, library_root: Path | None = None) -> Target | None:
    """The driver's target for the store URL `url` (None: the library's SQLite file).

    None when the URL is one only SQLAlchemy reads the way the store means it (an in-memory
    or URI-named SQLite database, query options, another driver, anything unparsed): the
    caller uses the full `Store` then, which also reports a URL that cannot work.
    """
    if url is None or not url.strip():
        path = default_sqlite_path(library_root)
        return Target("sqlite", str(path), f"sqlite:///{path}")
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if scheme == "sqlite":
        database = rest.removeprefix("/")
        if not rest.startswith("/") or database in ("", ":memory:"):
            return None
        if database.startswith(("file:", "~")) or any(c in database for c in "?%#"):
            return None
        return Target("sqlite", database, f"sqlite:///{database}")
    if scheme in _PG_SCHEMES:
        try:
            parts = urlsplit(f"postgresql://{rest}")
            parts.port  # noqa: B018 (a port that is not a number raises here)
        except ValueError:
            return None
        return Target("postgresql", urlunsplit(parts), f"postgresql+psycopg://{rest}")
    return None


def _hide_password(url: str) -> str:
    """Given `postgresql+psycopg://app:secret@db/prompts`, return `...app:***@db/prompts`."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
    except ValueError:
        return "<invalid URL>"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _utc(value: object) -> datetime | None:
    """A stored time as an aware UTC datetime: SQLite keeps `2026-01-01 12:00:00.000000`."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DriverDatabase(WatchedStore):
    """One driver connection to the store at `target`, shared by threads, watched for faults.

    `on_drop` runs whenever the connection is let go (the store closed, its SQLite file
    replaced or deleted), so what was verified through it is forgotten.
    """

    def __init__(self, target: Target, on_drop: Callable[[], None] = lambda: None) -> None:
        super().__init__(Path(target.where) if target.dialect == "sqlite" else None,
                         is_open=False)
        self.target = target
        self._on_drop = on_drop
        self._connection: Any = None  # a sqlite3 or psycopg connection while open
        self._use = threading.Lock()  # one statement at a time; taken after `_lock`, never before
        self._mark = "?" if target.dialect == "sqlite" else "%s"

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.target.label

    # -- what `WatchedStore` asks of it -----------------------------------------------------

    def _connect(self) -> None:
        try:
            connection = self._new_connection()
        except Exception as exc:
            raise self.failure(exc, "open it") from exc
        try:
            if self._revision(connection) != HEAD:
                connection.close()
                self._migrate()
                connection = self._new_connection()
        except BaseException:
            connection.close()
            raise
        with self._use:
            self._connection = connection

    def _disconnect(self) -> None:
        with self._use:
            connection, self._connection = self._connection, None
        self._on_drop()
        if connection is not None:
            try:
                connection.close()
            except Exception:  # pragma: no cover - closing a broken connection
                log.debug("closing the store's connection failed", exc_info=True)

    def _answer(self) -> None:
        with self._use:
            if self._connection is None:
                raise StoreError(f"state store {self.url}: cannot answer: it is being reopened")
            self._connection.execute("SELECT 1").fetchall()

    def _new_connection(self) -> Any:
        if self._path is None:
            import psycopg

            return psycopg.connect(self.target.where, autocommit=True,
                                   connect_timeout=PG_CONNECT_TIMEOUT_S)
        # As the store's engine does on every connection (see `tallinn.ops.engine`).
        free = sqlite_file.free_bytes(self._path.parent)
        if free is not None and free < sqlite_file.MIN_FREE_BYTES:
            raise sqlite3.OperationalError(f"database or disk is full ({free} bytes free)")
        connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None,
                                     timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            connection.close()
            raise
        return connection

    def _revision(self, connection: Any) -> str | None:
        """The revision in the version table; None if there is no single one to read."""
        try:
            rows = connection.execute("SELECT version_num FROM tallinn_schema_version").fetchall()
        except Exception:  # no version table yet: the migration will tell
            return None
        return str(rows[0][0]) if len(rows) == 1 else None

    def _migrate(self) -> None:
        """Bring the schema to `HEAD` in a child process, as `migrate.upgrade(isolated=True)`."""
        env = {**os.environ, CHILD_URL: self.target.url}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "tallinn.ops.migrate", "head"], env=env,
                capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"the schema migration did not finish: {exc}") from exc
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            message = lines[-1] if lines else f"the schema migration exited {done.returncode}"
            raise self.failure(StoreError(message), "open it")

    # -- statements -------------------------------------------------------------------------

    def query(self, action: str, sql: str,
              parameters: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (`?` marks its parameters) and return its rows; `StoreError`
        naming `action` if the database cannot be asked."""

        return self._with_connection(
            action, lambda connection: _run(connection, self._mark, sql, parameters))

    def transaction(self, action: str, work: Callable[[Statements], T]) -> T:
        """Run `work` in one transaction and return what it returns: it is given a function
        that runs one statement (`?` marks its parameters; a list of parameter tuples runs it
        for each) and returns its rows. Committed if `work` returns, rolled back if it raises;
        `StoreError` naming `action` if the database cannot be asked. A PostgreSQL connection
        found lost is made again and `work` run once more (its first try was rolled back)."""
        return self._with_connection(action, lambda c: self._in_transaction(c, work))

    def _with_connection(self, action: str, use: Callable[[Any], T]) -> T:
        if self._closed:
            raise self._closed_error(action)
        for attempt in (1, 2):
            self._ensure_open()
            with self._use:
                connection = self._connection
                if connection is not None:
                    try:
                        return use(connection)
                    except Exception as exc:
                        lost = self._path is None and (connection.broken or connection.closed)
                        if not lost or attempt == 2:
                            raise self.failure(exc, action) from exc
            # The connection was let go meanwhile (a file check), or PostgreSQL ended it since
            # its last use (a restart, an idle timeout): connect again once, as the store's
            # pool checks a connection before using it.
            with self._lock:
                self._open = False
                self._disconnect()
        raise self.failure(StoreError("the connection was lost twice"), action)

    def _in_transaction(self, connection: Any, work: Callable[[Statements], T]) -> T:
        mark = self._mark

        def run(sql: str, parameters: tuple[object, ...] | list[tuple[object, ...]] = (),
                ) -> list[tuple[Any, ...]]:
            return _run(connection, mark, sql, parameters)

        if self._path is None:
            with connection.transaction():
                return work(run)
        # IMMEDIATE takes SQLite's write lock at once: two writers wait their turn (the busy
        # timeout) instead of one failing when it reaches its first write.
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(run)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    def stored_time(self, when: datetime) -> object:
        """`when` as the store keeps it: SQLite a naive UTC text (as SQLAlchemy writes it)."""
        if self._path is None:
            return when
        return when.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    def close(self) -> None:
        """Close the connection. The database is unusable afterwards."""
        self._closed = True
        self._disconnect()


def _run(connection: Any, mark: str, sql: str,
         parameters: tuple[object, ...] | list[tuple[object, ...]]) -> list[tuple[Any, ...]]:
    """One statement on a driver connection, `?` written as its driver's `mark`: its rows, or
    run once for each tuple of a list of parameters."""
    if isinstance(parameters, list):
        connection.cursor().executemany(sql.replace("?", mark), parameters)
        return []
    cursor = connection.execute(sql.replace("?", mark), parameters)
    return list(cursor.fetchall()) if cursor.description else []


class DirectErrors:
    """The error log's writes over one driver connection: `record` stores a server's flush of
    failed requests as `tallinn.ops.error_log.ErrorLog.record` does, the same rows in the same
    order, so a server that serves a folder writes its errors without SQLAlchemy too."""

    def __init__(self, database: DriverDatabase, *,
                 samples_per_group: int = SAMPLES_PER_GROUP) -> None:
        self.database = database
        self.samples_per_group = samples_per_group

    def record(self, events: Iterable[ErrorEvent]) -> int:
        """Store a batch of events in one transaction; return how many there were."""
        pending = pending_groups(events, self.samples_per_group)
        if not pending:
            return 0
        at = self.database.stored_time

        def write(run: Statements) -> None:
            # Fingerprint order, so two replicas writing the same groups lock them alike.
            for print_, group in sorted(pending.items()):
                assert group.first is not None  # a group holds one event at least
                assert group.last is not None
                ((group_id,),) = run(_GROUP_UPSERT, (
                    print_, group.error_class, group.where, group.shape, group.count,
                    at(group.first), at(group.last)))
                if group.releases:
                    run(_RELEASE_UPSERT, [(group_id, release, count, at(first), at(last))
                                          for release, (count, first, last)
                                          in sorted(group.releases.items())])
                samples = group.latest(self.samples_per_group)
                if samples:
                    run(_SAMPLE_INSERT, [(group_id, at(x["at"]), x["release_id"], x["detail"],
                                          x["client"], x["replica"]) for x in samples])
                    run(_SAMPLE_TRIM, (group_id, group_id, self.samples_per_group - 1))

        self.database.transaction("record errors", write)
        return sum(group.count for group in pending.values())


# The statements of `ErrorLog.record`, as SQLite and PostgreSQL both read them.
_GROUP_UPSERT = (
    "INSERT INTO error_groups (fingerprint, error_class, location, shape, count, first_seen, "
    "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET "
    "count = error_groups.count + excluded.count, "
    "first_seen = CASE WHEN excluded.first_seen < error_groups.first_seen "
    "THEN excluded.first_seen ELSE error_groups.first_seen END, "
    "last_seen = CASE WHEN excluded.last_seen > error_groups.last_seen "
    "THEN excluded.last_seen ELSE error_groups.last_seen END RETURNING id")
_RELEASE_UPSERT = (
    "INSERT INTO error_group_releases (group_id, release_id, count, first_seen, last_seen) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (group_id, release_id) DO UPDATE SET "
    "count = error_group_releases.count + excluded.count, "
    "first_seen = CASE WHEN excluded.first_seen < error_group_releases.first_seen "
    "THEN excluded.first_seen ELSE error_group_releases.first_seen END, "
    "last_seen = CASE WHEN excluded.last_seen > error_group_releases.last_seen "
    "THEN excluded.last_seen ELSE error_group_releases.last_seen END")
_SAMPLE_INSERT = (
    "INSERT INTO error_samples (group_id, at, release_id, detail, client, replica) "
    "VALUES (?, ?, ?, ?, ?, ?)")
# The newest `keep` by id stay: the id of the keep-th newest is the oldest one kept.
_SAMPLE_TRIM = (
    "DELETE FROM error_samples WHERE group_id = ? AND id < (SELECT id FROM error_samples "
    "WHERE group_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)")


class DirectTokens(TokenChecks):
    """The store's token checks over one driver connection, `database` (a `DriverDatabase`,
    which also says whether the store answers, opens it and closes it).

    `clock`, `cache_ttl` and `revocation_poll` are as for `tallinn.ops.store.Store`.
    """

    def __init__(self, target: Target, *, clock: Callable[[], datetime] | None = None,
                 cache_ttl: timedelta = CACHE_TTL,
                 revocation_poll: timedelta = REVOCATION_POLL) -> None:
        super().__init__(clock=clock or (lambda: datetime.now(UTC)), cache_ttl=cache_ttl,
                         revocation_poll=revocation_poll)
        self.target = target
        self.database = DriverDatabase(target, self._cache.clear)

    # -- the rows verification reads (see `TokenChecks`) -------------------------------------

    def _find(self, token_id: str) -> StoredToken | None:
        rows = self.database.query(
            "verify a token",
            "SELECT name, secret_hash, revoked_at, last_used_at, role FROM tokens "
            "WHERE token_id = ?", (token_id,))
        if not rows:
            return None
        name, secret_hash, revoked_at, last_used_at, role = rows[0]
        return StoredToken(str(name), str(secret_hash), revoked_at is not None,
                           _utc(last_used_at), str(role))

    def _touch(self, token_id: str, now: datetime) -> None:
        self.database.query("verify a token",
                            "UPDATE tokens SET last_used_at = ? WHERE token_id = ?",
                            (self.database.stored_time(now), token_id))

    def _read_role(self, token_id: str) -> str:
        rows = self.database.query("read a token's role",
                                   "SELECT role FROM tokens WHERE token_id = ?", (token_id,))
        if len(rows) != 1:
            raise StoreError(f"state store {self.database.url}: cannot read a token's role: "
                             "the token is gone")
        return str(rows[0][0])

    def _revocation_summary(self) -> tuple[object, ...]:
        rows = self.database.query(
            "check for revoked tokens",
            "SELECT count(*), max(revoked_at) FROM tokens WHERE revoked_at IS NOT NULL")
        return tuple(rows[0])

    def _is_closed(self) -> bool:
        return self.database.closed

    # -- what the server writes besides ------------------------------------------------------

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        """Record a security event as `SecurityEvents.record_event` does, with the same checks
        of what it holds: a refused token, the first thing a server writes, then costs no
        database layer either."""
        kind, client, detail = event_values(kind, client, detail)
        self.database.query(
            "record a security event",
            "INSERT INTO security_events (occurred_at, kind, client, detail) VALUES (?, ?, ?, ?)",
            (self.database.stored_time(self._clock()), kind, client, detail))
