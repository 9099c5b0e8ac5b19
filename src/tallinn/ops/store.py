"""The state store: one database in narrow parts, composed into one `Store`.

    store = open_store(url)                   # None: .tallinn/state.db
    token = store.create_token("ci")          # shown once; only its hash is kept
    assert store.verify_token(token) == "ci"
    store.record_event("auth_failure", client="10.0.0.7", detail="bad token")
    store.errors.record(pending_errors)        # a server's flush of `ErrorEvent`s

The parts share one `Database` (engine, opening and retries, the SQLite file check, health,
transactions; see `tallinn.ops.database`): `store.tokens` (`TokenStore`), `store.security_events`
(`SecurityEvents`), `store.releases` (`Releases`), `store.channels` (`Channels`),
`store.audit_log` (`AuditLog`), `store.rollouts` (`Rollouts`), `store.errors` (`ErrorLog`) and
`store.feedback` (`Feedback`, the ratings read back); releases, channel moves and rollout
changes append to the audit log in their own transaction. A consumer that needs one
part takes its `Protocol` from `tallinn.ops.types`, not the whole `Store`; the token and event
methods here delegate, so existing callers keep working.

Every method runs one short transaction, so a `Store` may be shared by threads (an asyncio
server calls it from a worker thread). Database failures raise `StoreError`; `ping()` and
`health()` never raise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from tallinn.ops.audit_log import AuditLog
from tallinn.ops.channels import Channels
from tallinn.ops.database import (
    FILE_CHECK_INTERVAL,
    RETRY_INTERVAL,
    Clock,
    Database,
    reason,
    utcnow,
)
from tallinn.ops.engine import make_engine, resolve_url
from tallinn.ops.error_log import RETENTION, SAMPLES_PER_GROUP, ErrorLog
from tallinn.ops.feedback import Feedback
from tallinn.ops.records import SecurityEvent, StoreHealth, TokenIdentity, TokenInfo
from tallinn.ops.releases import Releases
from tallinn.ops.rollouts import Rollouts
from tallinn.ops.security_events import DETAIL_MAX, SecurityEvents
from tallinn.ops.token_store import CACHE_TTL, REVOCATION_POLL, TOUCH_INTERVAL, TokenStore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tallinn.ops.error_events import ErrorEvent
    from tallinn.ops.types import (
        AuditTrail,
        ChannelPointers,
        ErrorRecorder,
        HealthSource,
        ReleaseArchive,
        RoleVerifier,
        SecurityEventLog,
        TokenAdmin,
        TokenVerifier,
    )

__all__ = [
    "CACHE_TTL",
    "DETAIL_MAX",
    "FILE_CHECK_INTERVAL",
    "RETRY_INTERVAL",
    "REVOCATION_POLL",
    "TOUCH_INTERVAL",
    "Store",
    "connect_store",
    "open_store",
    "reason",
    "utcnow",
]


class Store:
    """Every part of the state store over one SQLAlchemy engine; see `open_store`.

    `clock` returns aware UTC datetimes (tests pass a fake one); `cache_ttl` of zero turns the
    verified-token cache off; `error_samples` and `error_retention` are the error log's
    samples kept per group and how long a group stays unseen before `prune` removes it.
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
        error_samples: int = SAMPLES_PER_GROUP,
        error_retention: timedelta = RETENTION,
    ) -> None:
        self.database = Database(engine, is_open=is_open,
                                 isolated_migrations=isolated_migrations)
        self.tokens = TokenStore(self.database, clock=clock, cache_ttl=cache_ttl,
                                 revocation_poll=revocation_poll)
        self.security_events = SecurityEvents(self.database, clock=clock)
        self.audit_log = AuditLog(self.database, clock=clock)
        self.releases = Releases(self.database, self.audit_log, clock=clock)
        self.channels = Channels(self.database, self.audit_log, self.releases, clock=clock)
        self.rollouts = Rollouts(self.database, self.audit_log, self.releases, self.channels,
                                 clock=clock)
        self.errors = ErrorLog(self.database, clock=clock, samples_per_group=error_samples,
                               retention=error_retention)
        self.feedback = Feedback(self.database)

    @property
    def engine(self) -> Engine:
        return self.database.engine

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.database.url

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.database.dialect

    # -- the database -----------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the database answers `SELECT 1`; never raises."""
        return self.database.ping()

    def health(self) -> StoreHealth:
        """Whether the store answers now, and if not, why (see `Database.health`)."""
        return self.database.health()

    def open(self) -> None:
        """Open the store now: prepare the SQLite folder, bring the schema up to date."""
        self.database.open()

    def close(self) -> None:
        """Close every pooled connection. The store is unusable afterwards."""
        self.database.close()

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

    # -- tokens (see `TokenStore`) ----------------------------------------------------------

    def create_token(self, name: str, role: str = "reader") -> str:
        return self.tokens.create_token(name, role)

    def list_tokens(self) -> list[TokenInfo]:
        return self.tokens.list_tokens()

    def revoke_token(self, name: str) -> bool:
        return self.tokens.revoke_token(name)

    def verify_token(self, token: str) -> str | None:
        return self.tokens.verify_token(token)

    def cached_token(self, token: str) -> str | None:
        return self.tokens.cached_token(token)

    def verify_token_role(self, token: str) -> TokenIdentity | None:
        return self.tokens.verify_token_role(token)

    # -- security events (see `SecurityEvents`) ---------------------------------------------

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        self.security_events.record_event(kind, client=client, detail=detail)

    def events(self, kind: str | None = None, limit: int = 100) -> list[SecurityEvent]:
        return self.security_events.events(kind, limit)

    def prune_events(self, before: datetime) -> int:
        return self.security_events.prune_events(before)

    # -- errors (see `ErrorLog`) -------------------------------------------------------------

    def record_errors(self, events: Iterable[ErrorEvent]) -> None:
        """Store failed requests in one transaction (a server's flush)."""
        self.errors.record(events)


def open_store(url: str | None = None, *, library_root: Path | None = None) -> Store:
    """Open the store and bring its schema up to date.

    `url` None means `<library_root>/.tallinn/state.db` (or `./.tallinn/state.db` for the
    bundled starter or no library); the CLI passes `$TALLINN_STORE_URL` from its settings.
    `postgresql://` URLs use psycopg 3. Safe to call from several processes at once:
    migrations take a lock.
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


if TYPE_CHECKING:  # mypy proves that a `Store` and its parts satisfy the narrow protocols

    def _satisfies(store: Store) -> tuple[HealthSource, TokenVerifier, TokenAdmin,
                                          SecurityEventLog, TokenVerifier, SecurityEventLog,
                                          ReleaseArchive, ChannelPointers, AuditTrail,
                                          RoleVerifier, RoleVerifier, ErrorRecorder]:
        return (store, store, store, store, store.tokens, store.security_events,
                store.releases, store.channels, store.audit_log, store, store.tokens,
                store.errors)
