"""Stored gradual rollouts: one per channel at most, moved step by step with compare-and-set.

    plan = parse_plan("3", channel="production", steps="10,50,100", hold="48h,7d")
    rollout = rollouts.start(plan, actor="alice", reason="new review prompt")
    rollouts.record_signals(aggregator.drain())           # each replica, every few seconds
    rollouts.rate(release_id, "code-review", 5, client="alice", comment=None)
    rollouts.tick("production")                            # the leader, every few seconds
    rollouts.pause("production", actor="bob", reason="looks odd")

During a rollout the channel keeps pointing at the stable release; the candidate is served to
the share of clients its current step gives (`serving_share`), and the channel moves to the
candidate only when the rollout completes. A rollback or an abort ends the rollout, and every
client gets the stable release at once, without moving the channel.

Every change (start, step, pause, resume, abort, completion, rollback, automatic or by hand)
is one transaction: the rollout row changes only at the `version` it was read at (so of two
people acting at once, or a person and the controller, one wins and the other gets
`RolloutConflictError`), an audit entry records who, why, from/to and, for the controller's
decisions, the guard figures, and `announce(connection, "channel:<name>")` tells the replicas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tallinn.ops.audit_log import AuditLog
from tallinn.ops.changes import announce
from tallinn.ops.channels import Channels, check_channel
from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.errors import ChannelConflictError, ReleaseError
from tallinn.ops.records import Release
from tallinn.ops.release_hours import add_ratings, add_signals
from tallinn.ops.releases import Releases, check_reason
from tallinn.ops.rollout import (
    Action,
    Decision,
    Phase,
    ReleaseTotals,
    RolloutPlan,
    RolloutState,
    SignalBatch,
    WindowSignals,
    abort,
    apply,
    decide,
    pause,
    resume,
    serving_share,
    window_signals,
)
from tallinn.ops.rollout.controller import ENDED
from tallinn.ops.rollout.signals import STARS, minute_of, stored_latency, window_start
from tallinn.ops.schema import (
    channel_history,
    channels,
    release_hours,
    rollout_ratings,
    rollout_signals,
    rollouts,
)
from tallinn.ops.schema import releases as releases_table

COMMENT_MAX = 2000
PROMPT_MAX = 255
CLIENT_MAX = 255
REPLICA_MAX = 128
CONTROLLER = "controller"
# What the controller's decisions are recorded as; a HOLD or a WAIT changes nothing.
_ACTION_NAMES = {Action.ADVANCE: "advance", Action.COMPLETE: "complete",
                 Action.ROLL_BACK: "rollback", Action.PAUSE: "pause"}


class RolloutConflictError(ChannelConflictError):
    """The rollout changed since it was read: "rollout 4 on production was paused by bob at
    ...; nothing changed"."""


@dataclass(frozen=True, slots=True)
class Rollout:
    """A stored rollout: its plan, both releases, its `RolloutState` and its row version."""

    id: int
    channel: str
    plan: RolloutPlan
    stable: Release
    candidate: Release
    state: RolloutState
    version: int
    started_by: str
    started_at: datetime
    ended_at: datetime | None

    @property
    def share(self) -> int:
        """The candidate's share of clients now, 0..100."""
        return serving_share(self.plan, self.state)

    @property
    def active(self) -> bool:
        """Running or paused: clients are split between the two releases."""
        return self.state.phase not in ENDED


def plan_json(plan: RolloutPlan) -> str:
    return json.dumps({
        "release": plan.release, "channel": plan.channel, "steps": list(plan.steps),
        "holds": [hold.total_seconds() for hold in plan.holds],
        "max_error_rate": plan.max_error_rate, "min_satisfaction": plan.min_satisfaction,
        "min_requests": plan.min_requests, "min_ratings": plan.min_ratings,
        "alpha": plan.alpha, "check_every": plan.check_every.total_seconds(),
        "resolution": plan.resolution.total_seconds(),
    }, sort_keys=True)


def plan_from_json(text: str) -> RolloutPlan:
    data = json.loads(text)
    return RolloutPlan(
        release=data["release"], channel=data["channel"], steps=tuple(data["steps"]),
        holds=tuple(timedelta(seconds=s) for s in data["holds"]),
        max_error_rate=float(data["max_error_rate"]),
        min_satisfaction=float(data["min_satisfaction"]),
        min_requests=int(data["min_requests"]), min_ratings=int(data["min_ratings"]),
        alpha=float(data["alpha"]), check_every=timedelta(seconds=data["check_every"]),
        resolution=timedelta(seconds=data.get("resolution", 60)),
    )


def _bounded(label: str, text: str, limit: int) -> str:
    if not text or len(text) > limit or not text.isprintable():
        raise ReleaseError(f"{label} must be 1..{limit} printable characters")
    return text


def _replica(name: str) -> str:
    """A replica's name, without spaces (the window's ratings use one with a space)."""
    if " " in _bounded("a replica name", name, REPLICA_MAX):
        raise ReleaseError(f"a replica name has no spaces: {name!r}")
    return name


class Rollouts:
    """Rollouts in the shared `Database`; every change appends to the `AuditLog` with it."""

    def __init__(self, database: Database, audit: AuditLog, releases: Releases,
                 channels: Channels, *, clock: Clock = utcnow) -> None:
        self._db = database
        self._audit = audit
        self._releases = releases
        self._channels = channels
        self._clock = clock

    def now(self) -> datetime:
        """The store's clock."""
        return self._clock()

    # -- reading ----------------------------------------------------------------------------

    def active(self, channel: str) -> Rollout | None:
        """The rollout running or paused on `channel`, if any."""
        check_channel(channel)
        with self._db.transaction("read a rollout") as connection:
            row = connection.execute(
                select(rollouts).where(rollouts.c.active_channel == channel)).first()
            return None if row is None else self._rollout(connection, row)

    def latest(self, channel: str) -> Rollout | None:
        """The newest rollout on `channel`, ended or not."""
        check_channel(channel)
        with self._db.transaction("read a rollout") as connection:
            row = connection.execute(
                select(rollouts).where(rollouts.c.channel == channel)
                .order_by(rollouts.c.id.desc()).limit(1)).first()
            return None if row is None else self._rollout(connection, row)

    def under_way(self) -> list[Rollout]:
        """Every rollout running or paused, one per channel at most, in channel order."""
        with self._db.transaction("read the rollouts under way") as connection:
            rows = connection.execute(select(rollouts).where(
                rollouts.c.active_channel.is_not(None)).order_by(rollouts.c.channel)).all()
            return [self._rollout(connection, row) for row in rows]

    def window(self, rollout: Rollout, until: datetime | None = None) -> WindowSignals:
        """The `WindowSignals` of the current step: every replica's batches and the ratings
        since the step began (from its first whole minute), for both releases."""
        since = rollout.state.step_started_at
        start = window_start(since, rollout.plan.resolution)
        ids = (rollout.stable.id, rollout.candidate.id)
        with self._db.transaction("read a rollout's signals") as connection:
            rows = connection.execute(select(rollout_signals).where(
                rollout_signals.c.release_id.in_(ids), rollout_signals.c.minute >= start)).all()
            rated = connection.execute(
                select(rollout_ratings.c.release_id, rollout_ratings.c.rating,
                       func.count().label("n"))
                .where(rollout_ratings.c.release_id.in_(ids), rollout_ratings.c.at >= start)
                .group_by(rollout_ratings.c.release_id, rollout_ratings.c.rating)).all()
        batches = [SignalBatch(row.replica, int(row.seq), row.release_id, row.minute,
                               ReleaseTotals(int(row.requests), int(row.server_errors),
                                             int(row.client_errors),
                                             tuple(int(n) for n in row.stars.split(",")),
                                             stored_latency(row.latency)))
                   for row in rows]
        stars: dict[str, list[int]] = {release: [0] * STARS for release in ids}
        for row in rated:
            stars[row.release_id][int(row.rating) - 1] += int(row.n)
        # Ratings are stored one by one; each release's join the window as one batch, under
        # a replica name no server has (names are checked printable, and this one has a space).
        for seq, (release, counts) in enumerate(stars.items()):
            batches.append(SignalBatch(" ratings", seq, release, start,
                                       ReleaseTotals(ratings=tuple(counts))))
        return window_signals(batches, since=since, candidate=rollout.candidate.id,
                              stable=rollout.stable.id, until=until,
                              resolution=rollout.plan.resolution)

    # -- signals and ratings ----------------------------------------------------------------

    def record_signals(self, batches: Iterable[SignalBatch]) -> int:
        """Store a flush of `SignalBatch`es in one statement; return how many were new.

        A batch stored already (same replica and seq: a retried flush) is skipped.
        """
        rows = [{"replica": _replica(b.replica), "seq": b.seq,
                 "release_id": b.release, "minute": b.minute, "requests": b.totals.requests,
                 "server_errors": b.totals.server_errors,
                 "client_errors": b.totals.client_errors,
                 "stars": ",".join(map(str, b.totals.ratings)),
                 "latency": ",".join(map(str, b.totals.latency))} for b in batches]
        if not rows:
            return 0
        try:
            with self._db.transaction("record rollout signals") as connection:
                connection.execute(insert(rollout_signals), rows)
                add_signals(connection, rows)
            return len(rows)
        except IntegrityError:
            pass
        with self._db.transaction("record rollout signals") as connection:
            keys = {(r["replica"], r["seq"]) for r in rows}
            stored = {(row.replica, int(row.seq)) for row in connection.execute(
                select(rollout_signals.c.replica, rollout_signals.c.seq).where(
                    rollout_signals.c.replica.in_({key[0] for key in keys}),
                    rollout_signals.c.seq.in_({key[1] for key in keys})))}
            fresh = [r for r in rows if (r["replica"], r["seq"]) not in stored]
            if fresh:
                connection.execute(insert(rollout_signals), fresh)
                add_signals(connection, fresh)
        return len(fresh)

    def prune_signals(self, *, minutes_before: datetime,
                      hours_before: datetime) -> tuple[int, int]:
        """Delete the signal minutes older than `minutes_before`, but none of a step under
        way, and the hourly sums older than `hours_before`; how many of each.

        Release by release, so each delete runs over the index on (release, time).
        """
        with self._db.transaction("prune rollout signals") as connection:
            oldest_step = connection.execute(select(func.min(rollouts.c.step_started_at)).where(
                rollouts.c.active_channel.is_not(None))).scalar()
            cut = minutes_before if oldest_step is None else min(
                minutes_before, minute_of(oldest_step))
            ids = connection.execute(select(releases_table.c.id)).scalars().all()
            minutes = hours = 0
            for release in ids:
                minutes += connection.execute(delete(rollout_signals).where(
                    rollout_signals.c.release_id == release,
                    rollout_signals.c.minute < cut)).rowcount
                hours += connection.execute(delete(release_hours).where(
                    release_hours.c.release_id == release,
                    release_hours.c.hour < hours_before)).rowcount
        return minutes, hours

    def rate(self, release_id: str, prompt: str, rating: object, *, client: str,
             comment: str | None = None) -> None:
        """Record one rating (1..5 stars) of `prompt` as served by `release_id`."""
        if not isinstance(rating, int) or isinstance(rating, bool) or not 1 <= rating <= STARS:
            raise ReleaseError(f"a rating is a whole number of stars in 1..{STARS}, "
                               f"not {rating!r}")
        _bounded("a prompt name", prompt, PROMPT_MAX)
        if comment is not None and len(comment) > COMMENT_MAX:
            raise ReleaseError(f"a rating's comment is {len(comment):,} characters; at most "
                               f"{COMMENT_MAX:,}")
        at = self._clock()
        with self._db.transaction("record a rating") as connection:
            connection.execute(insert(rollout_ratings).values(
                release_id=release_id, prompt=prompt, rating=rating,
                comment=comment or None, client=client[:CLIENT_MAX] or "unknown", at=at))
            add_ratings(connection, [(release_id, at, rating)])

    # -- changes ----------------------------------------------------------------------------

    def start(self, plan: RolloutPlan, *, actor: str, reason: str) -> Rollout:
        """Start rolling `plan.release` out on `plan.channel`, from the release it points at."""
        channel = check_channel(plan.channel)
        reason = check_reason(reason)
        candidate = self._releases.get(plan.release)
        with self._audit.writing("start a rollout") as connection:
            current = connection.execute(
                select(channels.c.release_id).where(channels.c.name == channel)).scalar()
            if current is None:
                raise ReleaseError(f"channel {channel} has no release yet: promote one first "
                                   f"('tallinn promote RELEASE --channel {channel}')")
            stable = self._releases.find(connection, str(current))
            if stable.id == candidate.id:
                raise ReleaseError(f"channel {channel} points at {candidate.label} already: "
                                   "nothing to roll out")
            running = connection.execute(
                select(rollouts.c.id, rollouts.c.candidate_release)
                .where(rollouts.c.active_channel == channel)).first()
            if running is not None:
                raise ReleaseError(
                    f"rollout {running.id} is under way on {channel}; nothing started (end it "
                    "with 'tallinn rollout abort' or 'tallinn rollback' first)")
            now = self._clock()
            try:
                new_id = connection.execute(insert(rollouts).values(
                    channel=channel, active_channel=channel, stable_release=stable.id,
                    candidate_release=candidate.id, plan=plan_json(plan),
                    phase=str(Phase.RUNNING), step=0, step_started_at=now, note="", version=1,
                    started_by=actor, started_at=now,
                ).returning(rollouts.c.id)).scalar_one()
            except IntegrityError:
                raise ReleaseError(f"a rollout was started on {channel} meanwhile; nothing "
                                   "started") from None
            self._audit.append(
                connection, actor=actor, action="rollout-start", subject=channel,
                from_ref=stable.version, to_ref=candidate.version, reason=reason,
                details={"rollout": int(new_id), "share": plan.steps[0],
                         "steps": list(plan.steps),
                         "holds": [h.total_seconds() for h in plan.holds],
                         "from_id": stable.id, "to_id": candidate.id})
            announce(connection, f"channel:{channel}")
            return self._rollout(connection, connection.execute(
                select(rollouts).where(rollouts.c.id == new_id)).one())

    def advance(self, channel: str, *, actor: str, reason: str,
                expected: Rollout | None = None) -> Rollout:
        """A person moves the rollout to its next step now (to 100%: it completes)."""
        rollout = self._under_way(channel, expected)
        reason = check_reason(reason)
        if rollout.state.phase is not Phase.RUNNING:
            raise ReleaseError(f"rollout {rollout.id} on {channel} is {rollout.state.phase}: "
                               "resume it before advancing")
        steps = rollout.plan.steps
        following = rollout.state.step + 1
        now = self._clock()
        if following >= len(steps) - 1:
            decision = Decision(Action.COMPLETE, (reason,), 100, None)
        else:
            decision = Decision(Action.ADVANCE, (reason,), steps[following], None)
        state = apply(rollout.plan, rollout.state, decision, now)
        return self._change(rollout, state, _ACTION_NAMES[decision.action], actor, reason, {})

    def pause(self, channel: str, *, actor: str, reason: str,
              expected: Rollout | None = None) -> Rollout:
        """A person pauses: the current share stays served and no step is taken."""
        return self._by_hand(channel, "pause", actor, reason, expected,
                             lambda rollout, why: pause(rollout.state, why))

    def resume(self, channel: str, *, actor: str, reason: str,
               expected: Rollout | None = None) -> Rollout:
        """A person resumes a paused rollout: its step starts again, with a fresh window."""
        return self._by_hand(channel, "resume", actor, reason, expected,
                             lambda rollout, _: resume(rollout.state, self._clock()))

    def abort(self, channel: str, *, actor: str, reason: str,
              expected: Rollout | None = None) -> Rollout:
        """A person aborts: every client gets the stable release at once."""
        return self._by_hand(channel, "abort", actor, reason, expected,
                             lambda rollout, why: abort(rollout.state, why))

    def roll_back(self, channel: str, *, actor: str, reason: str,
                  expected: Rollout | None = None) -> Rollout:
        """`tallinn rollback` during a rollout: it ends, and every client gets the stable
        release at once (the channel points at it still)."""
        return self._by_hand(channel, "rollback", actor, reason, expected,
                             lambda rollout, why: apply(
                                 rollout.plan, rollout.state,
                                 Decision(Action.ROLL_BACK, (why,), 0, None), self._clock()))

    def _by_hand(self, channel: str, action: str, actor: str, reason: str,
                 expected: Rollout | None,
                 change: Callable[[Rollout, str], RolloutState]) -> Rollout:
        """A person's change: `change(rollout, reason)` gives the new state."""
        rollout = self._under_way(channel, expected)
        reason = check_reason(reason)
        return self._change(rollout, change(rollout, reason), action, actor, reason, {})

    def tick(self, channel: str, now: datetime | None = None) -> Decision | None:
        """The controller's one decision on `channel`'s rollout, applied; None with none.

        A decision that changes nothing (hold, wait) writes nothing. One taken on a rollout
        a person changed meanwhile raises `RolloutConflictError` and is not applied.
        """
        rollout = self.active(channel)
        if rollout is None:
            return None
        moment = self._clock() if now is None else now
        decision = decide(rollout.plan, rollout.state, self.window(rollout), moment)
        name = _ACTION_NAMES.get(decision.action)
        if name is None:
            return decision
        state = apply(rollout.plan, rollout.state, decision, moment)
        self._change(rollout, state, name, CONTROLLER, "; ".join(decision.reasons),
                     {"reasons": list(decision.reasons), "figures": dict(decision.figures)})
        return decision

    # -- the change itself ------------------------------------------------------------------

    def _under_way(self, channel: str, expected: Rollout | None) -> Rollout:
        rollout = expected if expected is not None else self.active(channel)
        if rollout is None:
            raise ReleaseError(f"no rollout is under way on {channel} (start one with "
                               f"'tallinn rollout start RELEASE --channel {channel}')")
        return rollout

    def _change(self, rollout: Rollout, state: RolloutState, action: str, actor: str,
                reason: str, details: dict[str, Any]) -> Rollout:
        ended = state.phase in ENDED
        with self._audit.writing(f"{action} a rollout") as connection:
            now = self._clock()
            changed = connection.execute(
                update(rollouts)
                .where(rollouts.c.id == rollout.id, rollouts.c.version == rollout.version)
                .values(phase=str(state.phase), step=state.step,
                        step_started_at=state.step_started_at, note=state.note,
                        version=rollout.version + 1,
                        active_channel=None if ended else rollout.channel,
                        ended_at=now if ended else None)
            ).rowcount
            if changed != 1:
                raise self._conflict(connection, rollout)
            before, after = serving_share(rollout.plan, rollout.state), \
                serving_share(rollout.plan, state)
            if state.phase is Phase.COMPLETED:
                self._promote(connection, rollout, actor, reason, now)
            self._audit.append(
                connection, actor=actor, action=f"rollout-{action}", subject=rollout.channel,
                from_ref=f"{rollout.candidate.version} at {before}%",
                to_ref=f"{rollout.candidate.version} at {after}%", reason=reason,
                details={"rollout": rollout.id, "phase": str(state.phase), "step": state.step,
                         "from_share": before, "to_share": after,
                         "stable": rollout.stable.version,
                         "candidate": rollout.candidate.version, **details})
            announce(connection, f"channel:{rollout.channel}")
            return self._rollout(connection, connection.execute(
                select(rollouts).where(rollouts.c.id == rollout.id)).one())

    def _promote(self, connection: Connection, rollout: Rollout, actor: str, reason: str,
                 now: datetime) -> None:
        """A completed rollout points the channel at the candidate, with its history row."""
        moved = connection.execute(
            update(channels)
            .where(channels.c.name == rollout.channel,
                   channels.c.release_id == rollout.stable.id)
            .values(release_id=rollout.candidate.id, moved_at=now, moved_by=actor)).rowcount
        if moved != 1:
            raise ChannelConflictError(f"channel {rollout.channel} no longer points at "
                                       f"{rollout.stable.label}; the rollout did not complete")
        connection.execute(insert(channel_history).values(
            channel=rollout.channel, action="rollout", from_release=rollout.stable.id,
            to_release=rollout.candidate.id, actor=actor, at=now, reason=reason))

    def _conflict(self, connection: Connection, rollout: Rollout) -> RolloutConflictError:
        row = connection.execute(select(rollouts).where(rollouts.c.id == rollout.id)).one()
        return RolloutConflictError(
            f"rollout {rollout.id} on {rollout.channel} changed meanwhile (it is {row.phase} "
            f"at step {plan_from_json(row.plan).steps[row.step]}%, version {row.version}); "
            "nothing changed")

    def _rollout(self, connection: Connection, row: Any) -> Rollout:
        plan = plan_from_json(row.plan)
        state = RolloutState(f"r{row.id}", row.step_started_at, Phase(row.phase),
                             int(row.step), row.note)
        return Rollout(int(row.id), row.channel, plan,
                       self._releases.find(connection, row.stable_release),
                       self._releases.find(connection, row.candidate_release), state,
                       int(row.version), row.started_by, row.started_at, row.ended_at)

