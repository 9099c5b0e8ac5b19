"""The controller: each decision of the state machine, from plan, state, signals and now."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from tallinn.ops.rollout.controller import (
    TRANSITIONS,
    Action,
    Phase,
    RolloutState,
    WindowSignals,
    abort,
    apply,
    decide,
    pause,
    resume,
    serving_share,
    window_signals,
)
from tallinn.ops.rollout.errors import TransitionError
from tallinn.ops.rollout.plan import RolloutPlan, parse_plan
from tallinn.ops.rollout.signals import ReleaseTotals, SignalBatch

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
PLAN = parse_plan("v2", steps="10,50,100", hold="24h", min_requests="1000", min_ratings="100")
HAPPY = (5, 0, 0, 0, 195)   # 97.5% of 200 ratings
CLEAN = ReleaseTotals(requests=2000, server_errors=10, ratings=HAPPY)
STABLE = ReleaseTotals(requests=18_000, server_errors=90, ratings=(45, 0, 0, 0, 1755))


def _signals(candidate: ReleaseTotals = CLEAN, stable: ReleaseTotals = STABLE,
             since: datetime = T0) -> WindowSignals:
    return WindowSignals(since, candidate, stable)


def test_a_small_sample_holds_even_after_the_hold() -> None:
    """Under the minimum sample the controller holds and says which sample is short."""
    state = RolloutState("r1", T0)
    candidate = ReleaseTotals(requests=400, server_errors=300, ratings=(0, 0, 0, 0, 10))
    decision = decide(PLAN, state, _signals(candidate), T0 + timedelta(days=3))
    assert decision.action is Action.HOLD
    assert decision.reasons == ("sample too small: 400 of 1000 requests on the candidate",
                                "sample too small: 10 of 100 ratings on the candidate")
    assert decision.share == 10
    assert decision.next_due == T0 + timedelta(days=3) + PLAN.check_every


def test_the_stable_sample_counts_too() -> None:
    """The regression needs stable's sample as well: a thin stable side holds."""
    decision = decide(PLAN, RolloutState("r1", T0), _signals(stable=ReleaseTotals(500)),
                      T0 + timedelta(hours=1))
    assert decision.action is Action.HOLD
    assert "sample too small: 500 of 1000 requests on the stable" in decision.reasons


def test_good_figures_hold_until_the_hold_is_over() -> None:
    """Before the hold ends the controller holds, and is due again at the next check."""
    now = T0 + timedelta(hours=3)
    decision = decide(PLAN, RolloutState("r1", T0), _signals(), now)
    assert decision.action is Action.HOLD
    assert decision.reasons[0] == ("holding 10% until 2026-01-02T12:00:00+00:00 (21h left)")
    assert any(reason.startswith("error-rate guard holds") for reason in decision.reasons)
    assert decision.next_due == now + PLAN.check_every


def test_the_next_decision_is_due_when_the_hold_ends_if_that_is_sooner() -> None:
    """Two minutes before the hold ends, the next decision is due at its end."""
    now = T0 + timedelta(hours=24) - timedelta(minutes=2)
    decision = decide(PLAN, RolloutState("r1", T0), _signals(), now)
    assert decision.next_due == T0 + timedelta(hours=24)


def test_good_figures_advance_after_the_hold() -> None:
    """With the hold over and every guard holding, the rollout advances to the next step."""
    now = T0 + timedelta(hours=24)
    state = RolloutState("r1", T0)
    decision = decide(PLAN, state, _signals(), now)
    assert decision.action is Action.ADVANCE
    assert decision.reasons[0] == "step 10% passed its 1d hold: advancing to 50%"
    assert decision.share == 50
    after = apply(PLAN, state, decision, now)
    assert (after.phase, after.step, after.step_started_at) == (Phase.RUNNING, 1, now)
    assert serving_share(PLAN, after) == 50


def test_passing_the_step_before_the_last_completes() -> None:
    """Passing the 50% step goes to 100%, which completes the rollout."""
    state = RolloutState("r1", T0, step=1)
    decision = decide(PLAN, state, _signals(), T0 + timedelta(hours=25))
    assert decision.action is Action.COMPLETE
    assert decision.reasons[0] == "step 50% passed its 1d hold: the candidate goes to 100%"
    assert (decision.share, decision.next_due) == (100, None)
    done = apply(PLAN, state, decision, T0 + timedelta(hours=25))
    assert (done.phase, done.step, serving_share(PLAN, done)) == (Phase.COMPLETED, 2, 100)
    assert decide(PLAN, done, _signals(), T0).action is Action.NONE


def test_a_plan_of_one_step_completes_at_once() -> None:
    """Steps `100` need no evidence: the first decision completes."""
    plan = parse_plan("v2", steps="100")
    decision = decide(plan, RolloutState("r1", T0), _signals(ReleaseTotals()), T0)
    assert decision.action is Action.COMPLETE
    assert decision.reasons == ("the last step, 100%, is reached",)


def test_a_broken_error_rate_rolls_back_before_the_hold_ends() -> None:
    """A candidate shown above the error limit is rolled back at once, hold or no hold."""
    state = RolloutState("r1", T0)
    candidate = ReleaseTotals(requests=2000, server_errors=300, ratings=HAPPY)
    decision = decide(PLAN, state, _signals(candidate), T0 + timedelta(hours=2))
    assert decision.action is Action.ROLL_BACK
    assert decision.reasons[0].startswith("error-rate guard broken: error rate 15% of 2000 "
                                          "requests is above the 5% limit")
    assert decision.share == 0
    assert decision.next_due is None
    after = apply(PLAN, state, decision, T0 + timedelta(hours=2))
    assert after.phase is Phase.ROLLED_BACK
    assert after.note == decision.reasons[0]
    assert serving_share(PLAN, after) == 0


def test_a_broken_satisfaction_rolls_back() -> None:
    """A candidate shown below the satisfaction floor is rolled back."""
    candidate = ReleaseTotals(requests=2000, server_errors=10, ratings=(100, 0, 0, 0, 100))
    decision = decide(PLAN, RolloutState("r1", T0), _signals(candidate), T0 + timedelta(hours=2))
    assert decision.action is Action.ROLL_BACK
    assert any(reason.startswith("satisfaction guard broken: satisfaction 50% of 200 ratings")
               for reason in decision.reasons)


def test_a_regression_against_stable_rolls_back_within_the_limits() -> None:
    """At 4% against stable's 0.5% the candidate is under the 5% limit but still rolled back."""
    candidate = ReleaseTotals(requests=4000, server_errors=160, ratings=HAPPY)
    decision = decide(PLAN, RolloutState("r1", T0), _signals(candidate), T0 + timedelta(hours=2))
    assert decision.action is Action.ROLL_BACK
    assert decision.reasons == ("error-regression broken: error rate 4% on the candidate "
                                "against 0.5% on stable is a regression "
                                f"({decision.reasons[0].split('(')[1]}",)
    assert decision.figures["error-regression.verdict"] == "broken"
    assert decision.figures["error-rate.verdict"] != "broken"


def test_inconclusive_evidence_at_the_end_of_the_hold_pauses_for_a_person() -> None:
    """A rate close to the limit, not shown either side when the hold ends, pauses."""
    close = ReleaseTotals(requests=1000, server_errors=45, ratings=HAPPY)
    stable = ReleaseTotals(requests=9000, server_errors=400, ratings=(45, 0, 0, 0, 1755))
    state = RolloutState("r1", T0)
    early = decide(PLAN, state, _signals(close, stable), T0 + timedelta(hours=1))
    assert early.action is Action.HOLD
    decision = decide(PLAN, state, _signals(close, stable), T0 + timedelta(hours=24))
    assert decision.action is Action.PAUSE
    assert decision.reasons[0] == ("the hold of step 10% is over and the evidence is "
                                   "inconclusive: a person decides")
    assert decision.reasons[1].startswith("error-rate guard inconclusive: error rate 4.5%")
    paused = apply(PLAN, state, decision, T0 + timedelta(hours=24))
    assert paused.phase is Phase.PAUSED
    assert serving_share(PLAN, paused) == 10  # paused keeps serving its step
    waiting = decide(PLAN, paused, _signals(close, stable), T0 + timedelta(hours=30))
    assert waiting.action is Action.WAIT
    assert waiting.next_due is None
    assert waiting.reasons[0].startswith("paused, waiting for a person: the hold of step 10%")


def test_a_person_pauses_resumes_and_aborts() -> None:
    """People's actions go through the transition table; resume restarts the step's window."""
    state = RolloutState("r1", T0)
    paused = pause(state, "looking at a report")
    assert decide(PLAN, paused, _signals(), T0).reasons == (
        "paused, waiting for a person: looking at a report",)
    later = T0 + timedelta(hours=5)
    resumed = resume(paused, later)
    assert (resumed.phase, resumed.step_started_at, resumed.note) == (Phase.RUNNING, later, "")
    aborted = abort(resumed, "wrong release")
    assert (aborted.phase, serving_share(PLAN, aborted)) == (Phase.ABORTED, 0)
    decision = decide(PLAN, aborted, _signals(), later)
    assert (decision.action, decision.reasons) == (Action.NONE,
                                                   ("the rollout has ended: aborted",))


@pytest.mark.parametrize("phase", [Phase.COMPLETED, Phase.ROLLED_BACK, Phase.ABORTED])
def test_an_ended_rollout_cannot_be_moved(phase: Phase) -> None:
    """Completed, rolled back and aborted are final: resume, pause and abort are refused."""
    ended = RolloutState("r1", T0, phase=phase)
    assert TRANSITIONS[phase] == frozenset()
    with pytest.raises(TransitionError, match=f"^cannot resume: the rollout is {phase}"):
        resume(ended, T0)
    with pytest.raises(TransitionError):
        pause(ended, "why")
    with pytest.raises(TransitionError):
        abort(ended, "why")


def test_a_running_rollout_cannot_be_resumed() -> None:
    """Resume is for paused rollouts only."""
    with pytest.raises(TransitionError, match="running cannot become running"):
        resume(RolloutState("r1", T0), T0)


def test_holding_leaves_the_state_as_it_was() -> None:
    """Applying a hold or a wait changes nothing."""
    state = RolloutState("r1", T0)
    decision = decide(PLAN, state, _signals(), T0 + timedelta(hours=1))
    assert apply(PLAN, state, decision, T0 + timedelta(hours=1)) is state


def test_signals_of_another_window_are_refused() -> None:
    """Signals counted since another moment than the step's start are a ValueError."""
    with pytest.raises(ValueError, match="are not the window of the step"):
        decide(PLAN, RolloutState("r1", T0), _signals(since=T0 - timedelta(hours=1)), T0)


def test_figures_are_ready_for_the_audit_log() -> None:
    """A decision's figures are flat and JSON-serialisable, with each guard's verdict."""
    decision = decide(PLAN, RolloutState("r1", T0), _signals(), T0 + timedelta(hours=24))
    text = json.dumps(decision.figures, allow_nan=False)
    figures = json.loads(text)
    assert figures["candidate.requests"] == 2000
    assert figures["error-rate.verdict"] == "holds"
    assert figures["satisfaction-regression.verdict"] == "holds"
    assert figures["hold_ends_at"] == "2026-01-02T12:00:00+00:00"


def test_without_ratings_the_satisfaction_guards_are_not_run() -> None:
    """`--min-ratings 0`: no ratings are needed and no satisfaction guard is judged."""
    plan = parse_plan("v2", hold="1h", min_ratings="0")
    candidate = ReleaseTotals(requests=2000, server_errors=10)
    decision = decide(plan, RolloutState("r1", T0), _signals(candidate, ReleaseTotals(18_000, 90)),
                      T0 + timedelta(hours=1))
    assert decision.action is Action.ADVANCE
    assert not any(key.startswith("satisfaction") for key in decision.figures)


def test_the_false_alarm_budget_is_shared_by_every_test_and_step() -> None:
    """alpha is split over the guards that are on and the steps before the last."""
    four = RolloutPlan("v2")
    decision = decide(four, RolloutState("r1", T0), _signals(), T0)
    expected = four.alpha / (4 * 2)
    assert decision.figures["error-rate.log_bound"] == pytest.approx(-math.log(expected))
    two = parse_plan("v2", steps="50,100", max_error_rate="100%", min_ratings="0")
    decision = decide(two, RolloutState("r1", T0), _signals(), T0)
    assert decision.figures["error-regression.log_bound"] == pytest.approx(-math.log(two.alpha))


def test_window_signals_are_merged_from_batches() -> None:
    """window_signals picks the candidate's and stable's totals from stored batches."""
    minute = T0 + timedelta(minutes=1)
    batches = [SignalBatch("web-1", 1, "v2", minute, ReleaseTotals(10, 1)),
               SignalBatch("web-1", 2, "v1", minute, ReleaseTotals(90, 1)),
               SignalBatch("web-1", 3, "v0", minute, ReleaseTotals(5, 5))]
    signals = window_signals(batches, since=T0, candidate="v2", stable="v1")
    assert signals == WindowSignals(T0, ReleaseTotals(10, 1), ReleaseTotals(90, 1))
    empty = window_signals([], since=T0, candidate="v2", stable="v1")
    assert empty.candidate == empty.stable == ReleaseTotals()


def test_time_left_is_spelled_for_people() -> None:
    """The hold's time left reads in days, hours and minutes, or seconds under a minute."""
    plan = parse_plan("v2", hold="2d", min_ratings="0")
    state = RolloutState("r1", T0)
    spelled = [decide(plan, state, _signals(), T0 + timedelta(days=2) - left).reasons[0]
               for left in (timedelta(seconds=30), timedelta(days=1, hours=1, minutes=5))]
    assert spelled == ["holding 10% until 2026-01-03T12:00:00+00:00 (30s left)",
                       "holding 10% until 2026-01-03T12:00:00+00:00 (1d 1h 5m left)"]


def test_a_stale_decision_does_not_override_a_person() -> None:
    """An advance decided before a person paused or aborted is refused when applied."""
    state = RolloutState("r1", T0)
    now = T0 + timedelta(hours=24)
    decision = decide(PLAN, state, _signals(), now)
    assert decision.action is Action.ADVANCE
    with pytest.raises(TransitionError, match=r"^cannot advance: the rollout is paused"):
        apply(PLAN, pause(state, "checking"), decision, now)
    with pytest.raises(TransitionError, match=r"^cannot advance: the rollout is aborted"):
        apply(PLAN, abort(state, "wrong release"), decision, now)
    complete = decide(PLAN, RolloutState("r1", T0, step=1), _signals(), now)
    with pytest.raises(TransitionError, match=r"^cannot complete: the rollout is aborted"):
        apply(PLAN, abort(RolloutState("r1", T0, step=1), "no"), complete, now)


def test_client_errors_never_roll_a_release_back() -> None:
    """A candidate whose clients send bad arguments half the time, but which fails none of
    the rest more than stable does, advances."""
    candidate = ReleaseTotals(requests=4000, server_errors=10, client_errors=2000, ratings=HAPPY)
    decision = decide(PLAN, RolloutState("r1", T0), _signals(candidate), T0 + timedelta(hours=24))
    assert decision.action is Action.ADVANCE
    assert decision.figures["candidate.client_errors"] == 2000
