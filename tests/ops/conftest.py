"""Store fixtures: every store test runs on SQLite and, when TALLINN_TEST_PG is set, PostgreSQL.

Start a throw-away PostgreSQL with `eval "$(bash scripts/postgres.sh start)"`. Each test gets
its own fresh database (SQLite: a file in tmp_path; PostgreSQL: a new database, dropped after).
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tallinn.ops.store import Store, open_store

PG_URL = os.environ.get("TALLINN_TEST_PG", "")
NO_PG = (
    "PostgreSQL store tests need TALLINN_TEST_PG; "
    'start one with: eval "$(bash scripts/postgres.sh start)"'
)


class FakeClock:
    """A clock the test moves by hand: `clock.advance(seconds=61)`."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; its URL."""
    if not PG_URL:
        pytest.skip(NO_PG)
    name = f"tallinn_t_{secrets.token_hex(6)}"
    admin = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def clocked(store: Store, clock: FakeClock) -> Store:
    """The same database as `store`, seen through a store on the fake clock."""
    return Store(store.engine, clock=clock)


def write_at_once(writers: Sequence[Callable[[], object]], times: int) -> list[BaseException]:
    """Start every writer at the same moment, in a thread each, and have each write `times`
    times; what they raised (nothing, when all went well)."""
    barrier = threading.Barrier(len(writers))
    failures: list[BaseException] = []

    def write(writer: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            for _ in range(times):
                writer()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return failures
