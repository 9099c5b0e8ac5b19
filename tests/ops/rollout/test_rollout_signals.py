"""Signals: per-minute counters per replica, their batches, and the merge into window totals."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tallinn.ops.rollout.errors import RatingError
from tallinn.ops.rollout.signals import (
    Outcome,
    ReleaseTotals,
    SignalAggregator,
    SignalBatch,
    merge_batches,
    minute_of,
)

T0 = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_client_errors_are_counted_apart_and_never_in_the_error_rate() -> None:
    """10 requests, 2 server errors and 5 client errors give an error rate of 2 of 5."""
    totals = ReleaseTotals(requests=10, server_errors=2, client_errors=5)
    assert totals.served == 5
    assert totals.error_rate == pytest.approx(0.4)
    assert ReleaseTotals().error_rate == 0.0


def test_satisfaction_is_the_share_of_four_and_five_stars() -> None:
    """One rating each of 1 to 4 stars and three of 5 stars: 4 of 7 ratings are happy."""
    totals = ReleaseTotals(ratings=(1, 1, 1, 1, 3))
    assert (totals.rated, totals.satisfied) == (7, 4)
    assert totals.satisfaction == pytest.approx(4 / 7)
    assert ReleaseTotals().satisfaction == 0.0


def test_the_aggregator_counts_per_release_and_minute() -> None:
    """Requests and ratings land in the counter of their release and their minute."""
    clock = Clock()
    signals = SignalAggregator("web-1", clock)
    signals.record("v1", Outcome.OK)
    signals.record("v1", Outcome.SERVER_ERROR)
    signals.record("v2", Outcome.CLIENT_ERROR)
    signals.rate("v2", 5)
    signals.rate("v2", 2)
    clock.now += timedelta(minutes=1)
    signals.record("v1", Outcome.OK)
    assert signals.drain() == [
        SignalBatch("web-1", 1, "v1", minute_of(T0), ReleaseTotals(2, 1, 0)),
        SignalBatch("web-1", 2, "v2", minute_of(T0), ReleaseTotals(1, 0, 1, (0, 1, 0, 0, 1))),
    ]
    assert signals.drain() == []  # the current minute is still counting
    [last] = signals.drain(everything=True)
    assert (last.seq, last.minute, last.totals) == (3, minute_of(clock.now),
                                                    ReleaseTotals(1, 0, 0))
    assert len(signals) == 0


@pytest.mark.parametrize("stars", [0, 6, -1, 2.5, "5", True, None])
def test_a_rating_outside_one_to_five_is_refused(stars: object) -> None:
    """Stars that are not a whole 1..5 raise RatingError and count nothing."""
    signals = SignalAggregator("web-1", Clock())
    with pytest.raises(RatingError, match=r"must be a whole number of stars in 1..5"):
        signals.rate("v2", stars)
    assert signals.drain(everything=True) == []


def test_counting_from_many_threads_loses_nothing() -> None:
    """Eight threads recording 5,000 requests each give exactly 40,000, errors included."""
    signals = SignalAggregator("web-1", Clock())
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait(timeout=30)
        for index in range(5000):
            signals.record("v2", Outcome.SERVER_ERROR if index % 10 == 0 else Outcome.OK)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    [batch] = signals.drain(everything=True)
    assert (batch.totals.requests, batch.totals.server_errors) == (40_000, 4_000)


def test_memory_is_bounded_and_what_is_dropped_is_counted() -> None:
    """Past max_buckets counters the oldest minute is evicted and its events are counted."""
    clock = Clock()
    signals = SignalAggregator("web-1", clock, max_buckets=3)
    for _minute in range(5):
        signals.record("v2", Outcome.OK)
        signals.record("v2", Outcome.OK)
        signals.rate("v2", 4)
        clock.now += timedelta(minutes=1)
    assert len(signals) == 3
    assert signals.dropped == 2 * 3  # two minutes of two requests and one rating
    minutes = [batch.minute for batch in signals.drain()]
    assert minutes == [minute_of(T0) + timedelta(minutes=n) for n in (2, 3, 4)]
    with pytest.raises(ValueError, match=r"at least 1"):
        SignalAggregator("web-1", clock, max_buckets=0)


def test_batches_a_flush_could_not_write_are_handed_out_again() -> None:
    """restore() puts failed batches back; the next drain carries their counts with new seqs."""
    clock = Clock()
    signals = SignalAggregator("web-1", clock)
    signals.record("v2", Outcome.SERVER_ERROR)
    signals.rate("v2", 1)
    clock.now += timedelta(minutes=1)
    failed = signals.drain()
    signals.restore(failed)
    [again] = signals.drain()
    assert again.totals == failed[0].totals
    assert again.seq == failed[0].seq + 1


def test_a_naive_clock_is_refused() -> None:
    """A clock without a time zone is a TypeError: minutes must be UTC minutes."""
    signals = SignalAggregator("web-1", lambda: datetime(2026, 1, 1))
    with pytest.raises(TypeError, match=r"aware datetimes"):
        signals.record("v2", Outcome.OK)


def test_minutes_are_utc_minutes() -> None:
    """14:05:31 at UTC+2 is the minute 12:05 UTC."""
    local = datetime(2026, 1, 1, 14, 5, 31, 200, tzinfo=timezone(timedelta(hours=2)))
    assert minute_of(local) == datetime(2026, 1, 1, 12, 5, tzinfo=UTC)


def _batch(replica: str, seq: int, release: str, minute: int, requests: int,
           errors: int = 0) -> SignalBatch:
    return SignalBatch(replica, seq, release, minute_of(T0) + timedelta(minutes=minute),
                       ReleaseTotals(requests, errors))


def test_merge_adds_every_replica_and_keeps_to_the_window() -> None:
    """Batches of two replicas add up per release, for the whole minutes of the window only."""
    batches = [
        _batch("web-1", 1, "v1", 0, 100, 1),  # before the window: the step began at 12:00:10
        _batch("web-1", 2, "v1", 1, 100, 2),
        _batch("web-2", 1, "v1", 1, 50, 1),
        _batch("web-2", 2, "v2", 2, 10, 1),
        _batch("web-1", 3, "v2", 3, 10, 0),  # at `until`: left out
    ]
    totals = merge_batches(batches, T0, until=minute_of(T0) + timedelta(minutes=3))
    assert totals == {"v1": ReleaseTotals(150, 3), "v2": ReleaseTotals(10, 1)}
    everything = merge_batches(batches, minute_of(T0))
    assert everything["v1"] == ReleaseTotals(250, 4)
    assert everything["v2"] == ReleaseTotals(20, 1)


def test_a_batch_written_twice_counts_once() -> None:
    """The same (replica, seq) twice, as after a retried flush, is counted once."""
    batch = _batch("web-1", 7, "v2", 1, 10, 1)
    assert merge_batches([batch, batch], T0) == {"v2": ReleaseTotals(10, 1)}
