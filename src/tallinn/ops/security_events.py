"""The store's security events: what clients did that the server refused.

    events = SecurityEvents(database)
    events.record_event("auth_failure", client="10.0.0.7", detail="bad token")
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.records import SecurityEvent
from tallinn.ops.schema import security_events
from tallinn.ops.security_values import DETAIL_MAX, event_values

__all__ = ["DETAIL_MAX", "EVENTS_LIMIT_MAX", "SecurityEvents"]

EVENTS_LIMIT_MAX = 10_000


class SecurityEvents:
    """Security events in the shared `Database`."""

    def __init__(self, database: Database, *, clock: Clock = utcnow) -> None:
        self._db = database
        self._clock = clock

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        """Record a security event, e.g. `record_event("rate_limited", client="10.0.0.7")`.

        `kind` is a short lowercase word (`auth_failure`, `path_traversal`, ...). `client` and
        `detail` may come from an attacker: they are cut to 255 and 2000 characters and NUL
        characters are replaced, so recording never fails on their content.
        """
        kind, client, detail = event_values(kind, client, detail)
        values = {"occurred_at": self._clock(), "kind": kind, "client": client, "detail": detail}
        with self._db.transaction("record a security event") as connection:
            connection.execute(insert(security_events).values(**values))

    def events(self, kind: str | None = None, limit: int = 100) -> list[SecurityEvent]:
        """The latest `limit` security events, newest first, of one `kind` or all."""
        if not 1 <= limit <= EVENTS_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {EVENTS_LIMIT_MAX}, got {limit}")
        query = select(security_events).order_by(
            security_events.c.occurred_at.desc(), security_events.c.id.desc()
        )
        if kind is not None:
            query = query.where(security_events.c.kind == kind)
        with self._db.transaction("read security events") as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [
            SecurityEvent(
                id=row.id,
                kind=row.kind,
                occurred_at=row.occurred_at,
                client=row.client,
                detail=row.detail,
            )
            for row in rows
        ]

    def prune_events(self, before: datetime) -> int:
        """Delete security events older than `before`; return how many went."""
        statement = delete(security_events).where(security_events.c.occurred_at < before)
        with self._db.transaction("prune security events") as connection:
            return connection.execute(statement).rowcount

