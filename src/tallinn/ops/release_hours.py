"""Each release's signals and ratings summed per hour, kept up to date as they are written.

A chart over a month of one release reads 720 rows of `release_hours` instead of the 43,200
minutes of every replica in `rollout_signals`. The sums are added in the transaction that
writes the minutes or the rating, by one upsert that adds to the stored row
(`count = count + excluded.count`), so two replicas flushing the same hour at the same moment
both count: neither reads the row first.

    add_signals(connection, rows)           # the rows inserted into rollout_signals
    add_ratings(connection, [(release, at, 5)])
    hours = read_hours(connection, ids, since)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from tallinn.ops.database import upsert_for
from tallinn.ops.rollout.signals import add_batch, add_rating, minute_of, stored_latency
from tallinn.ops.schema import LATENCY_COLUMNS, release_hours

HOUR = timedelta(hours=1)
COUNTS = ("requests", "server_errors", "client_errors", "ratings", "satisfied")


@dataclass(frozen=True, slots=True)
class ReleaseHour:
    """One release's sums over one hour (`hour` is its start)."""

    release: str
    hour: datetime
    requests: int
    server_errors: int
    client_errors: int
    ratings: int
    satisfied: int
    latency: tuple[int, ...]

    @property
    def counts(self) -> tuple[int, int, int, int, int]:
        """Requests, server errors, client errors, ratings and satisfied ratings."""
        return (self.requests, self.server_errors, self.client_errors, self.ratings,
                self.satisfied)


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour of `moment`."""
    return minute_of(moment, HOUR)


def add_signals(connection: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add rows as inserted into `rollout_signals` (release_id, minute, requests, ...,
    stars and latency as stored) to their hours."""
    sums: dict[tuple[str, datetime], list[int]] = {}
    for row in rows:
        counts = _hour(sums, row["release_id"], row["minute"])
        add_batch(counts, row["requests"], row["server_errors"], row["client_errors"],
                  row.get("stars"))
        for index, n in enumerate(stored_latency(row["latency"]), start=len(COUNTS)):
            counts[index] += n
    _add(connection, sums)


def add_ratings(connection: Connection,
                ratings: Iterable[tuple[str, datetime, int]]) -> None:
    """Add ratings, each (release, when, stars), to their hours."""
    sums: dict[tuple[str, datetime], list[int]] = {}
    for release, at, stars in ratings:
        add_rating(_hour(sums, release, at), stars)
    _add(connection, sums)


def read_hours(connection: Connection, releases: Iterable[str],
               since: datetime) -> list[ReleaseHour]:
    """The hours of `releases` from the one holding `since` on, oldest first."""
    table = release_hours
    ids = list(dict.fromkeys(releases))
    latency = [table.c[name] for name in LATENCY_COLUMNS]
    rows = connection.execute(
        select(table.c.release_id, table.c.hour, *(table.c[name] for name in COUNTS), *latency)
        .where(table.c.release_id.in_(ids), table.c.hour >= hour_of(since))
        .order_by(table.c.hour))
    return [ReleaseHour(row[0], row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5]),
                        int(row[6]), tuple(int(n) for n in row[7:])) for row in rows]


# SQLite takes at most 32,766 parameters in a statement; an hour's row has 19.
_ROWS_PER_STATEMENT = 1000


def _hour(sums: dict[tuple[str, datetime], list[int]], release: str,
          moment: datetime) -> list[int]:
    """The sums of the hour of `moment` for `release`, made at the first use."""
    key = (release, hour_of(moment))
    counts = sums.get(key)
    if counts is None:
        counts = sums[key] = [0] * (len(COUNTS) + len(LATENCY_COLUMNS))
    return counts


def _add(connection: Connection, sums: Mapping[tuple[str, datetime], list[int]]) -> None:
    if not sums:
        return
    table = release_hours
    names = (*COUNTS, *LATENCY_COLUMNS)
    # In key order, so that two writers lock the rows they share in one order (no deadlock).
    values = [{"release_id": release, "hour": hour, **dict(zip(names, counts, strict=True))}
              for (release, hour), counts in sorted(sums.items())]
    upsert = upsert_for(connection)
    for start in range(0, len(values), _ROWS_PER_STATEMENT):
        statement = upsert(table).values(values[start:start + _ROWS_PER_STATEMENT])
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.release_id, table.c.hour],
            set_={name: table.c[name] + statement.excluded[name] for name in names})
        connection.execute(statement)
