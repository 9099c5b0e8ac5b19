"""The state store: API tokens and security events in SQLite or PostgreSQL.

    store = open_store()                      # $TALLINN_STORE_URL, else .tallinn/state.db
    token = store.create_token("ci")          # shown once; only its hash is kept
    assert store.verify_token(token) == "ci"
    store.record_event("auth_failure", client="10.0.0.7", detail="bad token")

Every method runs one short transaction, so a `Store` may be shared by threads (an asyncio
server calls it from a worker thread). Database failures raise `StoreError`; `ping()` and
`health()` never raise.

A server's store outlives faults. `connect_store` returns one without touching the database;
each use opens it when it is not open yet (at most once every `RETRY_INTERVAL`, failing fast
in between), so a database down at start-up is used as soon as it answers. A SQLite file is
checked every `FILE_CHECK_INTERVAL` against the file at its path (device and inode): one
replaced is reopened (and migrated), one deleted makes the store unavailable, with the code
`store_missing`, until a file is back at the path.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from tallinn.ops import migrate, sqlite_file
from tallinn.ops.engine import make_engine, resolve_url, safe_url
from tallinn.ops.errors import StoreError, TokenExistsError
from tallinn.ops.records import SecurityEvent, StoreHealth, TokenInfo
from tallinn.ops.schema import security_events, tokens
from tallinn.ops.tokens import TokenCache, check_name, generate, hash_secret, parse, same_hash

log = logging.getLogger("tallinn.ops")

Clock = Callable[[], datetime]

# How long a verified token is trusted without asking the database again. A revocation made
# elsewhere (another replica, the CLI) empties the cache sooner: every `REVOCATION_POLL` the
# store asks the database one question for all tokens (how many are revoked, and the latest
# revocation), so revocation takes effect within a second whatever the number of tokens, and
# a busy server asks the database once a second, not once a second per token.
CACHE_TTL = timedelta(minutes=5)
REVOCATION_POLL = timedelta(seconds=1)
# How often a SQLite store compares its open file with the file at its path, in seconds.
FILE_CHECK_INTERVAL = 1.0
# How often a store that is not open tries again, in seconds; in between it fails at once.
RETRY_INTERVAL = 1.0
# last_used_at is written at most this often per token, to keep verification read-only.
TOUCH_INTERVAL = timedelta(minutes=1)
KIND_MAX = 64
CLIENT_MAX = 255
DETAIL_MAX = 2000
EVENTS_LIMIT_MAX = 10_000
_KIND = re.compile(r"[a-z][a-z0-9_.]*")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """API tokens and security events over one SQLAlchemy engine; see `open_store`.

    `clock` returns aware UTC datetimes (tests pass a fake one); `cache_ttl` of zero turns the
    verified-token cache off.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = utcnow,
        cache_ttl: timedelta = CACHE_TTL,
        is_open: bool = True,
        isolated_migrations: bool = False,
        revocation_poll: timedelta = REVOCATION_POLL,
    ) -> None:
        self._engine = engine
        self._revocation_poll = revocation_poll
        self._revocations: tuple[object, ...] | None = None  # (count, latest) last seen
        self._next_revocation_poll: datetime | None = None  # None: poll at the next check
        self._poll_lock = threading.Lock()
        self._isolated_migrations = isolated_migrations
        self._clock = clock
        self._cache = TokenCache(cache_ttl)
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
            return StoreHealth(False, "store_unavailable", str(self._failure(exc, "answer")))
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
            raise self._failure(exc, "open it") from exc
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
            self._cache.clear()
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

    def _failure(self, exc: BaseException, action: str) -> StoreError:
        """`exc` as one line naming the store: `state store sqlite:///x.db: cannot ...: why`.

        A SQLite file's error is diagnosed (folder, permissions, free room) into a clearer one.
        """
        code, message = "store_unavailable", reason(exc)
        if isinstance(exc, StoreError):
            code = exc.code
        elif self._path is not None:
            code, message = sqlite_file.diagnose(self._path, message)
        return StoreError(f"state store {self.url}: cannot {action}: {message}", code)

    # -- tokens -----------------------------------------------------------------------------

    def create_token(self, name: str) -> str:
        """Create a token named `name` and return it; this is the only time it is visible.

        Raises `TokenExistsError` if an active token has that name, `TokenNameError` for a
        name that is not letters, digits and `. _ @ + -`.
        """
        check_name(name)
        new = generate()
        try:
            with self._transaction("create a token") as connection:
                connection.execute(
                    insert(tokens).values(
                        token_id=new.token_id,
                        name=name,
                        secret_hash=new.secret_hash,
                        created_at=self._clock(),
                    )
                )
        except IntegrityError:
            # The partial unique index on active names decides, also between racing creators.
            raise TokenExistsError(name) from None
        return new.token

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first; never the secrets."""
        query = select(
            tokens.c.name,
            tokens.c.created_at,
            tokens.c.last_used_at,
            tokens.c.revoked_at,
            tokens.c.token_id,
        ).order_by(tokens.c.created_at, tokens.c.id)
        with self._transaction("list tokens") as connection:
            rows = connection.execute(query).all()
        return [
            TokenInfo(
                name=row.name,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                revoked_at=row.revoked_at,
                token_id=row.token_id,
            )
            for row in rows
        ]

    def revoke_token(self, name: str) -> bool:
        """Revoke the active token named `name`; False if there is none.

        This process stops accepting it at once; other processes within `REVOCATION_POLL`.
        """
        statement = (
            update(tokens)
            .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )
        with self._transaction("revoke a token") as connection:
            revoked = connection.execute(statement).rowcount > 0
        self._cache.forget_name(name)
        return revoked

    def verify_token(self, token: str) -> str | None:
        """The name of the active token `token`, or None for a wrong, revoked or malformed one.

        Raises `StoreError` when the database cannot be asked: fail closed, answer 503.
        """
        parsed = parse(token) if isinstance(token, str) else None
        if parsed is None:
            return None
        token_id, secret = parsed
        digest = hash_secret(secret)
        now = self._clock()
        self._poll_revocations(now)
        cached = self._cache.get(token_id, digest, now)
        if cached is not None:
            return cached
        query = select(
            tokens.c.name, tokens.c.secret_hash, tokens.c.revoked_at, tokens.c.last_used_at
        ).where(tokens.c.token_id == token_id)
        with self._transaction("verify a token") as connection:
            row = connection.execute(query).first()
            stored = row.secret_hash if row is not None and row.revoked_at is None else None
            if not same_hash(stored, digest):
                return None
            assert row is not None  # same_hash is False for a missing row
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
                connection.execute(
                    update(tokens).where(tokens.c.token_id == token_id).values(last_used_at=now)
                )
        self._cache.put(token_id, row.name, digest, now)
        return str(row.name)

    def cached_token(self, token: str) -> str | None:
        """The name of `token` if this store verified it less than `CACHE_TTL` ago and no
        revocation poll is due, else None.

        Memory only: never touches the database, never raises, so an event loop may call it
        directly and go to `verify_token` (in a worker thread) only when it answers None.
        None means "not known here", not "invalid".
        """
        parsed = parse(token) if isinstance(token, str) else None
        if parsed is None or self._closed:
            return None
        now = self._clock()
        due = self._next_revocation_poll
        if due is None or now >= due:
            return None  # the caller goes to verify_token, which asks about revocations
        token_id, secret = parsed
        return self._cache.get(token_id, hash_secret(secret), now)

    def _poll_revocations(self, now: datetime) -> None:
        """Every `REVOCATION_POLL`, empty the cache if a token was revoked since the last look.

        One caller asks; the others, arriving meanwhile, go on with the cache as it is.
        """
        due = self._next_revocation_poll
        if due is not None and now < due:
            return
        if not self._poll_lock.acquire(blocking=False):
            return
        try:
            query = select(func.count(), func.max(tokens.c.revoked_at)).where(
                tokens.c.revoked_at.is_not(None))
            with self._transaction("check for revoked tokens") as connection:
                seen = tuple(connection.execute(query).one())
            if seen != self._revocations:
                self._cache.clear()  # the first look, or a revocation somewhere
            self._revocations = seen
            self._next_revocation_poll = now + self._revocation_poll
        finally:
            self._poll_lock.release()

    # -- security events --------------------------------------------------------------------

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        """Record a security event, e.g. `record_event("rate_limited", client="10.0.0.7")`.

        `kind` is a short lowercase word (`auth_failure`, `path_traversal`, ...). `client` and
        `detail` may come from an attacker: they are cut to 255 and 2000 characters and NUL
        characters are replaced, so recording never fails on their content.
        """
        if len(kind) > KIND_MAX or not _KIND.fullmatch(kind):
            raise ValueError(f"event kind must be a short word like 'auth_failure', got {kind!r}")
        values = {
            "occurred_at": self._clock(),
            "kind": kind,
            "client": None if client is None else _clean(client, CLIENT_MAX),
            "detail": _clean(detail, DETAIL_MAX),
        }
        with self._transaction("record a security event") as connection:
            connection.execute(insert(security_events).values(**values))

    def events(self, kind: str | None = None, limit: int = 100) -> list[SecurityEvent]:
        """The latest `limit` security events, newest first, of one `kind` or all."""
        if not 1 <= limit <= EVENTS_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {EVENTS_LIMIT_MAX}, got {limit}")
        query = select(security_events).order_by(
            security_events.c.occurred_at.desc(), security_events.c.id.desc()
        )
        if kind is not None:
            query = query.where(security_events.c.kind == kind)
        with self._transaction("read security events") as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [
            SecurityEvent(
                id=row.id,
                kind=row.kind,
                occurred_at=row.occurred_at,
                client=row.client,
                detail=row.detail,
            )
            for row in rows
        ]

    def prune_events(self, before: datetime) -> int:
        """Delete security events older than `before`; return how many went."""
        statement = delete(security_events).where(security_events.c.occurred_at < before)
        with self._transaction("prune security events") as connection:
            return connection.execute(statement).rowcount

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection. The store is unusable afterwards."""
        self._closed = True
        self._cache.clear()
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @contextmanager
    def _transaction(self, action: str) -> Iterator[Connection]:
        """One transaction; database errors become `StoreError` naming `action`.

        `IntegrityError` passes through for callers that give it a meaning.
        """
        if self._closed:
            raise StoreError(
                f"state store {self.url}: cannot {action}: it is closed", "store_closed"
            )
        self._ensure_open()
        try:
            with self._engine.begin() as connection:
                yield connection
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise self._failure(exc, action) from exc


def open_store(url: str | None = None, *, library_root: Path | None = None) -> Store:
    """Open the store and bring its schema up to date.

    `url` None means `$TALLINN_STORE_URL`, else `<library_root>/.tallinn/state.db` (or
    `./.tallinn/state.db` for the bundled starter or no library). `postgresql://` URLs use
    psycopg 3. Safe to call from several processes at once: migrations take a lock.
    """
    store = connect_store(url, library_root=library_root)
    store.open()
    return store


def connect_store(url: str | None = None, *, library_root: Path | None = None,
                  isolated_migrations: bool = False) -> Store:
    """The store for `url` (as in `open_store`), not opened yet: it opens at its first use.

    Only a URL that cannot work raises `StoreError` here; a database that is down does not.
    `isolated_migrations` (for a long-running server) migrates in a child process.
    """
    return Store(make_engine(resolve_url(url, library_root)), is_open=False,
                 isolated_migrations=isolated_migrations)


def reason(exc: BaseException) -> str:
    """The driver's own message, without SQLAlchemy's echo of the statement and parameters."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        message = str(exc.orig).strip()
    else:
        message = str(exc).split("\n[SQL:", 1)[0].strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _clean(value: str, limit: int) -> str:
    return value[:limit].replace("\x00", "\ufffd")
