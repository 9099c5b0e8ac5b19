"""Token checks through the database driver alone (`tallinn.ops.verifier`), on SQLite and
PostgreSQL, against the full store on the same database: the same answers, the same rows
written, the same errors when the store is down or its table is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.ops.conftest import FakeClock
from tests.serve.serve_helpers import wait_until

from tallinn.ops import engine, migrate
from tallinn.ops.errors import StoreError
from tallinn.ops.records import TokenIdentity
from tallinn.ops.store import REVOCATION_POLL, Store, open_store
from tallinn.ops.verifier import DirectTokens, Target, default_sqlite_path, direct_target
from tallinn.settings import starter_path


def _direct(url: str, clock: FakeClock | None = None, **kwargs: timedelta) -> DirectTokens:
    target = direct_target(url)
    assert target is not None, url
    tokens = DirectTokens(target, clock=clock, **kwargs)
    tokens.database.open()
    return tokens


def test_tokens_verify_as_the_store_verifies_them(store: Store, store_url: str) -> None:
    """A token the store made verifies to its name and role; a wrong, revoked, malformed or
    unknown one is None, as the store answers."""
    reader = store.create_token("ci")
    admin = store.create_token("root", role="admin")
    gone = store.create_token("old")
    store.revoke_token("old")
    tokens = _direct(store_url, cache_ttl=timedelta(0))
    try:
        assert tokens.verify_token(reader) == "ci"
        assert tokens.verify_token_role(admin) == TokenIdentity("root", "admin")
        wrong = reader[:-1] + ("A" if reader[-1] != "A" else "B")
        unknown = "tln_0123456789abcdef_" + "s" * 43
        for refused in (wrong, gone, unknown, "nonsense", f" {reader}"):
            assert tokens.verify_token(refused) is None
            assert tokens.verify_token(refused) == store.verify_token(refused)
        assert tokens.verify_token_role(gone) is None
        assert tokens.verify_token(123) is None  # type: ignore[arg-type]
    finally:
        tokens.database.close()


def test_last_used_is_written_as_the_store_reads_it(store: Store, store_url: str,
                                                    clock: FakeClock) -> None:
    """The time a check marks a token used reads back through the store as that very time,
    and is written again only a minute later."""
    token = store.create_token("ci")
    tokens = _direct(store_url, clock, cache_ttl=timedelta(0))
    try:
        assert tokens.verify_token(token) == "ci"
        assert store.list_tokens()[0].last_used_at == clock.now
        first = clock.now
        clock.advance(seconds=30)
        assert tokens.verify_token(token) == "ci"
        assert store.list_tokens()[0].last_used_at == first
        clock.advance(seconds=31)
        assert tokens.verify_token(token) == "ci"
        assert store.list_tokens()[0].last_used_at == clock.now
    finally:
        tokens.database.close()


def test_security_events_are_written_as_the_store_writes_them(store: Store, store_url: str,
                                                              clock: FakeClock) -> None:
    """An event recorded through the driver reads back through the store as the store's own
    record of it would: its time, kind, client and detail, cut and cleaned the same way; a
    kind that is not a short word is refused before anything is written."""
    tokens = _direct(store_url, clock)
    try:
        hostile = "x\x00" * 1500
        tokens.record_event("auth_failure", client="ip:10.0.0.7", detail="unknown token")
        clock.advance(seconds=1)
        tokens.record_event("path_traversal", client=hostile, detail=hostile)
        clock.advance(seconds=1)
        store.record_event("path_traversal", client=hostile, detail=hostile)
        with pytest.raises(ValueError, match="short word"):
            tokens.record_event("DROP TABLE", client=None)
        newest, mine, first = store.events()
        assert (first.kind, first.client, first.detail) == (
            "auth_failure", "ip:10.0.0.7", "unknown token")
        assert first.occurred_at == clock.now - timedelta(seconds=2)
        assert (mine.kind, mine.client, mine.detail) == (newest.kind, newest.client,
                                                         newest.detail)
        assert mine.occurred_at == clock.now - timedelta(seconds=1)
        assert (len(mine.client or ""), len(mine.detail), "\x00" in mine.detail) == (
            255, 2000, False)
    finally:
        tokens.database.close()


def test_a_revocation_elsewhere_is_seen_at_the_next_poll(store: Store, store_url: str,
                                                         clock: FakeClock) -> None:
    """A token revoked through the store is answered from memory until the next revocation
    poll, and refused from then on; the others stay valid."""
    token, other = store.create_token("ci"), store.create_token("cd")
    tokens = _direct(store_url, clock)
    try:
        assert tokens.cached_token(token) is None  # never verified here
        assert tokens.verify_token(token) == "ci"
        assert tokens.verify_token(other) == "cd"
        assert tokens.cached_token(token) == "ci"
        assert store.revoke_token("ci")
        assert tokens.verify_token(token) == "ci"  # cached, no poll due yet
        clock.advance(seconds=REVOCATION_POLL.total_seconds())
        assert tokens.cached_token(token) is None  # a poll is due: verify
        assert tokens.verify_token(token) is None
        assert tokens.verify_token(other) == "cd"
    finally:
        tokens.database.close()


def test_a_missing_table_fails_as_the_store_fails(store_url: str) -> None:
    """With the tokens table gone, a check raises the store's very StoreError: fail closed."""
    with open_store(store_url) as store:
        with store.database.transaction("drop the tokens") as connection:
            connection.execute(text("DROP TABLE tokens"))
        token = "tln_0123456789abcdef_" + "s" * 43
        with pytest.raises(StoreError) as full:
            store.verify_token(token)
        tokens = _direct(store_url)
        try:
            with pytest.raises(StoreError) as direct:
                tokens.verify_token(token)
        finally:
            tokens.database.close()
    assert (direct.value.code, str(direct.value)) == (full.value.code, str(full.value))
    assert "tokens" in str(direct.value)


def test_an_unreachable_postgresql_is_not_ready_and_refuses_checks() -> None:
    """A PostgreSQL that does not answer: health says store_unavailable without the password,
    checks raise StoreError, and a closed verifier says store_closed."""
    target = direct_target("postgresql://u:secret@127.0.0.1:1/db")
    assert target is not None
    tokens = DirectTokens(target)
    with pytest.raises(StoreError) as opening:
        tokens.database.open()
    health = tokens.database.health()
    assert (health.ok, health.code) == (False, "store_unavailable")
    assert "secret" not in health.message
    assert "secret" not in str(opening.value)
    assert tokens.database.url == "postgresql+psycopg://u:***@127.0.0.1:1/db"
    with pytest.raises(StoreError):
        tokens.verify_token("tln_0123456789abcdef_" + "s" * 43)
    tokens.database.close()
    assert tokens.database.health().code == "store_closed"
    assert not tokens.database.ping()
    with pytest.raises(StoreError) as closed:
        tokens.verify_token("tln_0123456789abcdef_" + "s" * 43)
    assert closed.value.code == "store_closed"


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def test_a_deleted_file_is_missing_until_one_is_back(tmp_path: Path) -> None:
    """A SQLite file deleted under the verifier is store_missing (not silently made again),
    and a store made again at the path is used without reopening by hand."""
    path = tmp_path / ".tallinn" / "state.db"
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        old = store.create_token("old")
    tokens = _direct(url)
    try:
        assert tokens.verify_token(old) == "old"
        _remove_sqlite(path)
        health = tokens.database.health()
        assert (health.ok, health.code) == (False, "store_missing")
        assert "was deleted while in use" in health.message
        with pytest.raises(StoreError) as refused:
            tokens.verify_token(old)
        assert refused.value.code == "store_missing"
        assert not path.exists()
        with open_store(url) as store:
            new = store.create_token("new")
        wait_until(lambda: tokens.database.health().ok)
        assert tokens.verify_token(new) == "new"
        assert tokens.verify_token(old) is None  # the old store's tokens went with it
    finally:
        tokens.database.close()


def test_a_replaced_file_is_reopened(tmp_path: Path) -> None:
    """Another database moved to the path is opened at the next check: its tokens count."""
    path, other = tmp_path / "state.db", tmp_path / "other.db"
    with open_store(f"sqlite:///{path}") as store:
        first = store.create_token("first")
    with open_store(f"sqlite:///{other}") as store:
        second = store.create_token("second")
    tokens = _direct(f"sqlite:///{path}")
    try:
        assert tokens.verify_token(first) == "first"
        _remove_sqlite(path)
        shutil.move(other, path)
        assert tokens.database.health().ok
        assert tokens.verify_token(second) == "second"
        assert tokens.verify_token(first) is None
    finally:
        tokens.database.close()


def test_a_path_that_cannot_exist_is_retried_until_it_can(tmp_path: Path) -> None:
    """A folder that is a file is store_path, failing fast between tries; once it is gone the
    verifier opens, migrating the new file in a child process."""
    blocker = tmp_path / "state"
    blocker.write_text("in the way", encoding="utf-8")
    tokens = DirectTokens(Target("sqlite", f"{blocker}/state.db", f"sqlite:///{blocker}/state.db"))
    try:
        with pytest.raises(StoreError) as opening:
            tokens.database.open()
        assert opening.value.code == "store_path"
        with pytest.raises(StoreError) as again:
            tokens.verify_token("tln_0123456789abcdef_" + "s" * 43)
        assert again.value.code == "store_path"
        blocker.unlink()
        wait_until(lambda: tokens.database.health().ok)
        with open_store(f"sqlite:///{blocker}/state.db") as store:
            assert migrate._stored_revision(store.engine) == migrate.HEAD
            token = store.create_token("ci")
        assert tokens.verify_token(token) == "ci"
    finally:
        tokens.database.close()


def test_a_fresh_store_is_migrated_in_a_child_and_the_parent_loads_no_sqlalchemy(
    store_url: str,
) -> None:
    """Opening an empty database migrates it to head in a child process; the verifying
    process imports neither SQLAlchemy nor Alembic, on SQLite and PostgreSQL alike."""
    child = (
        "import json, sys\n"
        "from tallinn.ops.verifier import DirectTokens, direct_target\n"
        "tokens = DirectTokens(direct_target(sys.argv[1]))\n"
        "tokens.database.open()\n"
        "unknown = 'tln_0123456789abcdef_' + 's' * 43\n"
        "found = [tokens.verify_token(unknown), tokens.database.ping()]\n"
        "tokens.database.close()\n"
        "print(json.dumps([found, sorted({m.split('.')[0] for m in sys.modules} & "
        "{'sqlalchemy', 'alembic'})]))\n"
    )
    done = subprocess.run([sys.executable, "-c", child, store_url], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[None, True], []]
    with open_store(store_url) as store:
        assert migrate._stored_revision(store.engine) == migrate.HEAD


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////srv/state.db", ("sqlite", "/srv/state.db", "sqlite:////srv/state.db")),
        ("sqlite:///rel/state.db", ("sqlite", "rel/state.db", "sqlite:///rel/state.db")),
        ("postgresql://app:pw@db:5433/prompts",
         ("postgresql", "postgresql://app:pw@db:5433/prompts",
          "postgresql+psycopg://app:pw@db:5433/prompts")),
        ("postgres://app@db/prompts?sslmode=require",
         ("postgresql", "postgresql://app@db/prompts?sslmode=require",
          "postgresql+psycopg://app@db/prompts?sslmode=require")),
        ("postgresql+psycopg://app@db/prompts",
         ("postgresql", "postgresql://app@db/prompts", "postgresql+psycopg://app@db/prompts")),
    ],
)
def test_urls_the_driver_reads(url: str, expected: tuple[str, str, str]) -> None:
    """Plain SQLite files and PostgreSQL URLs go to the driver, as SQLAlchemy would open them."""
    target = direct_target(url)
    assert target is not None
    assert (target.dialect, target.where, target.url) == expected


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "sqlite:///file:x.db?mode=ro&uri=true",
     "sqlite:///a%20b.db", "sqlite:///~/state.db", "postgresql+psycopg2://app@db/x",
     "postgresql://app@db:port/x", "mysql://app@db/x", "nonsense://", "no url at all"],
)
def test_urls_left_to_the_full_store(url: str) -> None:
    """Anything else is left to the full store (None), which opens it or says why not."""
    assert direct_target(url) is None


def test_the_default_store_is_where_the_full_store_puts_it(tmp_path: Path) -> None:
    """No URL: the library's .tallinn/state.db, or the current folder's for the starter."""
    for root in (tmp_path, starter_path(), None):
        target = direct_target(None, root)
        assert target is not None
        assert Path(target.where) == engine.default_sqlite_path(root)
        assert Path(target.where) == default_sqlite_path(root)
        assert target.label == Store(engine.make_engine(engine.resolve_url(None, root))).url


def test_the_verifier_agrees_with_the_store_on_its_settings(store_url: str) -> None:
    """The settings the verifier keeps beside the store's own are the same values, and it
    names a database as the store does."""
    from tallinn.ops import verifier

    assert verifier.HEAD == migrate.HEAD
    assert verifier.CHILD_URL == migrate.CHILD_URL
    assert verifier.CHILD_TIMEOUT_S == migrate.CHILD_TIMEOUT_S
    assert verifier.SQLITE_BUSY_TIMEOUT_MS == engine.SQLITE_BUSY_TIMEOUT_MS
    assert verifier.PG_CONNECT_TIMEOUT_S == engine.PG_CONNECT_TIMEOUT_S
    assert (verifier.STATE_DIR, verifier.STATE_FILE) == (engine.STATE_DIR, engine.STATE_FILE)
    tokens = _direct(store_url)
    try:
        with open_store(store_url) as store:
            assert tokens.database.url == store.url
            assert tokens.target.dialect == store.dialect
    finally:
        tokens.database.close()


@pytest.mark.postgres
def test_a_lost_postgresql_connection_is_made_again(pg_database: str) -> None:
    """A connection the server ended (a restart, an idle timeout) costs no failed check: the
    check runs again on a new connection, as the store's pool does."""
    with open_store(pg_database) as store:
        token = store.create_token("ci")
        tokens = _direct(pg_database, cache_ttl=timedelta(0))
        try:
            assert tokens.verify_token(token) == "ci"
            with store.database.transaction("end the verifier's connection") as connection:
                ended = connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all()
            assert ended
            assert tokens.verify_token(token) == "ci"
        finally:
            tokens.database.close()
