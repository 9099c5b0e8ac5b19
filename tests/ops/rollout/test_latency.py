"""Latency in the signals: a fixed histogram per (release, interval), added up across
replicas, its quantiles read as Prometheus reads a histogram's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tallinn.ops.rollout.signals import (
    LATENCY_BOUNDS_MS,
    NO_LATENCY,
    Outcome,
    ReleaseTotals,
    SignalAggregator,
    latency_bucket,
    latency_quantile,
)

NOON = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(("seconds", "bucket"), [
    (0.0, 0), (0.001, 0), (0.0011, 1), (0.004, 2), (0.1, 6), (2.5, 10), (2.6, 11), (60.0, 11),
])
def test_a_request_lands_in_the_bucket_of_its_upper_bound(seconds: float, bucket: int) -> None:
    """Each bucket holds the requests up to its bound, in milliseconds; the last the rest."""
    assert latency_bucket(seconds) == bucket


def test_quantiles_interpolate_inside_their_bucket() -> None:
    """100 requests of 10-25 ms: the median is half way through that bucket, p95 near its
    top; nothing timed has no quantile; all in the slowest bucket gives its lower bound."""
    histogram = [0] * len(NO_LATENCY)
    histogram[LATENCY_BOUNDS_MS.index(25)] = 100
    assert latency_quantile(tuple(histogram), 0.5) == pytest.approx(17.5)
    assert latency_quantile(tuple(histogram), 0.95) == pytest.approx(24.25)
    assert latency_quantile(NO_LATENCY, 0.95) is None
    slow = (0,) * len(LATENCY_BOUNDS_MS) + (7,)
    assert latency_quantile(slow, 0.5) == LATENCY_BOUNDS_MS[-1]


def test_the_aggregator_times_requests_and_totals_add_up() -> None:
    """Timed requests fill the histogram of their (release, minute); untimed ones count as
    requests only; two replicas' totals add bucket by bucket."""
    signals = SignalAggregator("web-1", lambda: NOON)
    for _ in range(9):
        signals.record("v2", Outcome.OK, 0.003)
    signals.record("v2", Outcome.SERVER_ERROR, 0.3)
    signals.record("v2", Outcome.OK)
    (batch,) = signals.drain(everything=True)
    assert batch.totals.requests == 11
    assert sum(batch.totals.latency) == 10
    assert batch.totals.latency[latency_bucket(0.003)] == 9
    both = batch.totals + batch.totals
    assert both.latency[latency_bucket(0.3)] == 2
    assert both.latency_ms(0.5) == batch.totals.latency_ms(0.5)
    assert ReleaseTotals().latency_ms(0.5) is None
