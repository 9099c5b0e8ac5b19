"""Simulated rollouts, tick by tick through `decide`, to measure false alarms and power.

`uv run python -m tallinn.ops.rollout.simulate` runs 1,000 rollouts of a candidate equal to
stable and 1,000 of one with twice stable's error rate, and prints how each scenario ended.
The traffic is `Traffic`: per tick (an hour), 2,000 requests split between the releases by
the step's share, each failing with the release's error rate (2% for stable), a fifth of them
rated, 90% of ratings happy. The plan is `SIMULATED_PLAN`: steps 10, 50, 100, 12 hours each,
at least 1,000 requests and 100 ratings per release, 5% false-alarm budget.
Outcomes are drawn from a seeded `random.Random`, so a run is the same every time.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from tallinn.ops.rollout.controller import (
    ENDED,
    Action,
    Phase,
    RolloutState,
    WindowSignals,
    apply,
    decide,
    serving_share,
)
from tallinn.ops.rollout.plan import RolloutPlan
from tallinn.ops.rollout.signals import ReleaseTotals

TICK = timedelta(hours=1)
SIMULATED_PLAN = RolloutPlan("candidate", steps=(10, 50, 100),
                             holds=(timedelta(hours=12), timedelta(hours=12)),
                             min_requests=1000, min_ratings=100, check_every=TICK)
START = datetime(2026, 1, 1, tzinfo=UTC)
# Past this many ticks beyond the plan's holds a rollout counts as unfinished (it was
# holding for a sample that never came).
SLACK_TICKS = 24
# Draws of the rarer outcome larger than this are split in halves, so the inversion's loop
# stays short and `(1 - p) ** n` never underflows.
MAX_INVERSION_MEAN = 200.0


@dataclass(frozen=True, slots=True)
class Traffic:
    """What the simulated clients do per tick; the candidate's rates default to stable's."""

    requests_per_tick: int = 2000
    error_rate: float = 0.02
    candidate_error_rate: float | None = None
    rated_share: float = 0.2
    satisfaction: float = 0.9
    candidate_satisfaction: float | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """How `rollouts` simulated rollouts ended: a count per final phase (`unfinished` too).

    `decisions` counts the calls of `decide` (one per tick); the mean candidate requests at
    rollback is the sample the rolled-back rollouts' last step had gathered;
    `rolled_back_at_step` counts the rollbacks by the index of the step they happened at.
    """

    rollouts: int
    outcomes: dict[str, int]
    decisions: int
    candidate_requests_at_rollback: float
    rolled_back_at_step: dict[int, int]

    def share(self, outcome: str) -> float:
        return self.outcomes.get(outcome, 0) / self.rollouts


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Given 1000 trials of chance 0.02, return a draw of how many succeed (exact)."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1 - p)
    if n * p > MAX_INVERSION_MEAN:
        half = n // 2
        return binomial(rng, half, p) + binomial(rng, n - half, p)
    # Inversion of the cumulative distribution, one probability at a time.
    ratio = p / (1 - p)
    chance = (1 - p) ** n
    draw = rng.random()
    count = 0
    while draw > chance and count < n:
        draw -= chance
        count += 1
        chance *= ratio * (n - count + 1) / count
    return count


def traffic_totals(rng: random.Random, requests: int, error_rate: float, rated_share: float,
                   satisfaction: float) -> ReleaseTotals:
    """One tick of one release: `requests` requests, their errors and ratings, drawn."""
    rated = round(requests * rated_share)
    happy = binomial(rng, rated, satisfaction)
    return ReleaseTotals(requests, binomial(rng, requests, error_rate), 0,
                         (0, rated - happy, 0, 0, happy))


def simulate_rollout(plan: RolloutPlan, traffic: Traffic,
                     rng: random.Random) -> tuple[RolloutState, int, ReleaseTotals]:
    """Run one rollout to its end; return its last state, its ticks and the last window."""
    state = RolloutState("simulated", START)
    candidate = stable = ReleaseTotals()
    limit = int(sum(plan.holds, timedelta(0)) / plan.check_every) + SLACK_TICKS
    candidate_error = (traffic.error_rate if traffic.candidate_error_rate is None
                       else traffic.candidate_error_rate)
    candidate_happy = (traffic.satisfaction if traffic.candidate_satisfaction is None
                       else traffic.candidate_satisfaction)
    ticks = 0
    while ticks < limit and state.phase not in ENDED and state.phase is not Phase.PAUSED:
        share = serving_share(plan, state)
        on_candidate = round(traffic.requests_per_tick * share / 100)
        candidate += traffic_totals(rng, on_candidate, candidate_error, traffic.rated_share,
                                    candidate_happy)
        stable += traffic_totals(rng, traffic.requests_per_tick - on_candidate,
                                 traffic.error_rate, traffic.rated_share, traffic.satisfaction)
        ticks += 1
        now = START + ticks * plan.check_every
        decision = decide(plan, state, WindowSignals(state.step_started_at, candidate, stable),
                          now)
        if decision.action is Action.ROLL_BACK:
            return apply(plan, state, decision, now), ticks, candidate
        state = apply(plan, state, decision, now)
        if decision.action is Action.ADVANCE:
            candidate = stable = ReleaseTotals()
    return state, ticks, candidate


def simulate(plan: RolloutPlan, traffic: Traffic, rollouts: int, seed: int) -> Summary:
    """Run `rollouts` rollouts from one seeded generator and count how they ended."""
    rng = random.Random(seed)  # noqa: S311 (a simulation, reproducible by design)
    outcomes: Counter[str] = Counter()
    at_step: Counter[int] = Counter()
    ticks = 0
    rolled_back_requests = 0
    for _ in range(rollouts):
        state, used, window = simulate_rollout(plan, traffic, rng)
        ticks += used
        ended = state.phase if state.phase in ENDED or state.phase is Phase.PAUSED \
            else "unfinished"
        outcomes[str(ended)] += 1
        if state.phase is Phase.ROLLED_BACK:
            rolled_back_requests += window.served
            at_step[state.step] += 1
    rolled_back = outcomes[str(Phase.ROLLED_BACK)]
    return Summary(rollouts, dict(outcomes), ticks,
                   rolled_back_requests / rolled_back if rolled_back else 0.0, dict(at_step))


def main(argv: Sequence[str] | None = None) -> int:
    """Print the outcomes of the equal and the doubled-error scenario."""
    parser = argparse.ArgumentParser(prog="python -m tallinn.ops.rollout.simulate",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rollouts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests-per-tick", type=int, default=2000)
    parser.add_argument("--error-rate", type=float, default=0.02)
    options = parser.parse_args(argv)
    traffic = Traffic(requests_per_tick=options.requests_per_tick,
                      error_rate=options.error_rate)
    scenarios = {"equal": traffic,
                 "doubled": replace(traffic, candidate_error_rate=2 * options.error_rate)}
    for name, scenario in scenarios.items():
        summary = simulate(SIMULATED_PLAN, scenario, options.rollouts, options.seed)
        shares = ", ".join(f"{outcome} {summary.share(outcome):.1%}"
                           for outcome in sorted(summary.outcomes))
        steps = ", ".join(f"{SIMULATED_PLAN.steps[step]}%: {count}"
                          for step, count in sorted(summary.rolled_back_at_step.items()))
        print(f"{name}: {summary.rollouts} rollouts, {shares}; {summary.decisions} decisions; "
              f"rolled back at step {{{steps}}}, with "
              f"{summary.candidate_requests_at_rollback:.0f} candidate requests on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
