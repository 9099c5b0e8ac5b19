"""Error tracking: the errors servers answered with, grouped by fingerprint, in batches.

    event = ErrorEvent.capture(exc, where="code-review", arguments=args.values(),
                               release=release_id, client="alice", replica="web-1")
    errors.record(pending)                    # one transaction per flush, never per request
    errors.groups(release=release_id)         # newest first, with counts and releases
    errors.prune()                            # what is older than the retention goes

**Redaction** happens before anything reaches the store, by one rule (`redact`), in order:

1. every argument value of the failing request of 4 characters or more is replaced by
   `<arg>` wherever it appears (shorter ones are left to the rules below: they would shred
   the text and hide nothing);
2. Tallinn tokens (`tln_...`), `Bearer ...` / `Basic ...` credentials, `key=value` and
   `key: value` pairs whose key names a secret (`token`, `password`, `secret`, `api_key`,
   `authorization`, ...), the user part of URLs (`https://user:pw@host`) and any run of 24
   or more letters, digits and `-_+/=` that mixes letters and digits (keys, UUIDs, digests)
   become `<secret>`;
3. every quoted string (`'...'`, `"..."`, `` `...` ``) becomes `<str>`: values are quoted;
4. control characters become spaces and the text is cut to `DETAIL_MAX` characters (the
   patterns read at most its first `SCAN_MAX`, after the argument values went).

The fingerprint of an error is the SHA-256 of its class, its `where` and its **shape**: the
redacted detail with numbers, hex ids (`0x1f`, 6 or more hex digits with a digit) and paths
(`a/b`, `/srv/x.md`, `C:\\x`) replaced by `<n>`, `<hex>` and `<path>`. Errors of one shape
are one group, which keeps its count, first and last seen, the releases it happened in (each
with its own count) and its latest `samples_per_group` samples (default 20). `prune` removes
samples, release rows and groups not seen within `retention` (default 30 days).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, delete, insert, select
from sqlalchemy.sql.expression import ColumnElement

from tallinn.ops.database import Clock, Database, upsert_for, utcnow
from tallinn.ops.error_events import (
    DETAIL_MAX,
    SAMPLES_PER_GROUP,
    ErrorEvent,
    PendingGroup,
    fingerprint,
    pending_groups,
    redact,
    shape,
)
from tallinn.ops.schema import error_group_releases, error_groups, error_samples

__all__ = [
    "DETAIL_MAX",
    "GROUPS_LIMIT_MAX",
    "RETENTION",
    "SAMPLES_PER_GROUP",
    "ErrorEvent",
    "ErrorGroup",
    "ErrorLog",
    "ErrorRelease",
    "ErrorSample",
    "Pruned",
    "fingerprint",
    "redact",
    "shape",
]

RETENTION = timedelta(days=30)
GROUPS_LIMIT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class ErrorSample:
    """One stored occurrence: when, which release, the redacted detail, who, which replica."""

    at: datetime
    release: str | None
    detail: str
    client: str | None
    replica: str | None


@dataclass(frozen=True, slots=True)
class ErrorRelease:
    """How often a group happened in one release, and when first and last."""

    release: str
    count: int
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """Errors of one fingerprint: `ErrorGroup(id=3, error_class="RenderError", count=41, ...)`.

    Read for one release, `count`, `first_seen` and `last_seen` are those in that release.
    """

    id: int
    fingerprint: str
    error_class: str
    where: str
    shape: str
    count: int
    first_seen: datetime
    last_seen: datetime
    releases: tuple[ErrorRelease, ...] = ()
    samples: tuple[ErrorSample, ...] = ()


@dataclass(frozen=True, slots=True)
class Pruned:
    """What `prune` removed."""

    groups: int
    samples: int


class ErrorLog:
    """Error groups and samples in the shared `Database`; see the module docstring."""

    def __init__(self, database: Database, *, clock: Clock = utcnow,
                 samples_per_group: int = SAMPLES_PER_GROUP,
                 retention: timedelta = RETENTION) -> None:
        if samples_per_group < 0:
            raise ValueError(f"samples_per_group must be 0 or more, got {samples_per_group}")
        if retention <= timedelta(0):
            raise ValueError(f"retention must be positive, got {retention}")
        self._db = database
        self._clock = clock
        self.samples_per_group = samples_per_group
        self.retention = retention
        self.statements = 0  # statements `record` ran, for tests and benchmarks

    # -- writing ----------------------------------------------------------------------------

    def record(self, events: Iterable[ErrorEvent]) -> int:
        """Store a batch of events in one transaction; return how many there were.

        Each group costs a few statements whatever the number of its events: an upsert of the
        group, one per release it happened in, one insert of at most `samples_per_group`
        samples, and one delete of the samples past that number.
        """
        pending = pending_groups(events, self.samples_per_group)
        if not pending:
            return 0
        with self._db.transaction("record errors") as connection:
            upsert = upsert_for(connection)
            # Fingerprint order, so two replicas writing the same groups lock them alike.
            for print_, group in sorted(pending.items()):
                group_id = self._write_group(connection, upsert, print_, group)
                self._write_releases(connection, upsert, group_id, group)
                self._write_samples(connection, group_id, group)
        return sum(group.count for group in pending.values())

    def _write_group(self, connection: Connection, upsert: Any, print_: str,
                     group: PendingGroup) -> int:
        table = error_groups
        statement = upsert(table).values(
            fingerprint=print_, error_class=group.error_class, location=group.where,
            shape=group.shape, count=group.count, first_seen=group.first, last_seen=group.last)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.fingerprint],
            set_={"count": table.c.count + statement.excluded.count,
                  "first_seen": _earlier(table.c.first_seen, statement.excluded.first_seen),
                  "last_seen": _later(table.c.last_seen, statement.excluded.last_seen)},
        ).returning(table.c.id)
        self.statements += 1
        return int(connection.execute(statement).scalar_one())

    def _write_releases(self, connection: Connection, upsert: Any, group_id: int,
                        group: PendingGroup) -> None:
        table = error_group_releases
        for release, (count, first, last) in sorted(group.releases.items()):
            statement = upsert(table).values(group_id=group_id, release_id=release,
                                             count=count, first_seen=first, last_seen=last)
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.group_id, table.c.release_id],
                set_={"count": table.c.count + statement.excluded.count,
                      "first_seen": _earlier(table.c.first_seen, statement.excluded.first_seen),
                      "last_seen": _later(table.c.last_seen, statement.excluded.last_seen)},
            )
            self.statements += 1
            connection.execute(statement)

    def _write_samples(self, connection: Connection, group_id: int, group: PendingGroup) -> None:
        keep = self.samples_per_group
        samples = group.latest(keep)
        if not samples:
            return
        connection.execute(insert(error_samples), [{**s, "group_id": group_id} for s in samples])
        # The newest `keep` by id stay: the id of the keep-th newest is the oldest one kept.
        oldest_kept = (select(error_samples.c.id).where(error_samples.c.group_id == group_id)
                       .order_by(error_samples.c.id.desc()).offset(keep - 1).limit(1)
                       .scalar_subquery())
        connection.execute(delete(error_samples).where(
            error_samples.c.group_id == group_id, error_samples.c.id < oldest_kept))
        self.statements += 2

    def prune(self, older_than: datetime | None = None) -> Pruned:
        """Delete samples, release rows and groups last seen before `older_than` (default: the
        clock minus `retention`); return how many groups and samples went."""
        cutoff = self._clock() - self.retention if older_than is None else older_than
        if cutoff.tzinfo is None:
            raise TypeError("naive datetime given to prune; use datetime.now(UTC)")
        stale = select(error_groups.c.id).where(error_groups.c.last_seen < cutoff)
        with self._db.transaction("prune errors") as connection:
            samples = connection.execute(delete(error_samples).where(
                (error_samples.c.at < cutoff) | error_samples.c.group_id.in_(stale))).rowcount
            connection.execute(delete(error_group_releases).where(
                (error_group_releases.c.last_seen < cutoff)
                | error_group_releases.c.group_id.in_(stale)))
            groups = connection.execute(
                delete(error_groups).where(error_groups.c.last_seen < cutoff)).rowcount
        return Pruned(groups=groups, samples=samples)

    # -- reading ----------------------------------------------------------------------------

    def groups(self, *, release: str | None = None, since: datetime | None = None,
               limit: int = 100, samples: bool = False) -> list[ErrorGroup]:
        """Groups last seen at or after `since`, newest first, at most `limit`; only those
        seen in `release` (a full id) when given, with that release's counts. `samples`
        adds each group's stored samples, newest first (of `release` only, when given)."""
        if not 1 <= limit <= GROUPS_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {GROUPS_LIMIT_MAX}, got {limit}")
        g, r = error_groups, error_group_releases
        if release is None:
            query = select(g.c.id, g.c.fingerprint, g.c.error_class, g.c.location, g.c.shape,
                           g.c.count.label("hits"), g.c.first_seen, g.c.last_seen)
            last: ColumnElement[Any] = g.c.last_seen
        else:
            query = (select(g.c.id, g.c.fingerprint, g.c.error_class, g.c.location, g.c.shape,
                            r.c.count.label("hits"), r.c.first_seen, r.c.last_seen)
                     .join(r, and_(r.c.group_id == g.c.id, r.c.release_id == release)))
            last = r.c.last_seen
        if since is not None:
            query = query.where(last >= since)
        query = query.order_by(last.desc(), g.c.id.desc()).limit(limit)
        with self._db.transaction("read errors") as connection:
            rows = connection.execute(query).all()
            ids = [int(row.id) for row in rows]
            by_release = self._releases_of(connection, ids) if ids else {}
            by_sample = self._samples_of(connection, ids, release) if ids and samples else {}
        return [ErrorGroup(
            id=int(row.id), fingerprint=row.fingerprint, error_class=row.error_class,
            where=row.location, shape=row.shape, count=int(row.hits),
            first_seen=row.first_seen, last_seen=row.last_seen,
            releases=tuple(by_release.get(int(row.id), ())),
            samples=tuple(by_sample.get(int(row.id), ())),
        ) for row in rows]

    @staticmethod
    def _releases_of(connection: Connection, ids: Sequence[int]) -> dict[int, list[ErrorRelease]]:
        r = error_group_releases
        found: dict[int, list[ErrorRelease]] = {}
        for row in connection.execute(select(r).where(r.c.group_id.in_(ids))
                                      .order_by(r.c.last_seen.desc(), r.c.release_id)):
            found.setdefault(int(row.group_id), []).append(ErrorRelease(
                row.release_id, int(row._mapping["count"]), row.first_seen, row.last_seen))
        return found

    @staticmethod
    def _samples_of(connection: Connection, ids: Sequence[int],
                    release: str | None) -> dict[int, list[ErrorSample]]:
        s = error_samples
        query = select(s).where(s.c.group_id.in_(ids)).order_by(s.c.id.desc())
        if release is not None:
            query = query.where(s.c.release_id == release)
        found: dict[int, list[ErrorSample]] = {}
        for row in connection.execute(query):
            found.setdefault(int(row.group_id), []).append(ErrorSample(
                row.at, row.release_id, row.detail, row.client, row.replica))
        return found


def _earlier(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((b < a, b), else_=a)


def _later(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((b > a, b), else_=a)
