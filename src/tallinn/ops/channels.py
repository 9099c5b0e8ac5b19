"""Channels: named pointers to releases (`production`, `staging`, ...), with their history.

    channels.promote("3", channel="production", actor="alice", reason="new review prompt")
    channels.rollback(None, channel="production", actor="bob", reason="answers got worse")

A move is a compare-and-set on the channel's current release, in one transaction with its
history row and its audit entry: the caller says which release it saw (`expected`; by default
the one current when the call began), and when the channel points elsewhere by then, nothing
changes and `ChannelConflictError` says who moved it, to what and when. Of two people acting
at once, one wins and the other is told.

Rolling back without naming a release goes to the release the current one replaced when it
was promoted, so rolling back twice walks back two promotions, never forward again.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, insert, select, update

from tallinn.ops.audit_log import AuditLog
from tallinn.ops.changes import announce
from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.errors import ChannelConflictError, ReleaseError
from tallinn.ops.records import ChannelMove, ChannelState, Release
from tallinn.ops.releases import Releases, check_reason
from tallinn.ops.schema import channel_history, channels, rollouts

DEFAULT_CHANNEL = "production"
CHANNEL_MAX = 64
_CHANNEL = re.compile(r"[a-z][a-z0-9-]*")
# `expected` left out: compare with the release current when the call began.
UNSET: Any = object()


def channel_topic(channel: str) -> str:
    """Given `production`, the change topic its moves are announced on: `channel:production`."""
    return f"channel:{channel}"


def check_channel(name: str) -> str:
    """`name` when it is a channel name (lowercase letters, digits, `-`), else raise."""
    if len(name) > CHANNEL_MAX or not _CHANNEL.fullmatch(name):
        raise ReleaseError(f"invalid channel name {name!r}: lowercase letters, digits and '-', "
                           f"starting with a letter, at most {CHANNEL_MAX} characters")
    return name


class Channels:
    """Channels in the shared `Database`; every move appends to the `AuditLog` with it."""

    def __init__(self, database: Database, audit: AuditLog, releases: Releases, *,
                 clock: Clock = utcnow) -> None:
        self._db = database
        self._audit = audit
        self._releases = releases
        self._clock = clock

    def current(self, channel: str = DEFAULT_CHANNEL) -> ChannelState | None:
        """Where `channel` points now; None for a channel no release was promoted to."""
        check_channel(channel)
        with self._db.transaction("read a channel") as connection:
            return self._current(connection, channel)

    def all(self) -> list[ChannelState]:
        """Every channel, by name."""
        with self._db.transaction("list channels") as connection:
            names = connection.execute(
                select(channels.c.name).order_by(channels.c.name)).scalars().all()
            found = [self._current(connection, name) for name in names]
        return [state for state in found if state is not None]

    def history(self, channel: str = DEFAULT_CHANNEL) -> list[ChannelMove]:
        """Every move of `channel`, newest first."""
        check_channel(channel)
        query = select(channel_history).where(channel_history.c.channel == channel) \
            .order_by(channel_history.c.id.desc())
        with self._db.transaction("read a channel's history") as connection:
            rows = connection.execute(query).all()
            return [self._move(connection, row) for row in rows]

    def promote(self, release: str, *, channel: str = DEFAULT_CHANNEL, actor: str, reason: str,
                expected: Release | None = UNSET) -> ChannelMove:
        """Point `channel` at `release` (a version or id prefix), if it still points at
        `expected`; return the move."""
        check_channel(channel)
        reason = check_reason(reason)
        target = self._releases.get(release)
        seen = self._seen(channel, expected)
        if seen is not None and seen.id == target.id:
            raise ReleaseError(f"channel {channel} points at {target.label} already; nothing "
                               "changed")
        return self._move_to(channel, target, seen, "promote", actor, reason)

    def rollback(self, release: str | None = None, *, channel: str = DEFAULT_CHANNEL,
                 actor: str, reason: str, expected: Release | None = UNSET) -> ChannelMove:
        """Point `channel` back at `release`, or without one at the release the current one
        replaced; at once (no rollout). Return the move."""
        check_channel(channel)
        reason = check_reason(reason)
        seen = self._seen(channel, expected)
        if seen is None:
            raise ReleaseError(f"channel {channel} has no release yet: nothing to roll back "
                               f"(promote one with 'tallinn promote RELEASE --channel {channel}')")
        if release is not None:
            target = self._releases.get(release)
            if target.id == seen.id:
                raise ReleaseError(f"channel {channel} points at {target.label} already; "
                                   "nothing changed")
        else:
            target = self._previous(channel, seen)
        return self._move_to(channel, target, seen, "rollback", actor, reason)

    # -- the move itself --------------------------------------------------------------------

    def _seen(self, channel: str, expected: Release | None) -> Release | None:
        if expected is not UNSET:
            return expected
        state = self.current(channel)
        return None if state is None else state.release

    def _move_to(self, channel: str, target: Release, seen: Release | None, action: str,
                 actor: str, reason: str) -> ChannelMove:
        with self._audit.writing(f"{action} a release") as connection:
            self._no_rollout(connection, channel)
            now = self._clock()
            if seen is None:
                taken = self._current(connection, channel)
                if taken is not None:
                    raise self._conflict(channel, taken)
                connection.execute(insert(channels).values(
                    name=channel, release_id=target.id, moved_at=now, moved_by=actor))
            else:
                moved = connection.execute(
                    update(channels)
                    .where(channels.c.name == channel, channels.c.release_id == seen.id)
                    .values(release_id=target.id, moved_at=now, moved_by=actor)
                ).rowcount
                if moved != 1:
                    taken = self._current(connection, channel)
                    assert taken is not None  # channels are never deleted
                    raise self._conflict(channel, taken)
            new_id = connection.execute(insert(channel_history).values(
                channel=channel, action=action, from_release=None if seen is None else seen.id,
                to_release=target.id, actor=actor, at=now, reason=reason,
            ).returning(channel_history.c.id)).scalar_one()
            self._audit.append(
                connection, actor=actor, action=action, subject=channel,
                from_ref=None if seen is None else seen.version, to_ref=target.version,
                reason=reason,
                details={"from_id": None if seen is None else seen.id, "to_id": target.id},
            )
            # Heard by every replica following the channel when this transaction commits.
            announce(connection, channel_topic(channel))
        return ChannelMove(int(new_id), channel, action, seen, target, actor, now, reason)

    def _no_rollout(self, connection: Connection, channel: str) -> None:
        """Refuse to move `channel` by hand while a rollout is under way on it: the rollout
        ends first (`tallinn rollback` ends it and keeps the stable release)."""
        running = connection.execute(
            select(rollouts.c.id).where(rollouts.c.active_channel == channel)).scalar()
        if running is not None:
            raise ReleaseError(f"rollout {running} is under way on {channel}: let it finish, "
                               "abort it ('tallinn rollout abort') or roll it back ('tallinn "
                               "rollback') first; nothing changed")

    def _conflict(self, channel: str, now: ChannelState) -> ChannelConflictError:
        at = now.moved_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return ChannelConflictError(
            f"channel {channel} moved to {now.release.label} by {now.moved_by} at {at}; "
            "nothing changed")

    def _previous(self, channel: str, current: Release) -> Release:
        """The release `current` replaced when it was last promoted to `channel`, by hand or
        by a rollout that completed."""
        query = (
            select(channel_history.c.from_release)
            .where(channel_history.c.channel == channel,
                   channel_history.c.action.in_(("promote", "rollout")),
                   channel_history.c.to_release == current.id)
            .order_by(channel_history.c.id.desc()).limit(1)
        )
        with self._db.transaction("read a channel's history") as connection:
            previous = connection.execute(query).scalar()
        if previous is None:
            raise ReleaseError(f"channel {channel} had no release before {current.label}: name "
                               "the release to roll back to")
        return self._releases.get(str(previous))

    # -- reading ----------------------------------------------------------------------------

    def _current(self, connection: Connection, channel: str) -> ChannelState | None:
        row = connection.execute(select(channels).where(channels.c.name == channel)).first()
        if row is None:
            return None
        release = self._releases.find(connection, row.release_id)
        return ChannelState(channel, release, row.moved_at, row.moved_by)

    def _move(self, connection: Connection, row: Any) -> ChannelMove:
        before = (None if row.from_release is None
                  else self._releases.find(connection, row.from_release))
        after = self._releases.find(connection, row.to_release)
        return ChannelMove(int(row.id), row.channel, row.action, before, after, row.actor,
                           row.at, row.reason)
