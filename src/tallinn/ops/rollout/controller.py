"""The rollout controller: one decision per tick, from the plan, the state and the signals.

A rollout is a small state machine. Its `Phase` is one of running, paused, completed, rolled
back or aborted; `TRANSITIONS` lists the changes allowed, and each change is made by `apply`
(the controller's decisions) or by `pause`, `resume` and `abort` (a person's). The store keeps
the state and records every change with its reasons.

`decide(plan, state, signals, now)` reads the signals of the current step's window and
returns what to do, in this order:

1. paused: wait for a person; ended (completed, rolled back, aborted): nothing;
2. at the last step: complete;
3. a sample under the plan's minimum (requests, or ratings when judged, of either
   release): hold, whatever the time;
4. a guard broken: roll back at once, hold or no hold;
5. the hold not over yet: hold;
6. a guard inconclusive: pause for a person;
7. else advance to the next step, or complete when the next step is the last (100%).

The false-alarm budget `plan.alpha` is shared out evenly (Bonferroni) over every test that can
roll back: the guards that are on, at each step before the last. So the chance that a rollout
of a candidate as good as its limits and as stable is rolled back is at most `alpha`.
No clock is read here: `now` is given, so a test or a simulation drives time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from tallinn.ops.rollout.errors import TransitionError
from tallinn.ops.rollout.guards import (
    MIXTURE_SCALE,
    Figures,
    GuardResult,
    Verdict,
    error_rate_guard,
    error_regression,
    satisfaction_guard,
    satisfaction_regression,
)
from tallinn.ops.rollout.plan import RolloutPlan
from tallinn.ops.rollout.signals import MINUTE, ReleaseTotals, SignalBatch, merge_batches


class Phase(StrEnum):
    """Where a rollout is."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


# The only changes of phase there are; the last three phases are final.
TRANSITIONS: Mapping[Phase, frozenset[Phase]] = {
    Phase.RUNNING: frozenset({Phase.PAUSED, Phase.COMPLETED, Phase.ROLLED_BACK, Phase.ABORTED}),
    Phase.PAUSED: frozenset({Phase.RUNNING, Phase.ROLLED_BACK, Phase.ABORTED}),
    Phase.COMPLETED: frozenset(),
    Phase.ROLLED_BACK: frozenset(),
    Phase.ABORTED: frozenset(),
}
ENDED = frozenset({Phase.COMPLETED, Phase.ROLLED_BACK, Phase.ABORTED})


class Action(StrEnum):
    """What a decision asks for."""

    HOLD = "hold"
    ADVANCE = "advance"
    COMPLETE = "complete"
    ROLL_BACK = "roll_back"
    PAUSE = "pause"
    WAIT = "wait"  # paused: nothing happens until a person resumes or aborts
    NONE = "none"  # the rollout has ended


@dataclass(frozen=True, slots=True)
class RolloutState:
    """A rollout's state as the store keeps it: `RolloutState("r1", now)` is at step 0.

    `step` indexes `plan.steps`; `step_started_at` starts the window the step is judged on;
    `note` is why it was last paused, rolled back or aborted.
    """

    rollout_id: str
    step_started_at: datetime
    phase: Phase = Phase.RUNNING
    step: int = 0
    note: str = ""


@dataclass(frozen=True, slots=True)
class WindowSignals:
    """Both releases' totals since the current step started (`since`), on the same window."""

    since: datetime
    candidate: ReleaseTotals
    stable: ReleaseTotals


@dataclass(frozen=True, slots=True)
class Decision:
    """What the controller decided, why, and on what figures.

    `reasons` are one line each, for people and the audit log; `figures` (flat, JSON-ready)
    go into the audit entry's details; `share` is the candidate's share once the decision is
    applied; `next_due` is when to decide again (None: only a person moves it on).
    """

    action: Action
    reasons: tuple[str, ...]
    share: int
    next_due: datetime | None
    figures: Figures = field(default_factory=dict)


def window_signals(batches: list[SignalBatch], *, since: datetime, candidate: str,
                   stable: str, until: datetime | None = None,
                   resolution: timedelta = MINUTE) -> WindowSignals:
    """Given the stored batches, return the window of a step that began at `since`."""
    totals = merge_batches(batches, since, until, resolution)
    return WindowSignals(since, totals.get(candidate, ReleaseTotals()),
                         totals.get(stable, ReleaseTotals()))


def serving_share(plan: RolloutPlan, state: RolloutState) -> int:
    """The share of clients to serve the candidate to now (a paused rollout keeps its step)."""
    if state.phase is Phase.COMPLETED:
        return 100
    if state.phase in (Phase.ROLLED_BACK, Phase.ABORTED):
        return 0
    return plan.steps[state.step]


def decide(plan: RolloutPlan, state: RolloutState, signals: WindowSignals,
           now: datetime) -> Decision:
    """Decide what the rollout does at `now`: see the module's docstring for the rules.

    Raises `ValueError` when `signals` is not the window of the current step.
    """
    share = serving_share(plan, state)
    figures: Figures = {"phase": str(state.phase), "step": state.step, "share": share}
    if state.phase is Phase.PAUSED:
        return Decision(Action.WAIT, (f"paused, waiting for a person: {state.note}",),
                        share, None, figures)
    if state.phase in ENDED:
        return Decision(Action.NONE, (f"the rollout has ended: {state.phase}",), share, None,
                        figures)
    last = len(plan.steps) - 1
    if state.step == last:
        return Decision(Action.COMPLETE, ("the last step, 100%, is reached",), 100, None,
                        figures)
    if signals.since != state.step_started_at:
        raise ValueError(f"signals since {signals.since.isoformat()} are not the window of "
                         f"the step that started at {state.step_started_at.isoformat()}")
    hold_ends = state.step_started_at + plan.hold(state.step)
    figures.update(_sample_figures(signals, hold_ends))
    next_tick = now + plan.check_every

    shortfalls = _shortfalls(plan, signals)
    if shortfalls:
        return Decision(Action.HOLD, tuple(shortfalls), share, next_tick, figures)

    results = judge(plan, signals)
    for result in results:
        figures.update({f"{result.name}.{key}": value for key, value in result.figures.items()})
        figures[f"{result.name}.verdict"] = str(result.verdict)
    broken = [result.reason for result in results if result.verdict is Verdict.BROKEN]
    if broken:
        return Decision(Action.ROLL_BACK, tuple(broken), 0, None, figures)
    judged = [result.reason for result in results if result.verdict is not Verdict.OFF]
    if now < hold_ends:
        reasons = (f"holding {share}% until {hold_ends.isoformat()} "
                   f"({_span(hold_ends - now)} left)", *judged)
        return Decision(Action.HOLD, reasons, share, min(next_tick, hold_ends), figures)
    unsure = [result.reason for result in results if result.verdict is Verdict.INCONCLUSIVE]
    if unsure:
        return Decision(Action.PAUSE, (f"the hold of step {share}% is over and the evidence "
                                       "is inconclusive: a person decides", *unsure),
                        share, None, figures)
    following = plan.steps[state.step + 1]
    passed = f"step {share}% passed its {_span(plan.hold(state.step))} hold"
    if state.step + 1 == last:
        return Decision(Action.COMPLETE, (f"{passed}: the candidate goes to 100%", *judged),
                        100, None, figures)
    return Decision(Action.ADVANCE, (f"{passed}: advancing to {following}%", *judged),
                    following, next_tick, figures)


def judge(plan: RolloutPlan, signals: WindowSignals) -> list[GuardResult]:
    """Run every guard on the window, each at its share of the false-alarm budget."""
    candidate, stable = signals.candidate, signals.stable
    guards = 2 + (2 if plan.ratings_judged else 0) - (1 if plan.max_error_rate >= 1 else 0)
    alpha = plan.alpha / (guards * (len(plan.steps) - 1))
    results = [
        error_rate_guard(candidate, plan.max_error_rate, alpha),
        error_regression(candidate, stable, MIXTURE_SCALE * plan.max_error_rate, alpha),
    ]
    if plan.ratings_judged:
        results += [
            satisfaction_guard(candidate, plan.min_satisfaction, alpha),
            satisfaction_regression(candidate, stable,
                                    MIXTURE_SCALE * (1 - plan.min_satisfaction), alpha),
        ]
    return results


def apply(plan: RolloutPlan, state: RolloutState, decision: Decision,
          now: datetime) -> RolloutState:
    """The state after `decision`, taken at `now`: advance starts the next step's window.

    A decision taken on an older state (a person paused the rollout meanwhile) that would
    move it on raises `TransitionError` instead of overriding the person.
    """
    if decision.action is Action.ADVANCE:
        if state.phase is not Phase.RUNNING:
            raise TransitionError(str(state.phase), "the next step", "advance")
        return replace(state, step=state.step + 1, step_started_at=now)
    if decision.action is Action.COMPLETE:
        return replace(_moved(state, Phase.COMPLETED, "complete"), step=len(plan.steps) - 1)
    if decision.action is Action.ROLL_BACK:
        return replace(_moved(state, Phase.ROLLED_BACK, "roll back"),
                       note=decision.reasons[0])
    if decision.action is Action.PAUSE:
        return replace(_moved(state, Phase.PAUSED, "pause"), note=" ".join(decision.reasons))
    return state


def pause(state: RolloutState, reason: str) -> RolloutState:
    """A person pauses the rollout: the current share stays served, no step is taken."""
    return replace(_moved(state, Phase.PAUSED, "pause"), note=reason)


def resume(state: RolloutState, now: datetime) -> RolloutState:
    """A person resumes: the current step starts again at `now`, with a fresh window."""
    return replace(_moved(state, Phase.RUNNING, "resume"), step_started_at=now, note="")


def abort(state: RolloutState, reason: str) -> RolloutState:
    """A person aborts: every client goes back to the stable release."""
    return replace(_moved(state, Phase.ABORTED, "abort"), note=reason)


def _moved(state: RolloutState, phase: Phase, action: str) -> RolloutState:
    if phase not in TRANSITIONS[state.phase]:
        raise TransitionError(str(state.phase), str(phase), action)
    return replace(state, phase=phase)


def _shortfalls(plan: RolloutPlan, signals: WindowSignals) -> list[str]:
    """One line per release and kind of sample that is still under the plan's minimum."""
    lines = []
    for release, totals in (("candidate", signals.candidate), ("stable", signals.stable)):
        if totals.served < plan.min_requests:
            lines.append(f"sample too small: {totals.served} of {plan.min_requests} requests "
                         f"on the {release}")
        if plan.ratings_judged and totals.rated < plan.min_ratings:
            lines.append(f"sample too small: {totals.rated} of {plan.min_ratings} ratings "
                         f"on the {release}")
    return lines


def _sample_figures(signals: WindowSignals, hold_ends: datetime) -> Figures:
    figures: Figures = {"window_since": signals.since.isoformat(),
                        "hold_ends_at": hold_ends.isoformat()}
    for release, totals in (("candidate", signals.candidate), ("stable", signals.stable)):
        figures.update({f"{release}.requests": totals.requests,
                        f"{release}.server_errors": totals.server_errors,
                        f"{release}.client_errors": totals.client_errors,
                        f"{release}.ratings": totals.rated,
                        f"{release}.satisfied": totals.satisfied})
    return figures


def _span(span: timedelta) -> str:
    """Given 49 hours and 5 minutes, return `"2d 1h 5m"`; under a minute, seconds."""
    seconds = int(span.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "",
             f"{minutes}m" if minutes else ""]
    return " ".join(part for part in parts if part)
