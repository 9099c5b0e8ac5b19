"""What a person watching a channel needs, read from the store in a few bounded queries.

    overview = channel_overview(store, "production", hours=6)

gives the releases the channel serves, the rollout under way (or the last one) with its
figures and the controller's next decision, each release's requests, errors and satisfaction
per interval over the window, and the latest audit entries, feedback comments and security
events. The CLI's `tallinn rollout status` and the server's dashboard show the same figures,
from `rollout_status` here. Every list is bounded (`LATEST`), and every series is read over an
index on (release, time), so the cost follows the window, not what the store has kept: a chart
over more than `MINUTES_UP_TO` hours reads the hourly sums (`release_hours`), one row per
release and hour, so a month costs 720 rows a release whatever the replicas wrote.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from tallinn.ops.release_hours import HOUR, hour_of, read_hours
from tallinn.ops.rollout import decide
from tallinn.ops.rollout.signals import (
    NO_LATENCY,
    add_batch,
    add_rating,
    latency_quantile,
    minute_of,
    stored_latency,
)
from tallinn.ops.schema import audit_log, rollout_ratings, rollout_signals, security_events

if TYPE_CHECKING:
    from tallinn.ops.rollouts import Rollout
    from tallinn.ops.store import Store

LATEST = 20
MAX_HOURS = 24 * 30
MAX_POINTS = 360  # a chart's points per release: the window is cut into this many at most
MINUTES_UP_TO = 24  # hours: a longer chart is drawn by the hour


def rollout_status(store: Store, rollout: Rollout) -> dict[str, Any]:
    """The figures of `rollout` over its current step, and the controller's next decision."""
    window = store.rollouts.window(rollout)
    nxt = None
    if rollout.active:
        decision = decide(rollout.plan, rollout.state, window, store.rollouts.now())
        nxt = {"action": str(decision.action), "reasons": list(decision.reasons),
               "due": None if decision.next_due is None else decision.next_due.isoformat()}
    return {
        "id": rollout.id, "channel": rollout.channel, "phase": str(rollout.state.phase),
        "step": rollout.state.step, "steps": list(rollout.plan.steps), "share": rollout.share,
        "stable": rollout.stable.version, "candidate": rollout.candidate.version,
        "stable_id": rollout.stable.id, "candidate_id": rollout.candidate.id,
        "step_started_at": rollout.state.step_started_at.isoformat(),
        "note": rollout.state.note, "next": nxt,
        **{f"{side}_figures": {"requests": t.requests, "server_errors": t.server_errors,
                               "client_errors": t.client_errors, "error_rate": t.error_rate,
                               "ratings": t.rated, "satisfaction": t.satisfaction,
                               "p50_ms": t.latency_ms(0.5), "p95_ms": t.latency_ms(0.95)}
           for side, t in (("candidate", window.candidate), ("stable", window.stable))},
    }


def step_for(hours: float) -> timedelta:
    """The interval of a chart over `hours`, at most `MAX_POINTS` points: whole minutes up to
    `MINUTES_UP_TO` hours, whole hours beyond (read from the hourly sums)."""
    if hours > MINUTES_UP_TO:
        return timedelta(hours=math.ceil(hours / MAX_POINTS))
    return timedelta(minutes=max(1, math.ceil(hours * 60 / MAX_POINTS)))


def release_series(store: Store, releases: Iterable[str], since: datetime,
                   step: timedelta) -> dict[str, list[dict[str, Any]]]:
    """Per release, per `step` from `since`: requests, server and client errors, ratings and
    satisfied ratings, and the p95 latency (only the intervals with any).

    A step of whole hours is read from `release_hours`, from the hour holding `since`; any
    other from the minutes and the ratings themselves, from the minute holding `since`.
    """
    ids = list(dict.fromkeys(releases))
    hourly = step >= HOUR and step % HOUR == timedelta(0)
    start = hour_of(since) if hourly else minute_of(since)
    buckets: dict[str, dict[datetime, list[int]]] = {release: {} for release in ids}
    latency: dict[tuple[str, datetime], list[int]] = {}
    width = step.total_seconds()

    def slot(moment: datetime) -> datetime:
        return start + timedelta(seconds=(moment - start).total_seconds() // width * width)

    def add_latency(release: str, at: datetime, counts: Iterable[int]) -> None:
        histogram = latency.setdefault((release, at), [0] * len(NO_LATENCY))
        for index, n in enumerate(counts):
            histogram[index] += n

    with store.database.transaction("read the release series") as connection:
        if hourly:
            for hour in read_hours(connection, ids, start):
                at = slot(hour.hour)
                counts = buckets[hour.release].setdefault(at, [0, 0, 0, 0, 0])
                for index, n in enumerate(hour.counts):
                    counts[index] += n
                if any(hour.latency):
                    add_latency(hour.release, at, hour.latency)
        else:
            _minutes(connection, ids, start, slot, buckets, add_latency)
    return {release: [{"at": at.isoformat(), "requests": c[0], "server_errors": c[1],
                       "client_errors": c[2], "ratings": c[3], "satisfied": c[4],
                       "p95_ms": latency_quantile(tuple(latency.get((release, at), ())), 0.95)}
                      for at, c in sorted(points.items())]
            for release, points in buckets.items()}


def _minutes(connection: Connection, ids: list[str], start: datetime,
             slot: Callable[[datetime], datetime], buckets: dict[str, dict[datetime, list[int]]],
             add_latency: Callable[[str, datetime, Iterable[int]], None]) -> None:
    """Add the minutes and the ratings of `ids` from `start` to their `slot`s."""
    signals = connection.execute(
        select(rollout_signals.c.release_id, rollout_signals.c.minute,
               rollout_signals.c.requests, rollout_signals.c.server_errors,
               rollout_signals.c.client_errors, rollout_signals.c.stars,
               rollout_signals.c.latency)
        .where(rollout_signals.c.release_id.in_(ids), rollout_signals.c.minute >= start))
    for release, minute, requests, server, client, stars, timed in signals:
        at = slot(minute)
        add_batch(buckets[release].setdefault(at, [0, 0, 0, 0, 0]), requests, server, client,
                  stars)
        if timed:
            add_latency(release, at, stored_latency(timed))
    ratings = connection.execute(
        select(rollout_ratings.c.release_id, rollout_ratings.c.at, rollout_ratings.c.rating)
        .where(rollout_ratings.c.release_id.in_(ids), rollout_ratings.c.at >= start))
    for release, at, rating in ratings:
        add_rating(buckets[release].setdefault(slot(at), [0, 0, 0, 0, 0]), rating)


def latest_audit(store: Store, limit: int = LATEST) -> list[dict[str, Any]]:
    """The newest audit entries first."""
    with store.database.transaction("read the audit log") as connection:
        rows = connection.execute(select(audit_log).order_by(audit_log.c.seq.desc())
                                  .limit(limit)).all()
    return [{"seq": int(r.seq), "at": r.at.isoformat(), "actor": r.actor, "action": r.action,
             "subject": r.subject, "from": r.from_ref, "to": r.to_ref, "reason": r.reason}
            for r in rows]


def latest_comments(store: Store, releases: Iterable[str],
                    limit: int = LATEST) -> list[dict[str, Any]]:
    """The newest ratings with a comment of `releases`, newest first."""
    ids = list(releases)
    with store.database.transaction("read feedback") as connection:
        rows = connection.execute(
            select(rollout_ratings).where(rollout_ratings.c.release_id.in_(ids),
                                          rollout_ratings.c.comment.is_not(None))
            .order_by(rollout_ratings.c.id.desc()).limit(limit)).all()
    return [{"at": r.at.isoformat(), "release_id": r.release_id, "prompt": r.prompt,
             "rating": int(r.rating), "comment": r.comment} for r in rows]


def latest_events(store: Store, limit: int = LATEST) -> list[dict[str, Any]]:
    """The newest security events first."""
    with store.database.transaction("read security events") as connection:
        rows = connection.execute(select(security_events)
                                  .order_by(security_events.c.id.desc()).limit(limit)).all()
    return [{"at": r.occurred_at.isoformat(), "kind": r.kind, "client": r.client,
             "detail": r.detail} for r in rows]


def readiness_summary(report: str | None) -> dict[str, Any] | None:
    """The verdict and each gate's status of a stored readiness report (JSON)."""
    if not report:
        return None
    try:
        data = json.loads(report)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    gates = data.get("gates")
    decision = data.get("decision")
    return {
        "verdict": decision.get("verdict") if isinstance(decision, dict) else None,
        "generated_at": data.get("generated_at"),
        "gates": [{"name": g.get("name"), "status": g.get("status")}
                  for g in gates if isinstance(g, dict)] if isinstance(gates, list) else [],
    }


def channel_overview(store: Store, channel: str, *, hours: float = 6.0) -> dict[str, Any]:
    """Everything the dashboard shows of `channel`, over the last `hours` (1 minute..30 days)."""
    if not 1 / 60 <= hours <= MAX_HOURS:
        raise ValueError(f"hours must be between 1/60 and {MAX_HOURS}, not {hours!r}")
    now = store.rollouts.now()
    state = store.channels.current(channel)
    rollout = store.rollouts.latest(channel)
    releases: dict[str, str] = {}
    if state is not None:
        releases[state.release.id] = state.release.version
    if rollout is not None:
        releases[rollout.stable.id] = rollout.stable.version
        releases[rollout.candidate.id] = rollout.candidate.version
    step = step_for(hours)
    series = release_series(store, releases, now - timedelta(hours=hours), step)
    report = None
    if state is not None:
        shown = rollout.candidate if rollout is not None and rollout.active else state.release
        report = {"release": shown.version, "verdict": None, "generated_at": None,
                  "gates": [], **(readiness_summary(store.releases.report(shown.id)) or {})}
    return {
        "channel": channel, "now": now.isoformat(), "hours": hours,
        "step_seconds": step.total_seconds(),
        "stable": None if state is None else {"version": state.release.version,
                                              "id": state.release.id},
        "rollout": None if rollout is None else rollout_status(store, rollout),
        "releases": releases,
        "series": {releases[release]: points for release, points in series.items()},
        "audit": latest_audit(store),
        "feedback": [{**c, "release": releases.get(c["release_id"], c["release_id"][:12])}
                     for c in latest_comments(store, releases)],
        "events": latest_events(store),
        "errors": [{"error_class": g.error_class, "where": g.where, "shape": g.shape,
                    "count": g.count, "last_seen": g.last_seen.isoformat(),
                    "releases": [releases.get(r.release, r.release[:12]) for r in g.releases]}
                   for g in store.errors.groups(since=now - timedelta(hours=hours),
                                                limit=LATEST)],
        "readiness": report,
    }
