"""A channel's figures over a window and its success metrics, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest
from tests.ops.conftest import FakeClock

from tallinn.ops.error_log import ErrorEvent
from tallinn.ops.records import Release
from tallinn.ops.rollout import ReleaseTotals, SignalBatch, parse_plan
from tallinn.ops.rollout.signals import LATENCY_BOUNDS_MS, NO_LATENCY, minute_of
from tallinn.ops.slo import (
    MAX_WINDOW,
    Verdict,
    channel_status,
    critical_commands,
    release_figures,
    release_latency,
    slo_report,
)
from tallinn.ops.store import Store

PAY = b"---\ndescription: Take a payment\ncritical: true\n---\nPay.\n"
HELLO = b"---\ndescription: Say hello\n---\nHello.\n"
FILES = {"commands/shop/pay.md": PAY, "commands/hello.md": HELLO}
DAY = timedelta(days=1)
_seq = count(1)


def released(store: Store, extra: bytes = b"") -> tuple[Release, Release]:
    """Release 1 (production) and release 2, both with the critical command `pay`."""
    one = store.releases.create(FILES, actor="ci", version="1")
    two = store.releases.create({**FILES, "commands/bye.md": b"Bye.\n" + extra}, actor="ci",
                                version="2")
    store.channels.promote("1", actor="ci", reason="first")
    return one, two


def start_rollout(store: Store, clock: FakeClock) -> None:
    """Release 2 to 10% of production's clients, 10 minutes ago."""
    store.rollouts.start(parse_plan("2", channel="production", steps="10,50,100", hold="1h",
                                    min_ratings="0"), actor="a", reason="go")
    clock.advance(minutes=10)


def signal(store: Store, release: Release, ago: timedelta, requests: int,
           server: int = 0, client: int = 0, stars: tuple[int, ...] = (0,) * 5) -> None:
    """One replica's batch for `release`, `ago` before the store's clock."""
    store.rollouts.record_signals([SignalBatch(
        "web-1", next(_seq), release.id, minute_of(store.rollouts.now() - ago),
        ReleaseTotals(requests, server, client, stars))])


def rate(store: Store, release: Release, *stars: int) -> None:
    for given in stars:
        store.rollouts.rate(release.id, "pay", given, client="alice")


def error(store: Store, release: Release, where: str, error_class: str,
          ago: timedelta = timedelta(hours=1)) -> None:
    store.errors.record([ErrorEvent.capture(
        "could not render line 3", at=store.rollouts.now() - ago, where=where,
        release=release.id, error_class=error_class)])


def passing_month(store: Store, release: Release) -> None:
    """30 days of traffic: 30,000 requests, 20 server errors, 100 client errors; 10 ratings,
    9 of them 4 or 5 stars."""
    for day in range(30):
        signal(store, release, day * DAY + timedelta(hours=1), 1000, server=1 if day < 20
               else 0, client=100 if day == 0 else 0)
    rate(store, release, 5, 5, 5, 4, 4, 4, 4, 5, 5, 2)


def verdicts(report: object) -> dict[str, str]:
    assert report is not None
    return {check.name: str(check.verdict)
            for check in report.releases[0].checks}  # type: ignore[attr-defined]


def test_status_gives_each_served_release_its_figures_over_the_window(clocked: Store) -> None:
    """The stable's requests, errors, ratings and satisfaction count only what is inside the
    window, and a channel with no rollout has only the stable."""
    one, _ = released(clocked)
    signal(clocked, one, timedelta(hours=2), 200, server=4, client=40)
    signal(clocked, one, timedelta(hours=30), 999, server=999)  # before the window
    rate(clocked, one, 5, 4, 1, 3)
    status = channel_status(clocked, "production", DAY)
    assert status is not None
    assert status.rollout is None
    assert status.stable.id == one.id
    (figures,) = status.figures
    assert (figures.requests, figures.server_errors, figures.client_errors) == (200, 4, 40)
    assert figures.error_rate == pytest.approx(4 / 160)
    assert (figures.ratings, figures.satisfied, figures.satisfaction) == (4, 2, 0.5)
    assert figures.latency.p50_seconds is None
    assert figures.latency.p95_seconds is None


def test_status_during_a_rollout_shows_both_releases_and_the_shares(
        clocked: Store, clock: FakeClock) -> None:
    """During a rollout the candidate's figures follow the stable's, apart."""
    one, two = released(clocked)
    start_rollout(clocked, clock)
    signal(clocked, one, timedelta(minutes=5), 900, server=9)
    signal(clocked, two, timedelta(minutes=5), 100, server=1, stars=(0, 0, 0, 1, 1))
    status = channel_status(clocked, "production", timedelta(hours=1))
    assert status is not None
    assert status.rollout is not None
    assert status.rollout.share == 10
    assert [(f.version, f.requests, f.server_errors, f.ratings) for f in status.figures] == [
        ("1", 900, 9, 0), ("2", 100, 1, 2)]
    assert status.role(two.id) == "candidate"


def test_a_channel_serving_nothing_has_no_status(store: Store) -> None:
    """A channel no release was promoted to has neither status nor report."""
    assert channel_status(store, "production", DAY) is None
    assert slo_report(store, "production", DAY) is None


@pytest.mark.parametrize("window", [timedelta(seconds=30), MAX_WINDOW + timedelta(minutes=1)])
def test_a_window_out_of_bounds_is_refused(store: Store, window: timedelta) -> None:
    """A window under 1 minute or over 90 days is refused."""
    with pytest.raises(ValueError, match="between 1 minute and 90 days"):
        channel_status(store, "production", window)


def test_figures_are_read_in_two_grouped_queries_whatever_the_number_of_batches(
        store: Store) -> None:
    """Ten times the batches cost no more statements: the reads group in the database."""
    one, _ = released(store)
    statements: list[str] = []

    from sqlalchemy import event

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    for _ in range(5):
        signal(store, one, timedelta(minutes=3), 10)
    event.listen(store.engine, "before_cursor_execute", seen)
    try:
        release_figures(store, {one.id: "1"}, store.rollouts.now() - DAY)
        few = len(statements)
        event.remove(store.engine, "before_cursor_execute", seen)
        for _ in range(45):
            signal(store, one, timedelta(minutes=3), 10)
        statements.clear()
        event.listen(store.engine, "before_cursor_execute", seen)
        figures = release_figures(store, {one.id: "1"}, store.rollouts.now() - DAY)
    finally:
        if event.contains(store.engine, "before_cursor_execute", seen):
            event.remove(store.engine, "before_cursor_execute", seen)
    assert figures[one.id].requests == 500
    assert len(statements) == few
    # Counts and ratings in two queries, latency in a third.
    assert sum("rollout_signals" in s or "rollout_ratings" in s for s in statements) == 3


def test_latency_comes_from_the_batches_histograms(store: Store) -> None:
    """p50 and p95 are read from the histograms of the window's batches, added up; a release
    with no timed request has none."""
    one, two = released(store)
    histogram = [0] * len(NO_LATENCY)
    histogram[LATENCY_BOUNDS_MS.index(25)] = 100  # 100 requests of 10-25 ms
    minute = minute_of(store.rollouts.now() - timedelta(hours=1))
    store.rollouts.record_signals([
        SignalBatch("a", 1, one.id, minute, ReleaseTotals(100, latency=tuple(histogram))),
        SignalBatch("b", 2, one.id, minute, ReleaseTotals(100, latency=tuple(histogram)))])
    found = release_latency(store, [one.id, two.id], store.rollouts.now() - DAY)
    assert set(found) == {one.id}
    assert found[one.id].p50_seconds == pytest.approx(0.0175)
    assert found[one.id].p95_seconds == pytest.approx(0.02425)


def test_a_passing_month_passes_every_metric(clocked: Store) -> None:
    """A month of few server errors and happy ratings passes all four metrics."""
    one, _ = released(clocked)
    passing_month(clocked, one)
    report = slo_report(clocked, "production", timedelta(days=30))
    assert report is not None
    assert verdicts(report) == {"error rate": "PASS", "satisfaction": "PASS",
                                "critical errors": "PASS", "availability": "PASS"}
    assert report.verdict is Verdict.PASS
    checks = {check.name: check for check in report.releases[0].checks}
    assert checks["error rate"].figure == pytest.approx(20 / 29_900)
    assert checks["satisfaction"].figure == pytest.approx(0.9)
    assert checks["availability"].figure == pytest.approx(1 - 20 / 29_900)


def test_a_high_error_rate_fails_error_rate_and_availability(clocked: Store) -> None:
    """6 server errors in 100 served requests fail the error rate (>= 5%) and availability."""
    one, _ = released(clocked)
    signal(clocked, one, timedelta(hours=1), 100, server=6)
    rate(clocked, one, 5)
    assert verdicts(slo_report(clocked, "production", DAY)) == {
        "error rate": "FAIL", "satisfaction": "PASS", "critical errors": "PASS",
        "availability": "FAIL"}


def test_availability_fails_on_its_own_below_99_9_percent(clocked: Store) -> None:
    """2 server errors in 1,000 served requests pass the error rate but not availability."""
    one, _ = released(clocked)
    signal(clocked, one, timedelta(hours=1), 1000, server=2)
    rate(clocked, one, 5)
    report = slo_report(clocked, "production", DAY)
    assert verdicts(report) == {"error rate": "PASS", "satisfaction": "PASS",
                                "critical errors": "PASS", "availability": "FAIL"}
    assert report is not None
    assert report.verdict is Verdict.FAIL


def test_unhappy_ratings_fail_satisfaction_on_its_own(clocked: Store) -> None:
    """Exactly 80% of 4-5 star ratings is not above 80%: satisfaction fails alone."""
    one, _ = released(clocked)
    signal(clocked, one, timedelta(hours=1), 1000)
    rate(clocked, one, 5, 5, 4, 4, 2)
    assert verdicts(slo_report(clocked, "production", DAY)) == {
        "error rate": "PASS", "satisfaction": "FAIL", "critical errors": "PASS",
        "availability": "PASS"}


def test_no_ratings_is_no_data_and_does_not_fail(clocked: Store) -> None:
    """A release nobody rated has no satisfaction figure; the report still passes."""
    one, _ = released(clocked)
    signal(clocked, one, timedelta(hours=1), 1000)
    report = slo_report(clocked, "production", DAY)
    assert verdicts(report)["satisfaction"] == "NO DATA"
    assert report is not None
    assert report.verdict is Verdict.PASS
    assert report.releases[0].checks[1].figure is None


def test_a_window_without_requests_is_no_data(clocked: Store) -> None:
    """With nothing served in the window every metric is no data, and so is the report."""
    released(clocked)
    report = slo_report(clocked, "production", DAY)
    assert set(verdicts(report).values()) == {"NO DATA"}
    assert report is not None
    assert report.verdict is Verdict.NO_DATA


def test_the_commands_marked_critical_are_read_from_the_stored_release(store: Store) -> None:
    """`critical: true` in a stored release's front matter makes its command critical."""
    one, _ = released(store)
    assert critical_commands(store, one.id) == frozenset({"pay"})


@pytest.mark.parametrize(("where", "error_class", "verdict"), [
    ("pay", "RenderError", "FAIL"),        # a server error on a critical command
    ("pay", "KeyError", "FAIL"),           # an internal error is server-side too
    ("hello", "RenderError", "PASS"),      # a server error on a command not critical
    ("pay", "InvalidParams", "PASS"),      # a client's mistake is never critical
    ("pay", "ToolError", "PASS"),
])
def test_only_a_server_error_on_a_critical_command_is_critical(
        clocked: Store, where: str, error_class: str, verdict: str) -> None:
    """The critical-errors metric fails on a server-side error on a critical command only."""
    one, _ = released(clocked)
    signal(clocked, one, timedelta(hours=1), 1000)
    error(clocked, one, where, error_class)
    report = slo_report(clocked, "production", DAY)
    assert verdicts(report)["critical errors"] == verdict
    assert report is not None
    assert len(report.releases[0].critical) == (verdict == "FAIL")


def test_a_critical_error_before_the_window_or_in_another_release_is_not_counted(
        clocked: Store) -> None:
    """Critical errors count in the window and in the release judged only."""
    one, two = released(clocked)
    signal(clocked, one, timedelta(hours=1), 1000)
    error(clocked, one, "pay", "RenderError", ago=3 * DAY)
    error(clocked, two, "pay", "RenderError")
    assert verdicts(slo_report(clocked, "production", DAY))["critical errors"] == "PASS"
    assert verdicts(slo_report(clocked, "production", 7 * DAY))["critical errors"] == "FAIL"


def test_during_a_rollout_the_candidate_is_judged_apart(
        clocked: Store, clock: FakeClock) -> None:
    """A failing candidate fails the report while the stable passes on its own."""
    one, two = released(clocked)
    start_rollout(clocked, clock)
    signal(clocked, one, timedelta(minutes=5), 1000)
    signal(clocked, two, timedelta(minutes=5), 100, server=10)
    report = slo_report(clocked, "production", DAY)
    assert report is not None
    assert [(r.role, r.figures.version, r.verdict) for r in report.releases] == [
        ("stable", "1", Verdict.PASS), ("candidate", "2", Verdict.FAIL)]
    assert report.verdict is Verdict.FAIL
