"""Stored rollouts: one per channel, compare-and-set changes, audit entries, signals, ratings."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.ops.concurrency import race
from tests.ops.conftest import FakeClock

from tallinn.ops.errors import ChannelConflictError, ReleaseError, ReleaseNotFoundError
from tallinn.ops.records import Release
from tallinn.ops.rollout import Phase, ReleaseTotals, RolloutPlan, SignalBatch, parse_plan
from tallinn.ops.rollout.signals import minute_of
from tallinn.ops.rollouts import RolloutConflictError, plan_from_json, plan_json
from tallinn.ops.schema import rollout_signals
from tallinn.ops.store import Store


def two(store: Store) -> tuple[Release, Release]:
    one = store.releases.create({"tallinn.toml": b"v1"}, actor="ci")
    second = store.releases.create({"tallinn.toml": b"v2"}, actor="ci")
    store.channels.promote("1", actor="ci", reason="first")
    return one, second


def small_plan(release: str = "2", **options: str) -> RolloutPlan:
    values = {"steps": "10,50,100", "hold": "1m", "min_requests": "100",
              "min_ratings": "0", **options}
    return parse_plan(release, channel="production", **values)


def test_a_plan_survives_the_store_unchanged() -> None:
    """A plan written as JSON reads back equal."""
    plan = parse_plan("7", channel="staging", steps="5,20,100", hold="30s,2h",
                      max_error_rate="2%", min_satisfaction="90%", min_requests="500",
                      min_ratings="60")
    assert plan_from_json(plan_json(plan)) == plan


def test_start_records_the_rollout_and_its_audit_entry(clocked: Store) -> None:
    """A start stores both releases at step 0 and writes one audit entry naming them."""
    one, second = two(clocked)
    rollout = clocked.rollouts.start(small_plan(), actor="alice", reason="new prompt")
    assert (rollout.stable.id, rollout.candidate.id) == (one.id, second.id)
    assert (rollout.state.phase, rollout.state.step, rollout.share) == (Phase.RUNNING, 0, 10)
    assert clocked.rollouts.active("production") == rollout
    entry = clocked.audit_log.entries()[-1]
    assert (entry.action, entry.actor, entry.from_ref, entry.to_ref, entry.reason) == (
        "rollout-start", "alice", "1", "2", "new prompt")
    assert json.loads(entry.details)["rollout"] == rollout.id


@pytest.mark.parametrize(("plan", "message"), [
    (lambda: small_plan("9"), "no release"),
    (lambda: small_plan("1"), "points at 1 .* already"),
    (lambda: parse_plan("2", channel="staging"), "channel staging has no release"),
])
def test_bad_starts_write_nothing(store: Store, plan: object, message: str) -> None:
    """An unknown release, the stable one again, a channel with no release: nothing written."""
    two(store)
    entries = len(store.audit_log.entries())
    with pytest.raises((ReleaseError, ReleaseNotFoundError), match=message):
        store.rollouts.start(plan(), actor="a", reason="go")  # type: ignore[operator]
    assert len(store.audit_log.entries()) == entries
    assert store.rollouts.latest("production") is None


def test_a_second_start_on_a_channel_is_refused(store: Store) -> None:
    """While a rollout is under way on a channel, another start is refused and writes nothing."""
    two(store)
    store.releases.create({"tallinn.toml": b"v3"}, actor="ci")
    store.rollouts.start(small_plan(), actor="a", reason="go")
    entries = len(store.audit_log.entries())
    with pytest.raises(ReleaseError, match="under way on production"):
        store.rollouts.start(small_plan("3"), actor="b", reason="go too")
    assert len(store.audit_log.entries()) == entries


def test_an_empty_reason_is_refused(store: Store) -> None:
    """Every change by hand needs a reason; an empty one changes nothing."""
    two(store)
    store.rollouts.start(small_plan(), actor="a", reason="go")
    with pytest.raises(ReleaseError, match="--reason"):
        store.rollouts.pause("production", actor="a", reason="  ")
    active = store.rollouts.active("production")
    assert active is not None
    assert active.state.phase is Phase.RUNNING


def test_steps_by_hand_end_in_the_channel_moving(clocked: Store, clock: FakeClock) -> None:
    """Advance, pause, resume, advance: the last step completes and points the channel at the
    candidate; each change is an audit entry with from/to shares."""
    _one, second = two(clocked)
    clocked.rollouts.start(small_plan(), actor="a", reason="go")
    assert clocked.rollouts.advance("production", actor="b", reason="looks fine").share == 50
    paused = clocked.rollouts.pause("production", actor="b", reason="weekend")
    assert (paused.state.phase, paused.share) == (Phase.PAUSED, 50)
    with pytest.raises(ReleaseError, match="resume it"):
        clocked.rollouts.advance("production", actor="b", reason="no")
    clock.advance(minutes=5)
    resumed = clocked.rollouts.resume("production", actor="b", reason="monday")
    assert resumed.state.step_started_at == clock.now
    done = clocked.rollouts.advance("production", actor="b", reason="all good")
    assert (done.state.phase, done.share, done.active) == (Phase.COMPLETED, 100, False)
    state = clocked.channels.current()
    assert state is not None
    assert state.release.id == second.id
    assert clocked.channels.history()[0].action == "rollout"
    actions = [(e.action, e.from_ref, e.to_ref) for e in clocked.audit_log.entries()[-5:]]
    assert actions == [("rollout-start", "1", "2"),
                       ("rollout-advance", "2 at 10%", "2 at 50%"),
                       ("rollout-pause", "2 at 50%", "2 at 50%"),
                       ("rollout-resume", "2 at 50%", "2 at 50%"),
                       ("rollout-complete", "2 at 50%", "2 at 100%")]
    assert clocked.rollouts.active("production") is None
    assert clocked.audit_log.verify().ok


@pytest.mark.parametrize("end", ["abort", "roll_back"])
def test_an_ended_rollout_serves_the_stable_release(store: Store, end: str) -> None:
    """Abort and rollback end the rollout at share 0; the channel stays at the stable release."""
    one, _ = two(store)
    store.rollouts.start(small_plan(), actor="a", reason="go")
    ended = getattr(store.rollouts, end)("production", actor="b", reason="bad answers")
    assert (ended.share, ended.active) == (0, False)
    assert ended.state.phase is (Phase.ABORTED if end == "abort" else Phase.ROLLED_BACK)
    state = store.channels.current()
    assert state is not None
    assert state.release.id == one.id
    assert store.audit_log.entries()[-1].action == f"rollout-{end.replace('_', '')}"
    store.releases.create({"tallinn.toml": b"v3"}, actor="ci")
    assert store.rollouts.start(small_plan("3"), actor="a", reason="again").share == 10


def test_a_channel_is_not_moved_by_hand_during_a_rollout(store: Store) -> None:
    """Promote and rollback of the channel itself are refused while a rollout is under way."""
    two(store)
    store.rollouts.start(small_plan(), actor="a", reason="go")
    with pytest.raises(ReleaseError, match="under way"):
        store.channels.promote("2", actor="b", reason="now")
    assert len(store.channels.history()) == 1


def test_a_change_from_a_stale_read_is_refused(store: Store) -> None:
    """A person acting on a rollout read before someone else changed it is told, and nothing
    changes."""
    two(store)
    seen = store.rollouts.start(small_plan(), actor="a", reason="go")
    store.rollouts.pause("production", actor="b", reason="hold on")
    entries = len(store.audit_log.entries())
    with pytest.raises(RolloutConflictError, match=r"changed meanwhile.*nothing changed"):
        store.rollouts.advance("production", actor="c", reason="go on", expected=seen)
    assert len(store.audit_log.entries()) == entries


def test_of_two_rollbacks_at_once_one_wins(store: Store, store_url: str) -> None:
    """Concurrent rollbacks of the same rollout: exactly one ends it, the others are told."""
    two(store)
    seen = store.rollouts.start(small_plan(), actor="a", reason="go")

    def act(opened: Store, i: int) -> object:
        return opened.rollouts.roll_back("production", actor=f"p{i}", reason="bad",
                                         expected=seen)

    outcomes = race(store_url, 4, act)
    assert len([o for o in outcomes if not isinstance(o, Exception)]) == 1, outcomes
    assert len([o for o in outcomes if isinstance(o, ChannelConflictError)]) == 3, outcomes
    assert [e.action for e in store.audit_log.entries()].count("rollout-rollback") == 1
    assert store.audit_log.verify().ok


def batch(replica: str, seq: int, release: Release, minute: object, requests: int,
          errors: int = 0) -> SignalBatch:
    return SignalBatch(replica, seq, release.id, minute,  # type: ignore[arg-type]
                       ReleaseTotals(requests, errors))


def test_signals_of_every_replica_add_up_in_the_window(clocked: Store, clock: FakeClock) -> None:
    """Batches of two replicas merge per release; a batch flushed twice counts once, and
    minutes before the step are left out."""
    one, second = two(clocked)
    before = minute_of(clock.now) - timedelta(minutes=1)
    clock.advance(seconds=30)
    rollout = clocked.rollouts.start(small_plan(), actor="a", reason="go")
    minute = minute_of(clock.now) + timedelta(minutes=1)
    flushed = [batch("a", 1, second, minute, 40, 2), batch("a", 2, one, minute, 300),
               batch("b", 1, second, minute, 60, 1), batch("b", 2, one, before, 999)]
    assert clocked.rollouts.record_signals(flushed) == 4
    assert clocked.rollouts.record_signals(flushed[:2]) == 0
    assert clocked.rollouts.record_signals([]) == 0
    window = clocked.rollouts.window(rollout)
    assert (window.candidate.requests, window.candidate.server_errors) == (100, 3)
    assert window.stable.requests == 300
    with clocked.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(rollout_signals)) \
            .scalar() == 4


def test_ratings_count_against_their_release(clocked: Store, clock: FakeClock) -> None:
    """A rating is stored against the release that served it and counts in that window."""
    one, second = two(clocked)
    rollout = clocked.rollouts.start(small_plan(), actor="a", reason="go")
    clock.advance(minutes=1)
    clocked.rollouts.rate(second.id, "code-review", 5, client="c1", comment="great")
    clocked.rollouts.rate(second.id, "code-review", 2, client="c2")
    clocked.rollouts.rate(one.id, "code-review", 4, client="c3")
    window = clocked.rollouts.window(rollout)
    assert window.candidate.ratings == (0, 1, 0, 0, 1)
    assert window.stable.ratings == (0, 0, 0, 1, 0)


@pytest.mark.parametrize(("stars", "comment", "message"), [
    (0, None, "1..5"), (6, None, "1..5"), (True, None, "1..5"),
    (3, "x" * 2001, "at most 2,000"),
])
def test_bad_ratings_are_refused(store: Store, stars: object, comment: str | None,
                                 message: str) -> None:
    """Stars outside 1..5 and an over-long comment are refused."""
    _, second = two(store)
    with pytest.raises(ReleaseError, match=message):
        store.rollouts.rate(second.id, "p", stars, client="c", comment=comment)


def test_the_controller_advances_completes_and_records_its_figures(
        clocked: Store, clock: FakeClock) -> None:
    """With enough good traffic past each hold, ticks advance 10 -> 50 -> 100; the audit
    entries carry the guard figures."""
    one, second = two(clocked)
    clocked.rollouts.start(small_plan(), actor="a", reason="go")
    assert clocked.rollouts.tick("production") is not None  # too few requests: a hold
    assert len(clocked.audit_log.entries()) == 4
    for seq, expected in enumerate(("advance", "complete"), start=1):
        rollout = clocked.rollouts.active("production")
        assert rollout is not None
        clock.advance(minutes=1)
        clocked.rollouts.record_signals([batch("a", seq, second, minute_of(clock.now), 500),
                                         batch("a", seq + 100, one, minute_of(clock.now), 500)])
        clock.advance(minutes=2)
        decision = clocked.rollouts.tick("production")
        assert decision is not None
        assert decision.action == expected, decision
        entry = clocked.audit_log.entries()[-1]
        assert (entry.action, entry.actor) == (f"rollout-{expected}", "controller")
        assert json.loads(entry.details)["figures"]["candidate.requests"] == 500
    state = clocked.channels.current()
    assert state is not None
    assert state.release.id == second.id
    assert clocked.rollouts.tick("production") is None


def test_the_controller_rolls_a_broken_candidate_back(clocked: Store, clock: FakeClock) -> None:
    """A candidate failing far above the error limit is rolled back by the controller, before
    its hold ends."""
    one, second = two(clocked)
    clocked.rollouts.start(small_plan(hold="1h"), actor="a", reason="go")
    clock.advance(minutes=1)
    minute = minute_of(clock.now)
    clocked.rollouts.record_signals([batch("a", 1, second, minute, 400, 200),
                                     batch("a", 2, one, minute, 400, 1)])
    clock.advance(minutes=1)
    decision = clocked.rollouts.tick("production")
    assert decision is not None
    assert decision.action == "roll_back"
    latest = clocked.rollouts.latest("production")
    assert latest is not None
    assert latest.state.phase is Phase.ROLLED_BACK
    entry = clocked.audit_log.entries()[-1]
    assert (entry.action, entry.actor) == ("rollout-rollback", "controller")
    assert json.loads(entry.details)["figures"]["candidate.server_errors"] == 200


def test_a_person_racing_the_controller_is_told(clocked: Store, clock: FakeClock) -> None:
    """A person's advance from a read the controller has since acted on is refused."""
    one, second = two(clocked)
    seen = clocked.rollouts.start(small_plan(), actor="a", reason="go")
    clock.advance(minutes=1)
    minute = minute_of(clock.now)
    clocked.rollouts.record_signals([batch("a", 1, second, minute, 500),
                                     batch("a", 2, one, minute, 500)])
    clock.advance(minutes=2)
    decision = clocked.rollouts.tick("production")
    assert decision is not None
    assert decision.action == "advance"
    with pytest.raises(RolloutConflictError):
        clocked.rollouts.advance("production", actor="p", reason="me too", expected=seen)
    active = clocked.rollouts.active("production")
    assert active is not None
    assert active.share == 50


@pytest.mark.parametrize("replica", ["", "a b", "x" * 129, "bad\n"])
def test_bad_replica_names_are_refused(store: Store, replica: str) -> None:
    """A flush from a replica with an empty, spaced, over-long or unprintable name is refused."""
    _, second = two(store)
    with pytest.raises(ReleaseError, match="replica name"):
        store.rollouts.record_signals([batch(replica, 1, second, minute_of(
            store.audit_log.entries()[0].at), 1)])


def test_a_rollback_after_a_completed_rollout_goes_back_to_its_stable(clocked: Store) -> None:
    """A rollout that completed moved the channel; `rollback` without a release then points
    it back at the rollout's stable release, as after a promotion."""
    two(clocked)
    clocked.rollouts.start(small_plan(), actor="alice", reason="go")
    clocked.rollouts.advance("production", actor="alice", reason="fine")
    done = clocked.rollouts.advance("production", actor="alice", reason="all")
    assert done.state.phase is Phase.COMPLETED
    assert clocked.channels.current("production").release.version == "2"
    moved = clocked.channels.rollback(channel="production", actor="bob", reason="worse")
    assert (moved.from_release.version, moved.to_release.version) == ("2", "1")
