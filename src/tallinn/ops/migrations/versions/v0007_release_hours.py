"""Each release's signals and ratings summed per hour (`release_hours`), for charts over days.

The table is filled from the minute-level signals and the ratings already stored, so a chart
over a store that was upgraded shows its past; from then on the store keeps it up to date in
the transactions that write the signals and the ratings.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

# Migrations spell out their types and constants rather than import schema.py, which moves on.
Timestamp = sa.DateTime(timezone=True)
Digest = sa.String(64)
LATENCY_COLUMNS = ("latency_le_1ms", "latency_le_2ms", "latency_le_5ms", "latency_le_10ms",
                   "latency_le_25ms", "latency_le_50ms", "latency_le_100ms", "latency_le_250ms",
                   "latency_le_500ms", "latency_le_1000ms", "latency_le_2500ms", "latency_over")
COUNTS = ("requests", "server_errors", "client_errors", "ratings", "satisfied")
SATISFIED_FROM = 4
BATCH = 5_000


def upgrade() -> None:
    op.create_table(
        "release_hours",
        sa.Column("release_id", Digest, nullable=False),
        sa.Column("hour", Timestamp, nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
          for name in (*COUNTS, *LATENCY_COLUMNS)),
        sa.PrimaryKeyConstraint("release_id", "hour", name="pk_release_hours"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"],
                                name="fk_release_hours_release_id_releases"),
    )
    _fill(op.get_bind())


def _fill(connection: sa.Connection) -> None:
    """Sum what is stored already, one pass over each table, in the order of its index."""
    sums: dict[tuple[str, datetime], list[int]] = {}
    width = len(COUNTS) + len(LATENCY_COLUMNS)

    def hour(release: str, moment: datetime) -> list[int]:
        key = (release, moment.replace(minute=0, second=0, microsecond=0))
        found = sums.get(key)
        if found is None:
            found = sums[key] = [0] * width
        return found

    signals = sa.table("rollout_signals", sa.column("minute", Timestamp), *(
        sa.column(name) for name in ("release_id", "requests", "server_errors",
                                     "client_errors", "stars", "latency")))
    rows = connection.execute(sa.select(signals.c.release_id, signals.c.minute,
                                        signals.c.requests, signals.c.server_errors,
                                        signals.c.client_errors, signals.c.stars,
                                        signals.c.latency))
    for release, minute, requests, server, client, stars, latency in rows:
        counts = hour(release, minute)
        counts[0] += int(requests)
        counts[1] += int(server)
        counts[2] += int(client)
        given = [int(n) for n in stars.split(",")][:5] if stars else []
        counts[3] += sum(given)
        counts[4] += sum(given[SATISFIED_FROM - 1:])
        histogram = latency.split(",") if latency else ()
        if len(histogram) == len(LATENCY_COLUMNS):  # other rows were written untimed
            for index, n in enumerate(histogram, start=len(COUNTS)):
                counts[index] += int(n)
    ratings = sa.table("rollout_ratings", sa.column("release_id"), sa.column("at", Timestamp),
                       sa.column("rating"))
    for release, at, rating in connection.execute(
            sa.select(ratings.c.release_id, ratings.c.at, ratings.c.rating)):
        counts = hour(release, at)
        counts[3] += 1
        counts[4] += int(rating) >= SATISFIED_FROM
    table = sa.table("release_hours", sa.column("release_id"), sa.column("hour", Timestamp),
                     *(sa.column(name) for name in (*COUNTS, *LATENCY_COLUMNS)))
    names = (*COUNTS, *LATENCY_COLUMNS)
    batch: list[dict[str, Any]] = []
    for (release, moment), counts in sorted(sums.items()):
        batch.append({"release_id": release, "hour": moment, **dict(zip(names, counts,
                                                                          strict=True))})
        if len(batch) == BATCH:
            connection.execute(sa.insert(table), batch)
            batch = []
    if batch:
        connection.execute(sa.insert(table), batch)


def downgrade() -> None:
    op.drop_table("release_hours")
