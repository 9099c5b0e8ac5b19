"""The audit log is a hash chain: verify names the first entry edited, deleted or inserted."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from tests.ops.conftest import FakeClock

from tallinn.ops.audit_log import GENESIS, entry_hash
from tallinn.ops.schema import audit_log
from tallinn.ops.store import Store


@pytest.fixture
def logged(clocked: Store, clock: FakeClock) -> Store:
    """A store whose audit log holds five entries, a minute apart."""
    for i in range(1, 4):
        clocked.releases.create({"tallinn.toml": f"v{i}".encode()}, actor="ci", notes=f"n{i}")
        clock.advance(minutes=1)
    clocked.channels.promote("1", actor="alice", reason="first")
    clock.advance(minutes=1)
    clocked.channels.promote("2", actor="bob", reason="second")
    return clocked


def test_every_change_is_an_entry_chained_to_the_one_before(logged: Store) -> None:
    """Each entry holds the hash of the previous one; the first follows 64 zeros."""
    entries = logged.audit_log.entries()
    assert [(e.seq, e.action, e.subject) for e in entries] == [
        (1, "release", "1"), (2, "release", "2"), (3, "release", "3"),
        (4, "promote", "production"), (5, "promote", "production")]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert (entries[4].from_ref, entries[4].to_ref, entries[4].actor) == ("1", "2", "bob")
    assert logged.audit_log.verify().ok


def test_since_keeps_the_later_entries(logged: Store, clock: FakeClock) -> None:
    """`entries(since)` leaves out what happened before `since`."""
    assert [e.seq for e in logged.audit_log.entries(clock.now - timedelta(minutes=1))] == [4, 5]


def test_an_edited_entry_is_named(logged: Store) -> None:
    """Changing the reason of entry 4 in the database breaks the chain at entry 4."""
    with logged.engine.begin() as connection:
        connection.execute(update(audit_log).where(audit_log.c.seq == 4)
                           .values(reason="nothing to see"))
    found = logged.audit_log.verify()
    assert (found.ok, found.bad_seq) == (False, 4)
    assert "edited" in found.problem


def test_a_deleted_entry_is_named(logged: Store) -> None:
    """Deleting entry 2 breaks the chain at entry 3, which follows nothing now."""
    with logged.engine.begin() as connection:
        connection.execute(delete(audit_log).where(audit_log.c.seq == 2))
    found = logged.audit_log.verify()
    assert (found.ok, found.bad_seq) == (False, 3)
    assert found.problem == "entry 2 deleted, or entry 3 renumbered"


def test_an_inserted_entry_is_named(logged: Store) -> None:
    """An entry slipped in between 2 and 3 (3 onwards renumbered, its own hash right) is
    found where the chain no longer follows."""
    entries = logged.audit_log.entries()
    with logged.engine.begin() as connection:
        for entry in reversed(entries[2:]):
            connection.execute(update(audit_log).where(audit_log.c.seq == entry.seq)
                               .values(seq=entry.seq + 1, prev_hash=f"moved{entry.seq}"))
        forged = {"seq": 3, "at": entries[1].at, "actor": "mallory", "action": "promote",
                  "subject": "production", "from_ref": None, "to_ref": "3",
                  "reason": "trust me", "details": "{}", "prev_hash": entries[1].hash}
        connection.execute(insert(audit_log).values(**forged, hash=entry_hash(
            forged["prev_hash"], 3, entries[1].at, "mallory", "promote", "production", None,
            "3", "trust me", "{}")))
    found = logged.audit_log.verify()
    assert (found.ok, found.bad_seq) == (False, 4)


def test_the_database_refuses_a_second_entry_after_the_same_one(logged: Store) -> None:
    """Two entries cannot both follow entry 5: the chain cannot fork, lock or not."""
    last = logged.audit_log.entries()[-1]
    with pytest.raises(IntegrityError), logged.engine.begin() as connection:
        connection.execute(insert(audit_log).values(
            seq=7, at=last.at, actor="x", action="promote", subject="p", reason="r",
            details="{}", prev_hash=last.prev_hash, hash="0" * 64))
    with logged.engine.connect() as connection:
        assert connection.execute(select(audit_log.c.seq)).scalars().all() == [1, 2, 3, 4, 5]
