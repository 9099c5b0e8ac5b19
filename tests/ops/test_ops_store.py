"""The state store on SQLite and PostgreSQL: tokens, security events, health, errors."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, select, text

from tallinn.ops import (
    SecurityEvent,
    Store,
    StoreError,
    TokenExistsError,
    TokenInfo,
    TokenNameError,
    open_store,
)
from tallinn.ops.engine import resolve_url
from tallinn.ops.schema import tokens
from tallinn.ops.store import CACHE_TTL, DETAIL_MAX, REVOCATION_POLL, reason
from tallinn.ops.tokens import parse

if TYPE_CHECKING:
    from conftest import FakeClock

# A port nothing listens on, and a folder that does not exist.
DEAD_PG = "postgresql://nobody@127.0.0.1:1/nothing"
DEAD_SQLITE = "sqlite:////nonexistent-tallinn-dir/state.db"


def tamper(token: str, index: int = -1) -> str:
    """The token with one character changed."""
    chars = list(token)
    chars[index] = "A" if chars[index] != "A" else "B"
    return "".join(chars)


# -- tokens ---------------------------------------------------------------------------------


def test_created_token_verifies_to_its_name(store: Store) -> None:
    """A new token has the tln_<id>_<secret> form and verifies to the name it was made with."""
    token = store.create_token("ci")
    assert token.startswith("tln_")
    assert parse(token) is not None
    assert store.verify_token(token) == "ci"
    assert store.verify_token(token) == "ci"  # the second time from the cache


def test_every_token_is_different(store: Store) -> None:
    """Two tokens never share an id or a secret."""
    first, second = store.create_token("a"), store.create_token("b")
    assert parse(first) != parse(second)
    assert store.verify_token(first) == "a"
    assert store.verify_token(second) == "b"


def test_secret_is_never_stored(store: Store) -> None:
    """Only the id and the SHA-256 of the secret reach the database."""
    token = store.create_token("ci")
    token_id, secret = parse(token) or ("", "")
    with store.engine.connect() as connection:
        row = connection.execute(select(tokens)).one()
    values = [str(value) for value in row]
    assert token_id in values
    assert not any(secret in value for value in values)
    assert len(row.secret_hash) == 64


@pytest.mark.parametrize(
    "wrong",
    [
        "",
        "tln_",
        "not a token",
        "Bearer tln_0123456789abcdef_" + "a" * 43,
        "tln_0123456789abcdef_" + "a" * 43,  # well formed, unknown id
        "tln_0123456789ABCDEF_" + "a" * 43,  # upper-case id
        "tln_0123456789abcdef_short",
        "tln_0123456789abcdef_" + "a" * 200,
        "xyz_0123456789abcdef_" + "a" * 43,
        "tln_0123456789abcdef_" + "ä" * 43,
    ],
)
def test_wrong_token_is_refused(store: Store, wrong: str) -> None:
    """Malformed, unknown or foreign tokens verify to None, never raise."""
    store.create_token("ci")
    assert store.verify_token(wrong) is None


def test_non_string_token_is_refused(store: Store) -> None:
    """A header parsed to something odd is refused, not a crash."""
    assert store.verify_token(None) is None  # type: ignore[arg-type]
    assert store.verify_token(b"tln_x") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("index", [-1, 4, 21, 30])
def test_tampered_token_is_refused(store: Store, index: int) -> None:
    """Changing any one character of the id or the secret breaks the token."""
    token = store.create_token("ci")
    assert store.verify_token(token) == "ci"  # cached now: tampering must not hit the cache
    assert store.verify_token(tamper(token, index)) is None


def test_token_with_blanks_is_refused(store: Store) -> None:
    """No trimming: the server passes exactly what came after 'Bearer '."""
    token = store.create_token("ci")
    assert store.verify_token(f" {token}") is None
    assert store.verify_token(f"{token}\n") is None


def test_revoked_token_is_refused_at_once(store: Store) -> None:
    """Revoking through the same store drops the cached verification too."""
    token = store.create_token("ci")
    assert store.verify_token(token) == "ci"
    assert store.revoke_token("ci") is True
    assert store.verify_token(token) is None


def test_revoke_unknown_or_twice_is_false(store: Store) -> None:
    """Revoke answers whether an active token went away."""
    assert store.revoke_token("nobody") is False
    store.create_token("ci")
    assert store.revoke_token("ci") is True
    assert store.revoke_token("ci") is False


def test_revocation_elsewhere_is_seen_at_the_next_revocation_poll(
    store: Store, clock: FakeClock
) -> None:
    """Another process's revocation empties the cache at the next poll, long before the
    cached verification would expire; until then the cache answers."""
    server = Store(store.engine, clock=clock)
    token = server.create_token("ci")
    other = server.create_token("cd")
    assert server.verify_token(token) == "ci"
    assert server.verify_token(other) == "cd"
    assert store.revoke_token("ci") is True  # e.g. `tallinn token revoke` on another machine
    clock.advance(seconds=REVOCATION_POLL.total_seconds() / 2)
    assert server.cached_token(token) == "ci"  # not polled yet
    clock.advance(seconds=REVOCATION_POLL.total_seconds())
    assert server.cached_token(token) is None  # a poll is due: the caller must verify
    assert server.verify_token(token) is None
    assert server.verify_token(other) == "cd"  # the others stay valid
    assert REVOCATION_POLL < CACHE_TTL


def test_the_revocation_poll_asks_once_however_many_tokens(
    store: Store, clock: FakeClock
) -> None:
    """A poll is one query for all tokens: a hundred cached tokens verified again within the
    poll interval cost no query at all, and one query once it is due."""
    from sqlalchemy import event

    server = Store(store.engine, clock=clock)
    tokens = [server.create_token(f"t{n}") for n in range(100)]
    for token in tokens:
        assert server.verify_token(token) is not None
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: statements.append(str(args[2])))
    for token in tokens:
        assert server.verify_token(token) is not None
    assert statements == []
    clock.advance(seconds=REVOCATION_POLL.total_seconds() + 0.1)
    for token in tokens:
        assert server.verify_token(token) is not None
    assert len(statements) == 1
    assert "count" in statements[0].lower()


def test_cached_token_answers_from_memory_only(store: Store, clock: FakeClock) -> None:
    """cached_token knows a token only between a verification and the end of the cache TTL."""
    server = Store(store.engine, clock=clock)
    token = store.create_token("ci")
    assert server.cached_token(token) is None  # never verified here
    assert server.verify_token(token) == "ci"
    assert server.cached_token(token) == "ci"
    assert server.cached_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert server.cached_token("not a token") is None
    clock.advance(seconds=CACHE_TTL.total_seconds() + 1)
    assert server.cached_token(token) is None
    assert server.verify_token(token) == "ci"
    server.revoke_token("ci")
    assert server.cached_token(token) is None


def test_no_cache_sees_revocation_immediately(store: Store) -> None:
    """With cache_ttl=0 every verification asks the database."""
    server = Store(store.engine, cache_ttl=timedelta(0))
    token = server.create_token("ci")
    assert server.verify_token(token) == "ci"
    store.revoke_token("ci")
    assert server.verify_token(token) is None


def test_duplicate_active_name_is_an_error(store: Store) -> None:
    """One active token per name; a revoked name can be used again."""
    old = store.create_token("ci")
    with pytest.raises(TokenExistsError, match="'ci' already exists"):
        store.create_token("ci")
    store.revoke_token("ci")
    new = store.create_token("ci")
    assert store.verify_token(new) == "ci"
    assert store.verify_token(old) is None
    assert [t.active for t in store.list_tokens()] == [False, True]


@pytest.mark.parametrize("name", ["", "has space", "-leading", "x" * 65, "semi;colon", "ü"])
def test_bad_token_name_is_an_error(store: Store, name: str) -> None:
    """Names are short words fit for logs and tables."""
    with pytest.raises(TokenNameError):
        store.create_token(name)


def test_list_tokens_shows_metadata_not_secrets(store: Store, clock: FakeClock) -> None:
    """Tokens are listed oldest first with their times; nothing in the list is secret."""
    server = Store(store.engine, clock=clock)
    first = server.create_token("first")
    clock.advance(seconds=5)
    server.create_token("second")
    clock.advance(seconds=5)
    server.verify_token(first)
    server.revoke_token("second")
    listed = server.list_tokens()
    assert [t.name for t in listed] == ["first", "second"]
    assert all(isinstance(t, TokenInfo) for t in listed)
    one, two = listed
    assert one.created_at == clock.now - timedelta(seconds=10)
    assert one.last_used_at == clock.now
    assert one.revoked_at is None
    assert one.active
    assert two.last_used_at is None
    assert two.revoked_at == clock.now
    assert not two.active
    assert one.token_id == (parse(first) or ("",))[0]
    assert first.split("_", 2)[2] not in repr(listed)
    assert one.created_at.tzinfo is not None


def test_last_used_is_written_at_most_once_a_minute(store: Store, clock: FakeClock) -> None:
    """Verification records use, but writes at most once a minute per token."""
    server = Store(store.engine, clock=clock, cache_ttl=timedelta(0))
    token = server.create_token("ci")
    assert server.list_tokens()[0].last_used_at is None
    first_use = clock.now
    server.verify_token(token)
    assert server.list_tokens()[0].last_used_at == first_use
    clock.advance(seconds=59)
    server.verify_token(token)
    assert server.list_tokens()[0].last_used_at == first_use
    clock.advance(seconds=2)
    server.verify_token(token)
    assert server.list_tokens()[0].last_used_at == clock.now


def test_cache_is_bounded(store: Store) -> None:
    """The verified-token cache never grows past its limit."""
    store.tokens._cache.max_entries = 3
    created = [store.create_token(f"t{i}") for i in range(5)]
    for token in created:
        assert store.verify_token(token) is not None
    assert len(store.tokens._cache) <= 3


def test_threads_share_one_store(store: Store) -> None:
    """Many threads creating, verifying and recording at once all succeed."""
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            token = store.create_token(f"worker-{n}")
            for _ in range(5):
                assert store.verify_token(token) == f"worker-{n}"
                store.record_event("auth_failure", client=f"10.0.0.{n}")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(store.list_tokens()) == 8
    assert len(store.events(limit=1000)) == 40


# -- security events ------------------------------------------------------------------------


def test_events_are_recorded_and_queried(clocked: Store, clock: FakeClock) -> None:
    """Events come back newest first, filtered by kind, limited."""
    clocked.record_event("auth_failure", client="10.0.0.1", detail="bad token")
    clock.advance(seconds=1)
    clocked.record_event("rate_limited", client="10.0.0.2")
    clock.advance(seconds=1)
    clocked.record_event("path_traversal", detail="../../etc/passwd")
    clock.advance(seconds=1)
    clocked.record_event("auth_failure", client="10.0.0.3")

    everything = clocked.events()
    assert [e.kind for e in everything] == [
        "auth_failure",
        "path_traversal",
        "rate_limited",
        "auth_failure",
    ]
    assert all(isinstance(e, SecurityEvent) for e in everything)
    latest = everything[0]
    assert latest.client == "10.0.0.3"
    assert latest.detail == ""
    assert latest.occurred_at == clock.now
    assert everything[2].client == "10.0.0.2"
    assert everything[1].client is None

    failures = clocked.events("auth_failure")
    assert [e.client for e in failures] == ["10.0.0.3", "10.0.0.1"]
    assert failures[1].detail == "bad token"
    assert [e.client for e in clocked.events(limit=1)] == ["10.0.0.3"]
    assert clocked.events("request_too_large") == []


def test_events_at_the_same_instant_keep_their_order(clocked: Store) -> None:
    """Ties on time are broken by insertion order, newest first."""
    for n in range(3):
        clocked.record_event("rate_limited", detail=str(n))
    assert [e.detail for e in clocked.events()] == ["2", "1", "0"]


def test_hostile_event_fields_are_stored_safely(store: Store) -> None:
    """Over-long and NUL-carrying client input is cut and cleaned, never an error."""
    store.record_event("request_too_large", client="c" * 1000, detail="a\x00b" + "x" * 5000)
    event = store.events()[0]
    assert event.client == "c" * 255
    assert len(event.detail) == DETAIL_MAX
    assert event.detail.startswith("a\ufffdb")


@pytest.mark.parametrize("kind", ["", "Auth", "auth failure", "x" * 65, "1st", "a;b"])
def test_bad_event_kind_is_a_value_error(store: Store, kind: str) -> None:
    """Kinds are a programmer's constant; a bad one is a bug, not input."""
    with pytest.raises(ValueError, match="event kind"):
        store.record_event(kind)


@pytest.mark.parametrize("limit", [0, -1, 10_001])
def test_bad_events_limit_is_a_value_error(store: Store, limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        store.events(limit=limit)


def test_prune_events(clocked: Store, clock: FakeClock) -> None:
    """Events older than the cut-off are deleted and counted."""
    clocked.record_event("auth_failure", detail="old")
    clock.advance(days=31)
    clocked.record_event("auth_failure", detail="new")
    assert clocked.prune_events(clock.now - timedelta(days=30)) == 1
    assert [e.detail for e in clocked.events()] == ["new"]


# -- health and failures --------------------------------------------------------------------


def test_ping_is_true_on_a_live_database(store: Store) -> None:
    assert store.ping() is True


@pytest.mark.parametrize("url", [DEAD_PG, DEAD_SQLITE])
def test_ping_is_false_on_a_dead_database(url: str) -> None:
    """A database that does not answer gives False, without raising."""
    dead = Store(create_engine(resolve_url(url)))
    assert dead.ping() is False
    dead.close()


def test_ping_is_false_after_close(store_url: str) -> None:
    """A closed store is not ready."""
    store = open_store(store_url)
    assert store.ping()
    store.close()
    assert store.ping() is False


@pytest.mark.parametrize("url", [DEAD_PG, DEAD_SQLITE])
def test_operations_on_a_dead_database_raise_store_error(url: str) -> None:
    """Failures are one-line StoreErrors naming what was tried, without the SQL."""
    dead = Store(create_engine(resolve_url(url)))
    for call in (
        dead.list_tokens,
        lambda: dead.create_token("ci"),
        lambda: dead.verify_token("tln_0123456789abcdef_" + "a" * 43),
        lambda: dead.record_event("auth_failure"),
    ):
        with pytest.raises(StoreError) as caught:
            call()
        assert "cannot " in str(caught.value)
        assert "\n" not in str(caught.value)
        assert "[SQL" not in str(caught.value)
    dead.close()


def test_closed_store_refuses_work(store_url: str) -> None:
    store = open_store(store_url)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.list_tokens()


def test_store_describes_itself_without_password() -> None:
    """url and repr hide the password of a PostgreSQL URL."""
    store = Store(create_engine(resolve_url("postgresql://app:hunter2@db.example:5432/tallinn")))
    assert store.dialect == "postgresql"
    assert "hunter2" not in store.url
    assert "hunter2" not in repr(store)
    assert store.url == "postgresql+psycopg://app:***@db.example:5432/tallinn"


def test_reason_keeps_the_first_line_only() -> None:
    """Errors from SQLAlchemy lose the echoed statement and parameters."""
    from sqlalchemy.exc import SQLAlchemyError

    assert reason(SQLAlchemyError("boom\n[SQL: INSERT ...]")) == "boom"
    assert reason(SQLAlchemyError("")) == "SQLAlchemyError"


def test_raw_sql_on_the_engine(store: Store) -> None:
    """The engine is usable directly (the server's readiness probe may use it)."""
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def test_naive_times_are_refused() -> None:
    """The store only takes aware datetimes, so nothing is stored in local time by mistake."""
    from datetime import UTC, datetime

    from sqlalchemy.dialects import postgresql, sqlite

    from tallinn.ops.schema import UTCDateTime

    column = UTCDateTime()
    with pytest.raises(TypeError, match="naive"):
        column.process_bind_param(datetime(2026, 1, 1), sqlite.dialect())
    assert column.process_bind_param(None, sqlite.dialect()) is None
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert column.process_bind_param(aware, postgresql.dialect()) == aware


def test_store_with_a_naive_clock_fails_cleanly(store: Store) -> None:
    from datetime import datetime

    naive = Store(store.engine, clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(StoreError, match="naive"):
        naive.create_token("ci")
