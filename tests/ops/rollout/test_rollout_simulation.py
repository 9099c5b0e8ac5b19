"""Proof by simulation: rollouts driven tick by tick through `decide`, from a seeded generator.

The traffic, as in docs/rollout.md: each tick is an hour with 2,000 requests, split between
the releases by the step's share; stable fails 2% of them; a fifth of the requests are rated,
90% of the ratings happy. The plan: steps 10, 50, 100, 12 hours each, checked every hour, at
least 1,000 requests and 100 ratings per release, a 5% false-alarm budget.
"""

from __future__ import annotations

import math
import random
import subprocess
import sys
from dataclasses import replace

from tallinn.ops.rollout.guards import Verdict, error_rate_guard
from tallinn.ops.rollout.signals import ReleaseTotals
from tallinn.ops.rollout.simulate import (
    SIMULATED_PLAN,
    Traffic,
    binomial,
    simulate,
)

ROLLOUTS = 1000
TRAFFIC = Traffic(requests_per_tick=2000, error_rate=0.02, rated_share=0.2, satisfaction=0.9)


def test_a_candidate_equal_to_stable_is_rarely_rolled_back() -> None:
    """Over 1,000 rollouts of a candidate equal to stable, at most 5% are rolled back."""
    summary = simulate(SIMULATED_PLAN, TRAFFIC, ROLLOUTS, seed=1)
    assert summary.rollouts == ROLLOUTS
    assert summary.share("rolled_back") <= 0.05
    # The controller does act: nearly all of these rollouts go all the way.
    assert summary.share("completed") >= 0.90
    # One decision per tick, and a completed rollout takes both holds: 24 ticks.
    assert summary.decisions >= 24 * summary.outcomes["completed"]


def test_a_doubled_error_rate_is_detected() -> None:
    """With the candidate failing 4% against stable's 2%, at least 90% are rolled back."""
    doubled = replace(TRAFFIC, candidate_error_rate=0.04)
    summary = simulate(SIMULATED_PLAN, doubled, ROLLOUTS, seed=2)
    assert summary.share("rolled_back") >= 0.90
    assert summary.outcomes.get("completed", 0) <= 0.01 * ROLLOUTS
    # Caught at the 10% step, whose hold gathers 2,400 candidate requests, most at the
    # first look (the 1,000-request minimum).
    assert summary.rolled_back_at_step.get(0, 0) >= 0.90 * ROLLOUTS
    assert summary.candidate_requests_at_rollback < 1600


def test_a_satisfaction_drop_is_detected() -> None:
    """A candidate rated happy 75% of the time against stable's 90% is rolled back."""
    unhappy = replace(TRAFFIC, candidate_satisfaction=0.75)
    summary = simulate(SIMULATED_PLAN, unhappy, 200, seed=3)
    assert summary.share("rolled_back") >= 0.90


def test_looking_at_every_tick_keeps_the_false_alarm_rate() -> None:
    """At exactly the limit, 50 looks each raise a false breach in at most alpha of runs,
    where a fixed one-sided z-test at the same alpha, looked at as often, raises far more."""
    rng = random.Random(4)
    alpha, limit, runs, looks, per_look = 0.05, 0.05, 400, 50, 100
    sequential = fixed = 0
    for _ in range(runs):
        errors = requests = 0
        broke = naive = False
        for _ in range(looks):
            requests += per_look
            errors += binomial(rng, per_look, limit)
            totals = ReleaseTotals(requests=requests, server_errors=errors)
            broke = broke or error_rate_guard(totals, limit, alpha).verdict is Verdict.BROKEN
            z = (errors / requests - limit) / math.sqrt(limit * (1 - limit) / requests)
            naive = naive or z > 1.645
        sequential += broke
        fixed += naive
    assert sequential / runs <= alpha
    assert fixed / runs > 2 * alpha


def test_the_binomial_draws_have_the_right_mean_and_spread() -> None:
    """Draws of Binomial(n, p) average n*p with variance n*p*(1-p), for small and large n*p."""
    rng = random.Random(5)
    for n, p in ((100, 0.02), (900, 0.02), (50_000, 0.02), (240, 0.9)):
        draws = [binomial(rng, n, p) for _ in range(4000)]
        mean = sum(draws) / len(draws)
        variance = sum((d - mean) ** 2 for d in draws) / (len(draws) - 1)
        expected = n * p * (1 - p)
        assert abs(mean - n * p) < 5 * math.sqrt(expected / len(draws))
        assert 0.85 * expected < variance < 1.15 * expected
        assert all(0 <= d <= n for d in draws)
    assert (binomial(rng, 0, 0.5), binomial(rng, 10, 0.0), binomial(rng, 10, 1.0)) == (0, 0, 10)


def test_the_simulation_prints_its_figures() -> None:
    """`python -m tallinn.ops.rollout.simulate` prints one line per scenario, in a subprocess."""
    done = subprocess.run(
        [sys.executable, "-m", "tallinn.ops.rollout.simulate", "--rollouts", "20", "--seed", "7"],
        capture_output=True, text=True, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["equal", "doubled"]
    assert "20 rollouts" in lines[0]
    assert "rolled_back" in lines[1]
