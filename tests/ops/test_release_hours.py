"""The hourly sums of each release's signals and ratings (`release_hours`), and the charts
read from them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import func, insert, select
from tests.ops.concurrency import race
from tests.ops.conftest import FakeClock

from tallinn.ops import migrate
from tallinn.ops.overview import MAX_POINTS, MINUTES_UP_TO, release_series, step_for
from tallinn.ops.release_hours import HOUR, ReleaseHour, hour_of, read_hours
from tallinn.ops.rollout import ReleaseTotals, SignalBatch, parse_plan
from tallinn.ops.rollout.signals import NO_LATENCY, latency_quantile, minute_of
from tallinn.ops.schema import rollout_ratings, rollout_signals
from tallinn.ops.slo import release_figures
from tallinn.ops.store import Store, open_store

MINUTE = timedelta(minutes=1)


def releases(store: Store) -> tuple[str, str]:
    one = store.releases.create({"tallinn.toml": b"v1"}, actor="ci")
    two = store.releases.create({"tallinn.toml": b"v2"}, actor="ci")
    return one.id, two.id


def latency(seed: int) -> tuple[int, ...]:
    return tuple((seed * (i + 3)) % 5 for i in range(len(NO_LATENCY)))


def hours_of(store: Store, ids: tuple[str, ...], since: datetime) -> dict[tuple[str, datetime],
                                                                           ReleaseHour]:
    with store.database.transaction("read") as connection:
        return {(h.release, h.hour): h for h in read_hours(connection, ids, since)}


def test_signals_and_ratings_add_up_in_their_hours(clocked: Store, clock: FakeClock) -> None:
    """Minutes of two replicas and ratings (stored one by one, or counted in a batch) sum per
    release and hour; a flush written twice counts once, and a batch recorded untimed adds no
    latency."""
    one, two = releases(clocked)
    hour = hour_of(clock.now)
    flushed = [
        SignalBatch("a", 1, one, hour + 5 * MINUTE, ReleaseTotals(10, 1, 2, latency=latency(1))),
        SignalBatch("b", 1, one, hour + 59 * MINUTE, ReleaseTotals(5, 0, 1, latency=latency(2))),
        SignalBatch("a", 2, one, hour + HOUR, ReleaseTotals(7, 3, 0, ratings=(1, 0, 1, 2, 3))),
        SignalBatch("a", 3, two, hour, ReleaseTotals(4, latency=latency(3)))]
    assert clocked.rollouts.record_signals(flushed) == 4
    retried = [*flushed[:2], SignalBatch("b", 2, one, hour, ReleaseTotals(1))]  # one new
    assert clocked.rollouts.record_signals(retried) == 1
    for stars in (5, 4, 2):
        clocked.rollouts.rate(one, "review", stars, client="c")
    clock.advance(hours=1)
    clocked.rollouts.rate(two, "review", 1, client="c")

    found = hours_of(clocked, (one, two), hour)
    first = found[(one, hour)]
    assert (first.requests, first.server_errors, first.client_errors) == (16, 1, 3)
    assert (first.ratings, first.satisfied) == (3, 2)
    assert first.latency == tuple(a + b for a, b in zip(latency(1), latency(2), strict=True))
    later = found[(one, hour + HOUR)]
    assert (later.requests, later.server_errors, later.latency) == (7, 3, NO_LATENCY)
    assert (later.ratings, later.satisfied) == (7, 5)  # the ratings a replica counted itself
    assert (found[(two, hour)].requests, found[(two, hour)].latency) == (4, latency(3))
    assert (found[(two, hour + HOUR)].ratings, found[(two, hour + HOUR)].satisfied) == (1, 0)
    assert set(hours_of(clocked, (one,), hour + HOUR)) == {(one, hour + HOUR)}


def test_replicas_flushing_the_same_hour_at_once_all_count(store_url: str, store: Store) -> None:
    """Eight stores writing batches of the same release and hour at the same moment lose none:
    the upsert adds to the row, nobody reads it first."""
    one, _ = releases(store)
    hour = hour_of(store.rollouts.now())

    def flush(opened: Store, i: int) -> object:
        for seq in range(10):
            opened.rollouts.record_signals([SignalBatch(
                f"r{i}", seq, one, hour + seq * MINUTE, ReleaseTotals(1, latency=latency(1)))])
        return None

    assert race(store_url, 8, flush) == [None] * 8
    summed = hours_of(store, (one,), hour)[(one, hour)]
    assert summed.requests == 80
    assert summed.latency == tuple(80 * n for n in latency(1))


def test_a_chart_over_days_reads_the_same_figures_as_the_minutes(clocked: Store,
                                                                 clock: FakeClock) -> None:
    """Over three days of random minutes and ratings, the chart drawn from the hourly sums
    has, hour by hour, the sums of the minutes and the p95 of their merged histograms."""
    ids = releases(clocked)
    generator = random.Random(7)
    start = hour_of(clock.now) - 72 * HOUR
    expected: dict[tuple[str, datetime], list[int]] = {}
    merged: dict[tuple[str, datetime], list[int]] = {}
    batches = []
    for m in range(0, 72 * 60, 7):
        release = ids[m % 2]
        stars = (0, 0, 0, 0, 0) if m % 3 else (0, 1, 0, 1, 1)
        totals = ReleaseTotals(generator.randrange(50), generator.randrange(3),
                               generator.randrange(3), ratings=stars,
                               latency=tuple(generator.randrange(4) for _ in NO_LATENCY))
        batches.append(SignalBatch("a", m, release, start + m * MINUTE, totals))
        sums = expected.setdefault((release, hour_of(start + m * MINUTE)), [0] * 5)
        sums[0] += totals.requests
        sums[1] += totals.server_errors
        sums[2] += totals.client_errors
        sums[3] += sum(stars)
        sums[4] += sum(stars[3:])
        histogram = merged.setdefault((release, hour_of(start + m * MINUTE)), [0] * len(NO_LATENCY))
        for index, n in enumerate(totals.latency):
            histogram[index] += n
    clocked.rollouts.record_signals(batches)
    clock.now = start
    for _ in range(300):
        clock.advance(minutes=generator.randrange(1, 28))
        release, stars = ids[generator.randrange(2)], generator.randrange(1, 6)
        clocked.rollouts.rate(release, "p", stars, client="c")
        sums = expected.setdefault((release, hour_of(clock.now)), [0] * 5)
        sums[3] += 1
        sums[4] += stars >= 4

    step = step_for(72)
    assert step == HOUR
    drawn = {(release, datetime.fromisoformat(p["at"])): p for release, points in
             release_series(clocked, ids, start + 10 * MINUTE, step).items() for p in points}
    assert set(drawn) == set(expected)
    # Drawn from the minutes in 30-minute steps from the same whole hour, pairs of points add
    # up to the hourly ones: both readers count alike.
    halves: dict[tuple[str, datetime], list[int]] = {}
    for release, points in release_series(clocked, ids, start, 30 * MINUTE).items():
        for p in points:
            summed = halves.setdefault((release, hour_of(datetime.fromisoformat(p["at"]))),
                                       [0] * 5)
            for index, name in enumerate(("requests", "server_errors", "client_errors",
                                          "ratings", "satisfied")):
                summed[index] += p[name]
    assert halves == expected
    for key, (requests, server, client, rated, satisfied) in expected.items():
        point = drawn[key]
        assert (point["requests"], point["server_errors"], point["client_errors"],
                point["ratings"], point["satisfied"]) == (requests, server, client, rated,
                                                          satisfied)
        assert point["p95_ms"] == latency_quantile(tuple(merged.get(key, NO_LATENCY)), 0.95)


def test_charts_up_to_a_day_are_by_the_minute_and_longer_ones_by_the_hour() -> None:
    """Every window from a minute to thirty days is cut into at most MAX_POINTS intervals, of
    whole minutes up to MINUTES_UP_TO hours and of whole hours beyond."""
    for hours in (1 / 60, 0.5, 1, 6, 6.1, 23.9, MINUTES_UP_TO, 24.5, 72, 168, 359, 361, 720):
        step = step_for(hours)
        assert hours * HOUR / step <= MAX_POINTS, hours
        unit = HOUR if hours > MINUTES_UP_TO else MINUTE
        assert step >= unit, hours
        assert step % unit == timedelta(0), hours
    assert step_for(6) == MINUTE
    assert step_for(720) == 2 * HOUR


def test_a_store_upgraded_to_hourly_sums_keeps_its_past(store_url: str, store: Store) -> None:
    """A store at revision 0006 holding minutes and ratings gets, on upgrade, the hourly
    sums the write path would have made."""
    one, two = releases(store)
    hour = hour_of(store.rollouts.now()) - 5 * HOUR
    with store.engine.connect() as connection:
        command.downgrade(migrate._config(connection), "0006")
        connection.commit()
    timed = ",".join(map(str, latency(4)))
    with store.engine.begin() as connection:
        connection.execute(insert(rollout_signals), [
            {"replica": "a", "seq": 1, "release_id": one, "minute": hour + MINUTE,
             "requests": 9, "server_errors": 1, "client_errors": 0, "latency": timed,
             "stars": "0,0,0,0,0"},
            {"replica": "b", "seq": 1, "release_id": one, "minute": hour + 30 * MINUTE,
             "requests": 3, "server_errors": 0, "client_errors": 2, "latency": "",
             "stars": "0,0,0,0,0"},
            {"replica": "a", "seq": 2, "release_id": two, "minute": hour + HOUR,
             "requests": 4, "server_errors": 0, "client_errors": 0, "latency": timed,
             "stars": "0,1,0,0,2"}])
        connection.execute(insert(rollout_ratings), [
            {"release_id": one, "prompt": "p", "rating": r, "client": "c",
             "at": hour + 2 * MINUTE} for r in (5, 3)])
    assert migrate.upgrade(store.engine) == ("0006", migrate.head_revision())
    found = hours_of(store, (one, two), hour)
    assert set(found) == {(one, hour), (two, hour + HOUR)}
    first = found[(one, hour)]
    assert (first.requests, first.server_errors, first.client_errors, first.ratings,
            first.satisfied, first.latency) == (12, 1, 2, 2, 1, latency(4))
    assert found[(two, hour + HOUR)].latency == latency(4)
    assert (found[(two, hour + HOUR)].ratings, found[(two, hour + HOUR)].satisfied) == (3, 2)
    with open_store(store_url) as reopened:  # and the write path adds to what was filled
        reopened.rollouts.record_signals([SignalBatch("c", 1, one, hour, ReleaseTotals(1))])
    assert hours_of(store, (one,), hour)[(one, hour)].requests == 13


@pytest.mark.parametrize("moment", ["2026-03-01T10:59:59.999+00:00", "2026-03-01T12:59:00+02:00"])
def test_the_hour_of_a_moment_is_its_utc_hour(moment: str) -> None:
    """Whatever the offset, a moment falls in the UTC hour it happened in."""
    assert hour_of(datetime.fromisoformat(moment)).isoformat() == "2026-03-01T10:00:00+00:00"
    assert minute_of(datetime.fromisoformat(moment)).minute == 59


def test_pruning_keeps_the_minutes_of_a_step_under_way(clocked: Store, clock: FakeClock) -> None:
    """Minutes older than the cut go, except those since the start of a rollout step still
    under way; hourly sums go by their own cut."""
    one, two = releases(clocked)
    clocked.channels.promote("1", actor="ci", reason="first")
    clock.advance(days=-10)
    clocked.rollouts.start(parse_plan("2", channel="production", steps="50,100", hold="30d"),
                           actor="ci", reason="a long step")
    clock.advance(days=10)
    ages = (12, 8, 1)
    clocked.rollouts.record_signals([
        SignalBatch("a", seq, release, minute_of(clock.now - timedelta(days=age)),
                    ReleaseTotals(1)) for seq, (age, release) in enumerate(
                        [(age, one) for age in ages] + [(age, two) for age in ages])])
    week = clock.now - timedelta(days=7)
    assert clocked.rollouts.prune_signals(minutes_before=week, hours_before=week) == (2, 4)
    clocked.rollouts.abort("production", actor="ci", reason="done")
    assert clocked.rollouts.prune_signals(minutes_before=week,
                                          hours_before=clock.now - timedelta(days=30)) == (2, 0)
    with clocked.database.transaction("read") as connection:
        assert connection.execute(select(func.count()).select_from(rollout_signals)).scalar() == 2


def test_a_long_window_is_whole_when_its_minutes_are_gone(clocked: Store,
                                                          clock: FakeClock) -> None:
    """Status over 60 days counts what the hourly sums kept after the minutes were pruned, and
    the minutes of the window's first, partial hour."""
    one, _ = releases(clocked)
    clocked.rollouts.record_signals([
        SignalBatch("a", seq, one, minute_of(clock.now - timedelta(days=age)),
                    ReleaseTotals(10, 1, latency=latency(seq)))
        for seq, age in enumerate((59, 40, 20, 1))])
    cut = clock.now - timedelta(days=30)
    clocked.rollouts.prune_signals(minutes_before=cut, hours_before=cut - timedelta(days=100))
    since = clock.now - timedelta(days=60) + timedelta(minutes=5)
    figures = release_figures(clocked, {one: "1"}, since)[one]
    assert (figures.requests, figures.server_errors) == (40, 4)
    clocked.rollouts.record_signals([  # in the partial first hour, before and after `since`
        SignalBatch("a", 9, one, minute_of(since) - MINUTE, ReleaseTotals(100)),
        SignalBatch("a", 10, one, minute_of(since) + MINUTE, ReleaseTotals(7))])
    assert release_figures(clocked, {one: "1"}, since)[one].requests == 47
