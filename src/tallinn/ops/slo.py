"""A channel's releases over a window, and the success metrics they are judged by.

    status = channel_status(store, "production", timedelta(hours=24))
    report = slo_report(store, "production", timedelta(days=7))
    report.verdict                      # Verdict.PASS, Verdict.FAIL or Verdict.NO_DATA

`channel_status` gives the stable release the channel points at, the rollout under way (its
step and shares) and, for each release served, its figures over the window: requests, server
and client errors, error rate, ratings and satisfaction. They are read from what every
replica flushes (`rollout_signals`) and the ratings clients gave (`rollout_ratings`) up to the
window's first whole hour, in one grouped query each, and from the hourly sums of both
(`release_hours`) on: the cost follows the number of releases and hours, not the requests,
and a window longer than the minutes are kept is still whole.

`slo_report` judges the same figures of each release served against the success metrics
(thresholds below); see docs/monitoring.md, "Status and success metrics", for the
definitions and their blind spots:

- error rate: server errors / (requests - client errors) < 5%;
- satisfaction: the share of 4 and 5 star ratings > 80%;
- critical errors: none, where a critical error is a server-side error (any class but the
  client's, `CLIENT_ERROR_CLASSES`) on a command whose front matter says `critical: true` in
  that release;
- availability: 1 - server errors / served requests >= 99.9%.

A metric without data (no request served, no rating) is `NO_DATA`: it neither passes nor fails.

Latency (p50 and p95) is read from the histogram every signal batch carries (batches written
before it existed count as not timed); a release with no timed request has `Latency()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from tallinn.library.loader import build_library
from tallinn.library.source import FilesSource
from tallinn.ops.error_log import GROUPS_LIMIT_MAX, ErrorGroup
from tallinn.ops.release_hours import HOUR, hour_of, read_hours
from tallinn.ops.rollout.signals import (
    NO_LATENCY,
    add_batch,
    add_rating,
    latency_quantile,
    stored_latency,
)
from tallinn.ops.schema import rollout_ratings, rollout_signals

if TYPE_CHECKING:
    from tallinn.ops.records import Release
    from tallinn.ops.rollouts import Rollout
    from tallinn.ops.store import Store

__all__ = [
    "AVAILABILITY_MIN",
    "CLIENT_ERROR_CLASSES",
    "ERROR_RATE_MAX",
    "MAX_WINDOW",
    "SATISFACTION_MIN",
    "ChannelStatus",
    "Check",
    "Latency",
    "ReleaseFigures",
    "ReleaseSlo",
    "SloReport",
    "Verdict",
    "channel_status",
    "critical_commands",
    "critical_errors",
    "release_figures",
    "release_latency",
    "slo_report",
]

MAX_WINDOW = timedelta(days=90)
ERROR_RATE_MAX = 0.05
SATISFACTION_MIN = 0.80
AVAILABILITY_MIN = 0.999
# What the servers record a client's mistake as (tallinn.serve: bad arguments, a tool's
# argument problem); every other class is the release's or the server's fault.
CLIENT_ERROR_CLASSES = frozenset({"InvalidParams", "ToolError"})


class Verdict(StrEnum):
    """How one metric, one release or a whole report came out."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    NO_DATA = "NO DATA"


@dataclass(frozen=True, slots=True)
class Latency:
    """A release's response times over a window, in seconds; None with no timed request."""

    p50_seconds: float | None = None
    p95_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ReleaseFigures:
    """What one release's clients experienced over a window:
    `ReleaseFigures("ab12...", "3", requests=1200, server_errors=6, client_errors=10)`."""

    release: str
    version: str
    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    ratings: int = 0
    satisfied: int = 0
    latency: Latency = field(default_factory=Latency)

    @property
    def served(self) -> int:
        """The requests that are the release's business: all but the client errors."""
        return self.requests - self.client_errors

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.served if self.served > 0 else None

    @property
    def availability(self) -> float | None:
        return 1 - self.server_errors / self.served if self.served > 0 else None

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.ratings if self.ratings > 0 else None


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """A channel now: its stable release, the rollout under way (or None), and each served
    release's figures over `since`..`now`, the stable first."""

    channel: str
    now: datetime
    since: datetime
    stable: Release
    rollout: Rollout | None
    figures: tuple[ReleaseFigures, ...]

    def role(self, release: str) -> str:
        """`stable` or `candidate`."""
        return "stable" if release == self.stable.id else "candidate"


@dataclass(frozen=True, slots=True)
class Check:
    """One success metric of one release: `Check("error rate", PASS, 0.005, "<", 0.05)`."""

    name: str
    verdict: Verdict
    figure: float | None
    comparison: str
    threshold: float
    detail: str


@dataclass(frozen=True, slots=True)
class ReleaseSlo:
    """Every metric of one release, and the critical error groups seen in the window."""

    figures: ReleaseFigures
    role: str
    checks: tuple[Check, ...]
    critical: tuple[ErrorGroup, ...]

    @property
    def verdict(self) -> Verdict:
        return combined(check.verdict for check in self.checks)


@dataclass(frozen=True, slots=True)
class SloReport:
    """The success metrics of a channel's served releases over a window."""

    status: ChannelStatus
    releases: tuple[ReleaseSlo, ...]

    @property
    def verdict(self) -> Verdict:
        """FAIL when any metric of any release fails; PASS when at least one passes and none
        fails; NO_DATA when no metric had data."""
        return combined(release.verdict for release in self.releases)


def combined(verdicts: Iterable[Verdict]) -> Verdict:
    """FAIL over PASS over NO_DATA."""
    seen = set(verdicts)
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    return Verdict.PASS if Verdict.PASS in seen else Verdict.NO_DATA


def release_figures(store: Store, releases: Mapping[str, str], since: datetime,
                    until: datetime | None = None) -> dict[str, ReleaseFigures]:
    """Given `{release id: version}`, each release's figures over `since`..now: from the
    minutes and ratings themselves up to the first whole hour, and from the hourly sums
    (`release_hours`) on, so a quarter costs one row an hour a release. With `until`, over
    `since`..`until` from the minutes and ratings alone."""
    ids = list(releases)
    # Per release: requests, server errors, client errors, ratings, satisfied ratings.
    counts = {release: [0, 0, 0, 0, 0] for release in ids}
    summed: dict[str, list[int]] = {}
    edge = until if until is not None else _next_hour(since)
    with store.database.transaction("read release figures") as connection:
        _minute_counts(connection, ids, since, edge, counts)
        _minute_latency(connection, ids, since, edge, summed)
        if until is None:
            for hour in read_hours(connection, ids, edge):
                c = counts[hour.release]
                for index, n in enumerate(hour.counts):
                    c[index] += n
                _add(summed, hour.release, hour.latency)
    latency = _latencies(summed)
    return {release: ReleaseFigures(release, releases[release], requests=c[0],
                                    server_errors=c[1], client_errors=c[2], ratings=c[3],
                                    satisfied=c[4], latency=latency.get(release, Latency()))
            for release, c in counts.items()}


def release_latency(store: Store, releases: list[str], since: datetime,
                    until: datetime | None = None) -> dict[str, Latency]:
    """Each release's p50 and p95 response time over the window, from the histograms of its
    signal batches (grouped by histogram, so equal ones are read once)."""
    summed: dict[str, list[int]] = {}
    with store.database.transaction("read release latency") as connection:
        _minute_latency(connection, releases, since, until, summed)
    return _latencies(summed)


def _next_hour(moment: datetime) -> datetime:
    start = hour_of(moment)
    return start if start == moment else start + HOUR


def _minute_counts(connection: Connection, ids: list[str], since: datetime,
                   until: datetime | None, counts: dict[str, list[int]]) -> None:
    """Add the minutes' and the ratings' counts of `since`..`until`, in two grouped queries."""
    s, r = rollout_signals, rollout_ratings
    signals = (select(s.c.release_id, s.c.stars, func.sum(s.c.requests),
                      func.sum(s.c.server_errors), func.sum(s.c.client_errors),
                      func.count())
               .where(s.c.release_id.in_(ids), s.c.minute >= since)
               .group_by(s.c.release_id, s.c.stars))
    ratings = (select(r.c.release_id, r.c.rating, func.count())
               .where(r.c.release_id.in_(ids), r.c.at >= since)
               .group_by(r.c.release_id, r.c.rating))
    if until is not None:
        signals = signals.where(s.c.minute < until)
        ratings = ratings.where(r.c.at < until)
    for release, stars, requests, server, client, batches in connection.execute(signals):
        # Rows with the same stars were grouped: their ratings count `batches` times.
        add_batch(counts[release], requests, server, client, stars, int(batches))
    for release, rating, n in connection.execute(ratings):
        add_rating(counts[release], rating, int(n))


def _minute_latency(connection: Connection, ids: list[str], since: datetime,
                    until: datetime | None, summed: dict[str, list[int]]) -> None:
    s = rollout_signals
    query = (select(s.c.release_id, s.c.latency, func.count())
             .where(s.c.release_id.in_(ids), s.c.minute >= since, s.c.latency != "")
             .group_by(s.c.release_id, s.c.latency))
    if until is not None:
        query = query.where(s.c.minute < until)
    for release, histogram, batches in connection.execute(query):
        _add(summed, release, [n * int(batches) for n in stored_latency(str(histogram))])


def _add(summed: dict[str, list[int]], release: str, histogram: Iterable[int]) -> None:
    counts = summed.setdefault(release, [0] * len(NO_LATENCY))
    for index, n in enumerate(histogram):
        counts[index] += n


def _latencies(summed: Mapping[str, list[int]]) -> dict[str, Latency]:
    found: dict[str, Latency] = {}
    for release, counts in summed.items():
        p50, p95 = latency_quantile(tuple(counts), 0.5), latency_quantile(tuple(counts), 0.95)
        if p50 is not None and p95 is not None:
            found[release] = Latency(p50 / 1000, p95 / 1000)
    return found


def channel_status(store: Store, channel: str, window: timedelta) -> ChannelStatus | None:
    """The channel's stable release, its rollout under way and each served release's figures
    over the last `window` (1 minute..`MAX_WINDOW`); None when the channel serves nothing."""
    if not timedelta(minutes=1) <= window <= MAX_WINDOW:
        raise ValueError(f"window must be between 1 minute and {MAX_WINDOW.days} days, "
                         f"not {window}")
    state = store.channels.current(channel)
    if state is None:
        return None
    now = store.rollouts.now()
    rollout = store.rollouts.active(channel)
    served = {state.release.id: state.release.version}
    if rollout is not None:
        served[rollout.candidate.id] = rollout.candidate.version
    since = now - window
    figures = release_figures(store, served, since)
    return ChannelStatus(channel, now, since, state.release, rollout,
                         tuple(figures[release] for release in served))


def critical_commands(store: Store, release: str) -> frozenset[str]:
    """The names of the commands whose front matter says `critical: true` in the release with
    id `release`, read from its stored files and built as a server would build them."""
    library = build_library(FilesSource(store.releases.files(release),
                                        label=f"release {release[:12]}"))
    return frozenset(name for name, command in library.commands.items() if command.critical)


def critical_errors(store: Store, release: str, since: datetime,
                    critical: frozenset[str]) -> tuple[ErrorGroup, ...]:
    """The error groups of `release` seen since `since` that are server-side (any class but
    `CLIENT_ERROR_CLASSES`) and name one of the `critical` commands; the newest
    `GROUPS_LIMIT_MAX` groups are read."""
    if not critical:
        return ()
    return tuple(group for group in store.errors.groups(release=release, since=since,
                                                        limit=GROUPS_LIMIT_MAX)
                 if group.error_class not in CLIENT_ERROR_CLASSES and group.where in critical)


def slo_report(store: Store, channel: str, window: timedelta) -> SloReport | None:
    """The success metrics of each release the channel serves, over the last `window`;
    None when the channel serves nothing."""
    status = channel_status(store, channel, window)
    if status is None:
        return None
    judged = []
    for figures in status.figures:
        critical = critical_errors(store, figures.release, status.since,
                                   critical_commands(store, figures.release))
        judged.append(ReleaseSlo(figures, status.role(figures.release),
                                 judge(figures, critical), critical))
    return SloReport(status, tuple(judged))


def judge(figures: ReleaseFigures, critical: tuple[ErrorGroup, ...]) -> tuple[Check, ...]:
    """The four success metrics of one release's figures."""
    served = f"{figures.server_errors:,} server errors of {figures.served:,} served requests"
    no_requests = "no request served in the window"
    rate, availability, satisfaction = (figures.error_rate, figures.availability,
                                        figures.satisfaction)
    hits = sum(group.count for group in critical)
    if critical:
        critical_verdict = Verdict.FAIL
        named = ", ".join(sorted({f"{g.error_class} on {g.where}" for g in critical}))
        critical_detail = f"{len(critical):,} groups ({hits:,} errors): {named}"
    elif figures.requests == 0:
        critical_verdict, critical_detail = Verdict.NO_DATA, no_requests
    else:
        critical_verdict, critical_detail = Verdict.PASS, "none on a critical command"
    return (
        Check("error rate", _verdict(rate, rate is not None and rate < ERROR_RATE_MAX),
              rate, "<", ERROR_RATE_MAX, served if rate is not None else no_requests),
        Check("satisfaction", _verdict(satisfaction, satisfaction is not None
                                       and satisfaction > SATISFACTION_MIN),
              satisfaction, ">", SATISFACTION_MIN,
              f"{figures.satisfied:,} of {figures.ratings:,} ratings 4 or 5 stars"
              if satisfaction is not None else "no ratings in the window"),
        Check("critical errors", critical_verdict, float(len(critical)), "=", 0.0,
              critical_detail),
        Check("availability", _verdict(availability, availability is not None
                                       and availability >= AVAILABILITY_MIN),
              availability, ">=", AVAILABILITY_MIN,
              served if availability is not None else no_requests),
    )


def _verdict(figure: float | None, passed: bool) -> Verdict:
    if figure is None:
        return Verdict.NO_DATA
    return Verdict.PASS if passed else Verdict.FAIL
