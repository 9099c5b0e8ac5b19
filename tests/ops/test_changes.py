"""Change announcements: heard at once on a real PostgreSQL, by polling on SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from tallinn.ops.changes import RESYNC, TOPIC_MAX, ChangeListener, announce
from tallinn.ops.engine import make_engine, resolve_url

# Long enough that a test which passes only by polling would stand out, short enough that a
# broken listener fails the test rather than hanging it.
SLOW_POLL = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def heard_within(listener: ChangeListener, wanted: str) -> set[str]:
    """Everything `listener` hears until `wanted` is among it (bounded by a few polls)."""
    heard: set[str] = set()
    for _ in range(3):
        heard |= listener.wait()
        if wanted in heard:
            break
    return heard


def test_sqlite_has_no_one_to_tell(tmp_path: Path) -> None:
    """On SQLite an announcement is a no-op and a listener simply polls."""
    url = resolve_url(f"sqlite:///{tmp_path / 'state.db'}")
    engine = make_engine(url)
    with engine.begin() as connection:
        announce(connection, "channel:production")
    engine.dispose()
    clock = FakeClock()
    listener = ChangeListener(url, poll=2.0, clock=clock)
    assert not listener.listens
    listener.start()
    assert listener.wait(timeout=0) == set()
    listener.close()


def test_wait_returns_when_the_poll_is_due() -> None:
    """With nothing heard, wait() gives an empty set once its poll interval has passed."""
    clock = FakeClock()
    listener = ChangeListener("sqlite://", poll=5.0, clock=clock)
    timer = threading.Timer(0.05, lambda: setattr(clock, "now", 10.0))
    timer.start()
    # The condition wakes on its own timeout (the real 5 s at most) and sees the moved clock.
    assert listener.wait(timeout=0.2) == set()
    timer.join()


@pytest.mark.parametrize("topic", ["", "x" * (TOPIC_MAX + 1)])
def test_a_topic_out_of_bounds_is_refused(topic: str, tmp_path: Path) -> None:
    """An empty or over-long topic is a programming error, told at once."""
    engine = make_engine(resolve_url(f"sqlite:///{tmp_path / 'state.db'}"))
    with engine.begin() as connection, pytest.raises(ValueError, match="change topic"):
        announce(connection, topic)
    engine.dispose()


def test_a_listener_needs_a_positive_poll() -> None:
    """A zero or negative poll interval is refused."""
    with pytest.raises(ValueError, match="poll interval"):
        ChangeListener("sqlite://", poll=0)


@pytest.mark.postgres
def test_every_listener_hears_a_committed_change(pg_database: str) -> None:
    """Two listeners (two replicas) both hear a change announced in a committed transaction,
    long before their poll would have woken them; a rolled-back one is never heard."""
    url = resolve_url(pg_database)
    engine = make_engine(url)
    with ChangeListener(url, poll=SLOW_POLL) as first, \
            ChangeListener(url, poll=SLOW_POLL) as second:
        assert first.listens
        for listener in (first, second):
            assert listener.connected.wait(30), "the listener did not connect"
            assert listener.wait() == {RESYNC}
        with engine.connect() as connection:
            transaction = connection.begin()
            announce(connection, "channel:never")
            transaction.rollback()
        with engine.begin() as connection:
            announce(connection, "channel:production")
        for listener in (first, second):
            heard = heard_within(listener, "channel:production")
            assert "channel:production" in heard
            assert "channel:never" not in heard
    engine.dispose()


@pytest.mark.postgres
def test_a_listener_reconnects_and_asks_for_a_resync(pg_database: str) -> None:
    """When its connection is killed, the listener reconnects, reports RESYNC (it may have
    missed something) and then hears announcements again."""
    url = resolve_url(pg_database)
    engine = make_engine(url)
    with ChangeListener(url, poll=SLOW_POLL) as listener:
        assert listener.connected.wait(30)
        assert listener.wait() == {RESYNC}
        with engine.begin() as connection:
            killed = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()")).scalar_one()
        assert killed == 1
        assert RESYNC in heard_within(listener, RESYNC)
        assert listener.reconnects >= 1
        with engine.begin() as connection:
            announce(connection, "rollout:7")
        assert "rollout:7" in heard_within(listener, "rollout:7")
    engine.dispose()
