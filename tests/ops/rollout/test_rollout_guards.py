"""Guards: the mixture sequential test against a limit and against stable."""

from __future__ import annotations

import math

import pytest

from tallinn.ops.rollout.guards import (
    Verdict,
    error_rate_guard,
    error_regression,
    evidence_bound,
    log_mixture_ratio,
    satisfaction_guard,
    satisfaction_regression,
)
from tallinn.ops.rollout.signals import ReleaseTotals

ALPHA = 0.01


def _integrated_ratio(effect: float, variance: float, scale: float, points: int = 20_000) -> float:
    """The mixture ratio by its definition: the Gaussian likelihood ratio averaged over a
    half-normal prior, summed numerically on a fine grid."""
    top = 10 * scale
    step = top / points
    total = 0.0
    for index in range(points):
        theta = (index + 0.5) * step
        density = math.exp(-theta * theta / (2 * scale * scale))
        prior = 2 * density / (scale * math.sqrt(2 * math.pi))
        likelihood = math.exp((theta * effect - theta * theta / 2) / variance)
        total += prior * likelihood * step
    return total


@pytest.mark.parametrize(("effect", "variance", "scale"), [
    (0.02, 1e-5, 0.025), (0.0, 1e-4, 0.025), (-0.01, 1e-4, 0.025), (0.05, 4e-4, 0.1),
])
def test_the_closed_form_is_the_mixture_it_claims(effect: float, variance: float,
                                                  scale: float) -> None:
    """The closed form equals the likelihood ratio integrated over the half-normal prior."""
    assert log_mixture_ratio(effect, variance, scale) == pytest.approx(
        math.log(_integrated_ratio(effect, variance, scale)), abs=1e-3)


def test_no_variance_is_no_evidence() -> None:
    """Without data (or with no outcome of the rarer kind) the evidence is minus infinity."""
    assert log_mixture_ratio(0.5, 0.0, 0.1) == -math.inf
    assert log_mixture_ratio(0.5, 1e-4, 0.0) == -math.inf
    assert log_mixture_ratio(-1.0, 1e-8, 0.1) == -math.inf  # Phi underflows far below 0


def test_a_few_errors_in_a_small_sample_break_nothing() -> None:
    """3 errors in 20 requests (15% against a 5% limit) is inconclusive, not a breach."""
    result = error_rate_guard(ReleaseTotals(requests=20, server_errors=3), 0.05, ALPHA)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.reason == ("error-rate guard inconclusive: error rate 15% of 20 requests is "
                             "not yet shown above or below the 5% limit")


def test_a_clear_breach_breaks_the_error_rate_guard() -> None:
    """200 errors in 1000 requests is shown above a 5% limit."""
    result = error_rate_guard(ReleaseTotals(requests=1000, server_errors=200), 0.05, ALPHA)
    assert result.verdict is Verdict.BROKEN
    assert result.reason.startswith("error-rate guard broken: error rate 20% of 1000 requests "
                                    "is above the 5% limit (likelihood ratio ")
    assert result.figures["log_evidence_broken"] >= evidence_bound(ALPHA)  # type: ignore[operator]


def test_a_clean_candidate_holds_the_error_rate_guard() -> None:
    """10 errors in 2000 requests is shown below 5%; client errors do not count."""
    result = error_rate_guard(ReleaseTotals(requests=3000, server_errors=10, client_errors=1000),
                              0.05, ALPHA)
    assert result.verdict is Verdict.HOLDS
    assert "error rate 0.5% of 2000 requests is below the 5% limit" in result.reason


def test_guards_at_their_far_edge_are_off() -> None:
    """A 100% error limit and a 0% satisfaction floor judge nothing."""
    bad = ReleaseTotals(requests=100, server_errors=100, ratings=(100, 0, 0, 0, 0))
    assert error_rate_guard(bad, 1.0, ALPHA).verdict is Verdict.OFF
    assert satisfaction_guard(bad, 0.0, ALPHA).verdict is Verdict.OFF


@pytest.mark.parametrize(("ratings", "verdict"), [
    ((200, 0, 0, 0, 800), Verdict.BROKEN),     # 80% happy against a 90% floor
    ((20, 0, 0, 0, 980), Verdict.HOLDS),       # 98%
    ((5, 0, 0, 0, 45), Verdict.INCONCLUSIVE),  # 90% of only 50
])
def test_the_satisfaction_guard_judges_the_happy_share(ratings: tuple[int, ...],
                                                       verdict: Verdict) -> None:
    """Satisfaction is judged against the floor with the same sequential test."""
    result = satisfaction_guard(ReleaseTotals(ratings=ratings), 0.9, ALPHA)
    assert result.verdict is verdict
    assert result.figures["ratings"] == sum(ratings)


def test_equal_error_rates_show_no_regression() -> None:
    """Candidate and stable both at 2% hold the regression test."""
    candidate = ReleaseTotals(requests=2000, server_errors=40)
    stable = ReleaseTotals(requests=18_000, server_errors=360)
    result = error_regression(candidate, stable, 0.025, ALPHA)
    assert result.verdict is Verdict.HOLDS
    assert result.reason == ("error-regression holds: error rate 2% on the candidate against "
                             "2% on stable shows no regression")


def test_a_doubled_error_rate_is_a_regression() -> None:
    """4% on 5000 candidate requests against 2% on stable is shown worse."""
    candidate = ReleaseTotals(requests=5000, server_errors=200)
    stable = ReleaseTotals(requests=45_000, server_errors=900)
    result = error_regression(candidate, stable, 0.025, ALPHA)
    assert result.verdict is Verdict.BROKEN
    assert result.figures["candidate"] == pytest.approx(0.04)


def test_a_better_candidate_is_never_a_regression() -> None:
    """A candidate with half stable's errors holds, however large the sample."""
    candidate = ReleaseTotals(requests=100_000, server_errors=1000)
    stable = ReleaseTotals(requests=100_000, server_errors=2000)
    assert error_regression(candidate, stable, 0.025, ALPHA).verdict is Verdict.HOLDS


def test_no_data_on_one_side_shows_no_regression() -> None:
    """Without stable requests there is nothing to compare: holds, with no evidence figure."""
    result = error_regression(ReleaseTotals(requests=10, server_errors=10), ReleaseTotals(),
                              0.025, ALPHA)
    assert result.verdict is Verdict.HOLDS
    assert result.figures["log_evidence"] is None


def test_a_drop_in_satisfaction_is_a_regression() -> None:
    """75% happy on the candidate against 90% on stable, 2000 ratings each, is worse."""
    candidate = ReleaseTotals(ratings=(500, 0, 0, 0, 1500))
    stable = ReleaseTotals(ratings=(200, 0, 0, 0, 1800))
    result = satisfaction_regression(candidate, stable, 0.1, ALPHA)
    assert result.verdict is Verdict.BROKEN
    assert "unhappy share 25% on the candidate against 10% on stable" in result.reason
    assert satisfaction_regression(stable, candidate, 0.1, ALPHA).verdict is Verdict.HOLDS


def test_a_handful_of_rare_errors_is_not_compared() -> None:
    """5 errors in 1,000 candidate requests against none in 9,000 on stable expects 0.5 on the
    candidate side, too few for the normal approximation: the regression waits, holding."""
    candidate = ReleaseTotals(requests=1000, server_errors=5)
    stable = ReleaseTotals(requests=9000)
    result = error_regression(candidate, stable, 0.025, ALPHA)
    assert result.verdict is Verdict.HOLDS
    assert result.reason.endswith("is too few events to compare (0.5 expected on the smaller "
                                  "side, 5 needed)")
    assert result.figures["log_evidence"] is None
    # The same rates with ten times the traffic are compared, and are a regression.
    many = error_regression(ReleaseTotals(requests=10_000, server_errors=50),
                            ReleaseTotals(requests=90_000), 0.025, ALPHA)
    assert many.verdict is Verdict.BROKEN
