"""The guards that judge a candidate: absolute limits and a regression test against stable.

Each guard is a one-sided sequential test, the mixture sequential probability ratio test
(mSPRT; Robbins 1970, Johari et al. 2017, "Always valid inference"). Its statistic is the
likelihood ratio of "the effect is above 0" against "it is 0", averaged over effects drawn
from a half-normal prior of scale `tau`; under the null hypothesis that ratio is a
nonnegative martingale, so by Ville's inequality the chance it EVER reaches `1/alpha` is at
most `alpha`, however often it is looked at. The controller therefore looks at every tick.
The counts enter through the normal approximation of a binomial proportion (variance
`p(1-p)/n`), which is why a plan's sample sizes have a floor (see `plan.MIN_EXPECTED_COUNT`);
the simulation in the test suite checks the false-alarm rate that results.

- `error_rate_guard`: the candidate's error rate against the plan's limit. Broken when the
  test shows the rate above the limit, holding when it shows it below, else inconclusive.
  A few errors in a small sample break nothing: they are not evidence yet.
- `satisfaction_guard`: the share of 4- and 5-star ratings against the floor, the same way.
- `error_regression`, `satisfaction_regression`: candidate against stable on the same window
  (pooled variance), broken when the candidate is shown worse. Not shown worse holds, and so
  does a window with fewer than `MIN_EXPECTED_COUNT` events expected on its smaller side
  (the limit guards watch that case).

The closed form, for an estimate `d` of the effect with variance `V` and `x = d*tau/sqrt(V*(V
+ tau**2))`: `ratio = 2 * sqrt(V / (V + tau**2)) * exp(x**2 / 2) * Phi(x)`, computed in logs
with `math` only: no statistics library is needed for a few lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from tallinn.ops.rollout.plan import MIN_EXPECTED_COUNT, percent
from tallinn.ops.rollout.signals import ReleaseTotals

# The prior's scale as a share of the room a guard watches: effects of about half the error
# limit (2.5 points for a 5% limit: a doubling of a 2% rate), or half the unhappy share at
# the satisfaction floor. Power is flat around it; validity does not depend on it.
MIXTURE_SCALE = 0.5

Figures = dict[str, float | int | str | None]


class Verdict(StrEnum):
    """What a guard found."""

    HOLDS = "holds"
    BROKEN = "broken"
    INCONCLUSIVE = "inconclusive"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class GuardResult:
    """One guard's verdict, its one-line reason and the figures behind it.

    `GuardResult("error-rate", Verdict.BROKEN, "error rate 9% of 2400 requests is above the
    5% limit (likelihood ratio 3e+04 >= 160)", {...})`.
    """

    name: str
    verdict: Verdict
    reason: str
    figures: Figures = field(default_factory=dict)


def log_mixture_ratio(effect: float, variance: float, scale: float) -> float:
    """The log of the one-sided mixture likelihood ratio that `effect` is above 0.

    Given an estimate 0.02 with variance 1e-5 and prior scale 0.025, return about 17.7 (strong
    evidence); a negative estimate gives a ratio below 1. No variance (no data, or no
    outcome of the rarer kind at all) is no evidence: minus infinity.
    """
    if variance <= 0 or scale <= 0:
        return -math.inf
    total = variance + scale * scale
    x = effect * scale / math.sqrt(variance * total)
    tail = 0.5 * math.erfc(-x / math.sqrt(2))  # Phi(x), accurate far into the lower tail
    if tail <= 0:
        return -math.inf
    return math.log(2.0) + 0.5 * math.log(variance / total) + x * x / 2 + math.log(tail)


def evidence_bound(alpha: float) -> float:
    """The log likelihood ratio a test must reach to decide at false-alarm rate `alpha`."""
    return math.log(1 / alpha)


def error_rate_guard(candidate: ReleaseTotals, limit: float, alpha: float) -> GuardResult:
    """Judge the candidate's error rate against `limit` (0.05 for 5%); 100% turns it off."""
    name = "error-rate"
    if limit >= 1:
        return GuardResult(name, Verdict.OFF, "error-rate guard off (limit 100%)")
    rate, n = candidate.error_rate, candidate.served
    described = f"error rate {percent(rate)} of {n} requests"
    return _against_threshold(name, rate - limit, limit * (1 - limit) / n if n else 0.0,
                              MIXTURE_SCALE * limit, alpha,
                              worse=f"{described} is above the {percent(limit)} limit",
                              better=f"{described} is below the {percent(limit)} limit",
                              unsure=f"{described} is not yet shown above or below the "
                                     f"{percent(limit)} limit",
                              figures={"error_rate": rate, "requests": n, "limit": limit})


def satisfaction_guard(candidate: ReleaseTotals, floor: float, alpha: float) -> GuardResult:
    """Judge the candidate's satisfaction against `floor` (0.8 for 80%); 0% turns it off."""
    name = "satisfaction"
    if floor <= 0:
        return GuardResult(name, Verdict.OFF, "satisfaction guard off (floor 0%)")
    share, n = candidate.satisfaction, candidate.rated
    described = f"satisfaction {percent(share)} of {n} ratings"
    return _against_threshold(name, floor - share, floor * (1 - floor) / n if n else 0.0,
                              MIXTURE_SCALE * (1 - floor), alpha,
                              worse=f"{described} is below the {percent(floor)} floor",
                              better=f"{described} is above the {percent(floor)} floor",
                              unsure=f"{described} is not yet shown above or below the "
                                     f"{percent(floor)} floor",
                              figures={"satisfaction": share, "ratings": n, "floor": floor})


def error_regression(candidate: ReleaseTotals, stable: ReleaseTotals, scale: float,
                     alpha: float) -> GuardResult:
    """Test whether the candidate's error rate is worse than stable's on the same window."""
    return _regression(
        "error-regression", "error rate", candidate.error_rate, stable.error_rate,
        candidate.served, stable.served, candidate.server_errors + stable.server_errors,
        scale, alpha)


def satisfaction_regression(candidate: ReleaseTotals, stable: ReleaseTotals, scale: float,
                            alpha: float) -> GuardResult:
    """Test whether the candidate's satisfaction is worse (lower) than stable's."""
    unhappy = candidate.rated - candidate.satisfied + stable.rated - stable.satisfied
    return _regression(
        "satisfaction-regression", "unhappy share", 1 - candidate.satisfaction,
        1 - stable.satisfaction, candidate.rated, stable.rated, unhappy, scale, alpha)


def _regression(name: str, what: str, candidate_rate: float, stable_rate: float,
                candidate_n: int, stable_n: int, events: int, scale: float,
                alpha: float) -> GuardResult:
    # Under "no difference" both releases share one rate: the pooled rate gives the variance.
    total = candidate_n + stable_n
    pooled = events / total if total else 0.0
    variance = (pooled * (1 - pooled) * (1 / candidate_n + 1 / stable_n)
                if candidate_n and stable_n else 0.0)
    # With fewer events expected on the smaller side than the normal approximation needs, a
    # handful of them would pass for strong evidence: the comparison waits for more.
    expected = min(pooled, 1 - pooled) * min(candidate_n, stable_n)
    enough = expected >= MIN_EXPECTED_COUNT
    evidence = log_mixture_ratio(candidate_rate - stable_rate, variance, scale) if enough \
        else -math.inf
    bound = evidence_bound(alpha)
    figures: Figures = {"candidate": candidate_rate, "stable": stable_rate,
                        "candidate_n": candidate_n, "stable_n": stable_n,
                        "expected_events": expected,
                        "log_evidence": _finite(evidence), "log_bound": bound}
    compared = (f"{what} {percent(candidate_rate)} on the candidate against "
                f"{percent(stable_rate)} on stable")
    if not enough:
        return GuardResult(name, Verdict.HOLDS,
                           f"{name} holds: {compared} is too few events to compare "
                           f"({expected:.3g} expected on the smaller side, "
                           f"{MIN_EXPECTED_COUNT} needed)", figures)
    if evidence >= bound:
        return GuardResult(name, Verdict.BROKEN,
                           f"{name} broken: {compared} is a regression "
                           f"({_ratio(evidence, bound)})", figures)
    return GuardResult(name, Verdict.HOLDS, f"{name} holds: {compared} shows no regression",
                       figures)


def _against_threshold(name: str, excess: float, variance: float, scale: float, alpha: float,
                       *, worse: str, better: str, unsure: str,
                       figures: Figures) -> GuardResult:
    bound = evidence_bound(alpha)
    against = log_mixture_ratio(excess, variance, scale)
    for_ = log_mixture_ratio(-excess, variance, scale)
    figures = {**figures, "log_evidence_broken": _finite(against),
               "log_evidence_holds": _finite(for_), "log_bound": bound}
    if against >= bound:
        return GuardResult(name, Verdict.BROKEN,
                           f"{name} guard broken: {worse} ({_ratio(against, bound)})", figures)
    if for_ >= bound:
        return GuardResult(name, Verdict.HOLDS,
                           f"{name} guard holds: {better} ({_ratio(for_, bound)})", figures)
    return GuardResult(name, Verdict.INCONCLUSIVE, f"{name} guard inconclusive: {unsure}",
                       figures)


def _ratio(evidence: float, bound: float) -> str:
    return (f"likelihood ratio {math.exp(min(evidence, 700.0)):.3g} >= "
            f"{math.exp(bound):.3g}")


def _finite(value: float) -> float | None:
    """The log evidence for the audit entry; None where there is none at all (-inf)."""
    return value if math.isfinite(value) else None
