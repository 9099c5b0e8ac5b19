"""Schema migrations: idempotent, safe under concurrent starts, in step with schema.py."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, text

from tallinn.ops import Store, StoreError, TokenExistsError, migrate, open_store
from tallinn.ops.engine import make_engine, resolve_url
from tallinn.ops.schema import metadata, tokens
from tallinn.ops.tokens import generate

TABLES = {"tokens", "security_events", "blobs", "releases", "release_files", "channels",
          "channel_history", "audit_log", "rollouts", "rollout_signals", "rollout_ratings",
          "error_groups", "error_group_releases", "error_samples", "release_hours",
          migrate.VERSION_TABLE}


def test_open_migrates_an_empty_database_to_head(store_url: str) -> None:
    """The first open creates every table and records the head revision."""
    with open_store(store_url) as store:
        assert set(inspect(store.engine).get_table_names()) == TABLES
        state = migrate.revisions(store.engine)
        assert state.current == state.head == migrate.head_revision()
        assert state.up_to_date


def test_opening_twice_is_a_no_op(store_url: str) -> None:
    """A second open finds the schema at head, and the data is untouched."""
    with open_store(store_url) as first:
        token = first.create_token("ci")
    with open_store(store_url) as second:
        assert second.verify_token(token) == "ci"
        assert migrate.upgrade(second.engine) == (migrate.head_revision(),) * 2


def test_concurrent_opens_of_an_empty_database(store_url: str) -> None:
    """Replicas starting at once: one migrates under the lock, the others wait and find it done."""
    barrier = threading.Barrier(6)
    stores: list[Store] = []
    failures: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(timeout=30)
            stores.append(open_store(store_url))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert failures == []
        assert len(stores) == 6
        token = stores[0].create_token("ci")
        assert all(store.verify_token(token) == "ci" for store in stores)
        with stores[0].engine.connect() as connection:
            versions = connection.execute(
                text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")
            ).all()
        assert [v[0] for v in versions] == [migrate.head_revision()]
    finally:
        for store in stores:
            store.close()


# Indexes on expressions are compared as SQL text, which each database rewrites its own way
# (PostgreSQL adds casts and parentheses; SQLite cannot reflect them at all). What they
# enforce is tested by behaviour instead: test_ops_store.test_duplicate_active_name_is_an_error.
EXPRESSION_INDEXES = {"uq_tokens_active_name"}


def _compared(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
    return not (kind == "index" and name in EXPRESSION_INDEXES)


@pytest.mark.filterwarnings(
    "ignore:Skipped unsupported reflection of expression-based index:sqlalchemy.exc.SAWarning",
    "ignore:autogenerate skipping metadata-specified expression-based index:UserWarning",
)
def test_schema_module_matches_the_migrations(store: Store) -> None:
    """schema.py describes exactly what the migrations build (autogenerate finds no change)."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "version_table": migrate.VERSION_TABLE,
                "compare_type": True,
                "include_object": _compared,
            },
        )
        assert compare_metadata(context, metadata) == []


def test_expression_indexes_exist_as_unique_indexes(store: Store) -> None:
    """The indexes left out of the comparison above are there, and unique."""
    with store.engine.connect() as connection:
        if store.engine.dialect.name == "sqlite":
            rows = connection.exec_driver_sql("PRAGMA index_list(tokens)").all()
            unique = {row[1] for row in rows if row[2]}
        else:
            rows = connection.execute(
                text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tokens'")
            ).all()
            unique = {row[0] for row in rows if row[1].startswith("CREATE UNIQUE INDEX")}
    assert unique >= EXPRESSION_INDEXES


def test_tokens_made_before_revision_0002_keep_their_names(store_url: str) -> None:
    """A store at revision 0001, with a name both revoked and active, upgrades with it intact."""
    with open_store(store_url) as store:
        with store.engine.connect() as connection:
            command.downgrade(migrate._config(connection), "0001")
            connection.commit()
        # Only the columns 0001 has: today's code writes one more.
        old, active = generate(), generate()
        with store.engine.begin() as connection:
            for new, revoked in ((old, store.rollouts.now()), (active, None)):
                connection.execute(insert(tokens).values(
                    token_id=new.token_id, name="ci", secret_hash=new.secret_hash,
                    created_at=store.rollouts.now(), revoked_at=revoked))
        assert migrate.upgrade(store.engine) == ("0001", migrate.head_revision())
        assert store.verify_token(active.token) == "ci"
        with pytest.raises(TokenExistsError):
            store.create_token("ci")
        assert [t.active for t in store.list_tokens()] == [False, True]


def test_downgrade_and_upgrade_again(store: Store) -> None:
    """Every migration can be undone, and redone on the emptied database."""
    with store.engine.connect() as connection:
        command.downgrade(migrate._config(connection), "base")
        connection.commit()
    assert set(inspect(store.engine).get_table_names()) == {migrate.VERSION_TABLE}
    assert migrate.current_revision(store.engine) is None
    assert migrate.upgrade(store.engine) == (None, migrate.head_revision())
    assert store.list_tokens() == []


def test_database_from_a_newer_tallinn_is_refused(store_url: str) -> None:
    """A schema revision this code does not know stops the open with a clear error."""
    with open_store(store_url) as store, store.engine.begin() as connection:
        connection.execute(text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = 'ffff'"))
    expected = r"state store .*: cannot open it: .*revision ffff, which this version"
    with pytest.raises(StoreError, match=expected):
        open_store(store_url)


def test_current_revision_of_a_never_migrated_database(store_url: str) -> None:
    """A database without the version table is at no revision."""
    engine = make_engine(resolve_url(store_url))
    try:
        assert migrate.current_revision(engine) is None
        assert not migrate.revisions(engine).up_to_date
    finally:
        engine.dispose()


def test_migrations_keep_alembic_info_out_of_the_logs(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Opening a store logs no Alembic INFO lines, unless Alembic's level was set on purpose."""
    alembic_logger = logging.getLogger("alembic")
    saved = alembic_logger.level
    alembic_logger.setLevel(logging.NOTSET)
    try:
        with caplog.at_level(logging.INFO), open_store(store_url):
            pass
        assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []
        alembic_logger.setLevel(logging.INFO)
        with caplog.at_level(logging.INFO), open_store(store_url) as store:
            migrate.current_revision(store.engine)
        assert any(r.name.startswith("alembic") for r in caplog.records)
    finally:
        alembic_logger.setLevel(saved)


def test_head_names_the_newest_migration() -> None:
    """HEAD, which spares an up-to-date database Alembic, is the newest migration script."""
    assert migrate.head_revision() == migrate.HEAD


def test_an_up_to_date_store_opens_without_alembic(store_url: str) -> None:
    """Reopening a store at head reads the revision with plain SQL and never imports Alembic."""
    open_store(store_url).close()
    code = (
        "import sys; from tallinn.ops import open_store; "
        f"open_store({store_url!r}).close(); print('alembic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_sqlite_store_never_loads_the_postgresql_dialect(tmp_path: Path) -> None:
    """The schema names no dialect, so SQLite users do not pay for PostgreSQL's (2 MB, 20 ms).

    (Creating the database runs the first migration, which still names both.)
    """
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_store(url).close()
    code = (
        "import sys; from tallinn.ops import open_store; "
        f"s = open_store({url!r}); s.create_token('ci'); s.close(); "
        "print('sqlalchemy.dialects.postgresql' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_a_server_migrates_in_a_child_and_never_loads_alembic(store_url: str) -> None:
    """A store opened for a long-running server brings a new database to head from a child
    process: the serving process never imports Alembic, and the schema is complete."""
    url = store_url
    script = (
        "import sys\n"
        "from tallinn.ops.store import connect_store\n"
        "store = connect_store(sys.argv[1], isolated_migrations=True)\n"
        "store.open()\n"
        "token = store.create_token('child-migrated')\n"
        "assert store.verify_token(token) == 'child-migrated'\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    engine = make_engine(resolve_url(url, None))
    with engine.connect() as connection:
        stored = connection.execute(
            text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalar()
    engine.dispose()
    assert stored == migrate.head_revision()


def test_a_migration_that_fails_in_the_child_is_one_line(tmp_path: Path) -> None:
    """A child that cannot migrate reports its last line as the StoreError."""
    folder = tmp_path / "plain-file"
    folder.write_text("not a folder\n", encoding="utf-8")
    engine = make_engine(resolve_url(f"sqlite:///{folder / 'state.db'}", None))
    with pytest.raises(StoreError, match=r"unable to open database file|cannot"):
        migrate.upgrade(engine, isolated=True)
