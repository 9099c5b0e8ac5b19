"""Channels point at releases; moves are compare-and-set, recorded in history and audit log."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.ops.concurrency import race

from tallinn.ops.errors import ChannelConflictError, ReleaseError, ReleaseNotFoundError
from tallinn.ops.records import Release
from tallinn.ops.store import Store


def three(store: Store) -> list[Release]:
    return [store.releases.create({"tallinn.toml": f"v{i}".encode()}, actor="ci")
            for i in range(1, 4)]


def test_promote_points_a_channel_and_keeps_its_history(store: Store) -> None:
    """Each promotion moves the channel and adds who, why, from and to to its history."""
    _one, two, _ = three(store)
    store.channels.promote("1", actor="alice", reason="first")
    store.channels.promote(two.id[:6], actor="bob", reason="second")
    state = store.channels.current()
    assert state is not None
    assert (state.release.id, state.moved_by) == (two.id, "bob")
    history = store.channels.history()
    assert [(m.action, m.from_release and m.from_release.version, m.to_release.version,
             m.actor, m.reason) for m in history] == [
        ("promote", "1", "2", "bob", "second"), ("promote", None, "1", "alice", "first")]
    assert store.channels.current("staging") is None


def test_channels_are_independent(store: Store) -> None:
    """Promoting to staging leaves production where it was."""
    three(store)
    store.channels.promote("1", actor="a", reason="prod")
    store.channels.promote("3", channel="staging", actor="a", reason="try")
    assert {c.name: c.release.version for c in store.channels.all()} == {
        "production": "1", "staging": "3"}


def test_rollback_walks_back_through_promotions(store: Store) -> None:
    """Rolling back goes to the release the current one replaced, twice over, then stops."""
    three(store)
    for version in ("1", "2", "3"):
        store.channels.promote(version, actor="a", reason=f"go {version}")
    assert store.channels.rollback(actor="b", reason="bad").to_release.version == "2"
    assert store.channels.rollback(actor="b", reason="worse").to_release.version == "1"
    with pytest.raises(ReleaseError, match="had no release before 1"):
        store.channels.rollback(actor="b", reason="again")
    assert store.channels.rollback("3", actor="b", reason="fixed after all") \
        .to_release.version == "3"


def test_a_stale_move_is_refused_naming_who_moved_it(store: Store) -> None:
    """A move based on an old view of the channel changes nothing and says what happened."""
    one, two, _ = three(store)
    store.channels.promote("1", actor="alice", reason="first")
    seen = one
    store.channels.promote("2", actor="bob", reason="meanwhile")
    before = store.channels.history()
    with pytest.raises(ChannelConflictError,
                       match=r"channel production moved to 2 \(.*\) by bob at .*; nothing "):
        store.channels.promote("3", actor="carol", reason="late", expected=seen)
    assert store.channels.history() == before
    current = store.channels.current()
    assert current is not None
    assert current.release.id == two.id


@pytest.mark.parametrize(("move", "message"), [
    (lambda s: s.channels.promote("9", actor="a", reason="x"), "no release '9'"),
    (lambda s: s.channels.promote("1", actor="a", reason="   "), "must say why"),
    (lambda s: s.channels.promote("1", channel="Prod!", actor="a", reason="x"),
     "invalid channel name"),
    (lambda s: s.channels.rollback(channel="staging", actor="a", reason="x"),
     "channel staging has no release yet"),
    (lambda s: s.channels.promote("2", actor="a", reason="x"), "points at 2 .* already"),
])
def test_bad_moves_write_nothing(store: Store, move: Callable[[Store], object],
                                 message: str) -> None:
    """An unknown release, an empty reason, a bad name, an empty channel: nothing written."""
    three(store)
    store.channels.promote("2", actor="a", reason="start")
    entries = len(store.audit_log.entries())
    with pytest.raises((ReleaseError, ReleaseNotFoundError), match=message):
        move(store)
    assert len(store.audit_log.entries()) == entries
    assert len(store.channels.history()) == 1


@pytest.mark.parametrize("action", ["rollback", "promote"])
def test_of_people_acting_at_once_one_wins_and_the_others_are_told(
        store: Store, store_url: str, action: str) -> None:
    """Concurrent moves from the same view of the channel: exactly one changes it."""
    _one, two, _ = three(store)
    store.channels.promote("1", actor="a", reason="start")
    store.channels.promote("2", actor="a", reason="then")
    seen = two

    def act(opened: Store, i: int) -> object:
        if action == "rollback":
            return opened.channels.rollback(actor=f"p{i}", reason="bad", expected=seen)
        return opened.channels.promote("3" if i % 2 else "1", actor=f"p{i}", reason="go",
                                       expected=seen)

    outcomes = race(store_url, 4, act)
    won = [o for o in outcomes if not isinstance(o, Exception)]
    told = [o for o in outcomes if isinstance(o, ChannelConflictError)]
    assert len(won) == 1, outcomes
    assert len(told) == 3, outcomes
    assert all("nothing changed" in str(t) for t in told)
    assert len(store.channels.history()) == 3
    assert store.audit_log.verify().ok


def test_concurrent_writers_never_fork_the_audit_chain(store: Store, store_url: str) -> None:
    """Many writers at once leave one unbroken chain with one entry each."""
    three(store)

    def act(opened: Store, i: int) -> object:
        return opened.channels.promote(str(1 + i % 3), channel=f"c{i}", actor=f"p{i}",
                                       reason="parallel")

    outcomes = race(store_url, 6, act)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    entries = store.audit_log.entries()
    assert [e.seq for e in entries] == list(range(1, 10))
    assert store.audit_log.verify().ok
