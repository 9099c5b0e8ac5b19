"""The append-only audit log: every release, promotion and rollback, in a hash chain.

    with audit.writing("promote a release") as connection:
        ...                                    # the change itself
        audit.append(connection, actor="alice", action="promote", subject="production",
                     from_ref="2", to_ref="3", reason="fixes the review prompt")

An entry is written in the same transaction as the change it records, so there is never a
change without its entry, nor an entry without its change. Each entry carries the hash of the
one before: `hash = sha256(prev_hash + "\\n" + canonical JSON of the entry)`, the first entry's
`prev_hash` being 64 zeros. Writers are serialised (SQLite's single writer, taken at the start
with `BEGIN IMMEDIATE`; a transaction-scoped advisory lock on PostgreSQL), and a unique index on
`prev_hash` refuses a second entry after the same one, so the chain never forks.

`verify()` walks the chain and names the first entry that was edited, deleted or inserted.
Dropping the newest entries leaves a shorter chain that still verifies: keep the head hash
(`tallinn audit-log --json`, its last entry) elsewhere to notice that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, text

from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.records import AuditEntry
from tallinn.ops.schema import audit_log
from tallinn.ops.store_defaults import SQLITE_BUSY_TIMEOUT_MS

GENESIS = "0" * 64
# Any fixed 64-bit number works; this one is "audit" in ASCII. Not the migration lock's key.
PG_AUDIT_LOCK_KEY = int.from_bytes(b"audit", "big")


@dataclass(frozen=True, slots=True)
class Verification:
    """What `verify` found: `Verification(ok=False, entries=7, bad_seq=4, problem="...")`."""

    ok: bool
    entries: int
    bad_seq: int | None = None
    problem: str = ""


def entry_hash(prev_hash: str, seq: int, at: datetime, actor: str, action: str, subject: str,
               from_ref: str | None, to_ref: str | None, reason: str, details: str) -> str:
    """The hash of one entry: its fields as canonical JSON (sorted keys, no spaces), after
    the previous entry's hash."""
    body = json.dumps(
        {"seq": seq, "at": at.isoformat(timespec="microseconds"), "actor": actor,
         "action": action, "subject": subject, "from": from_ref, "to": to_ref,
         "reason": reason, "details": details},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


class AuditLog:
    """The audit log in the shared `Database`."""

    def __init__(self, database: Database, *, clock: Clock = utcnow) -> None:
        self._db = database
        self._clock = clock

    @contextmanager
    def writing(self, action: str) -> Iterator[Connection]:
        """A transaction that holds the audit log's write lock from its first statement."""
        with self._db.transaction(action, immediate=True) as connection:
            if connection.dialect.name == "postgresql":
                # As long as a SQLite writer waits for another (its busy timeout), no longer.
                connection.execute(text(f"SET LOCAL lock_timeout = {SQLITE_BUSY_TIMEOUT_MS}"))
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": PG_AUDIT_LOCK_KEY})
            yield connection

    def append(self, connection: Connection, *, actor: str, action: str, subject: str,
               reason: str, from_ref: str | None = None, to_ref: str | None = None,
               details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append one entry inside `connection`'s transaction, which `writing` opened."""
        last = connection.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        ).first()
        seq, prev = (1, GENESIS) if last is None else (int(last.seq) + 1, str(last.hash))
        # Stored and hashed at the precision both databases keep: microseconds.
        at = self._clock()
        details_text = json.dumps(dict(details or {}), sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False)
        digest = entry_hash(prev, seq, at, actor, action, subject, from_ref, to_ref, reason,
                            details_text)
        entry = AuditEntry(seq, at, actor, action, subject, from_ref, to_ref, reason,
                           details_text, prev, digest)
        connection.execute(insert(audit_log).values(
            seq=seq, at=at, actor=actor, action=action, subject=subject, from_ref=from_ref,
            to_ref=to_ref, reason=reason, details=details_text, prev_hash=prev, hash=digest,
        ))
        return entry

    def entries(self, since: datetime | None = None) -> list[AuditEntry]:
        """Every entry, oldest first; only those at or after `since` when given."""
        query = select(audit_log).order_by(audit_log.c.seq)
        if since is not None:
            query = query.where(audit_log.c.at >= since)
        with self._db.transaction("read the audit log") as connection:
            rows = connection.execute(query).all()
        return [_entry(row) for row in rows]

    def verify(self) -> Verification:
        """Walk the chain from the first entry; the first that does not hold is named."""
        entries = self.entries()
        prev, expected_seq = GENESIS, 1
        for entry in entries:
            if entry.seq != expected_seq:
                gone = (f"entry {expected_seq}" if entry.seq == expected_seq + 1
                        else f"entries {expected_seq} to {entry.seq - 1}")
                return Verification(False, len(entries), entry.seq,
                                    f"{gone} deleted, or entry {entry.seq} renumbered")
            if entry.prev_hash != prev:
                return Verification(False, len(entries), entry.seq,
                                    f"entry {entry.seq} does not follow entry "
                                    f"{entry.seq - 1}: its previous hash is not that entry's "
                                    "hash (an entry was inserted, deleted or replaced)")
            recomputed = entry_hash(entry.prev_hash, entry.seq, entry.at, entry.actor,
                                    entry.action, entry.subject, entry.from_ref, entry.to_ref,
                                    entry.reason, entry.details)
            if recomputed != entry.hash:
                return Verification(False, len(entries), entry.seq,
                                    f"entry {entry.seq} was edited: its hash does not match "
                                    "its content")
            prev, expected_seq = entry.hash, expected_seq + 1
        return Verification(True, len(entries))


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        seq=int(row.seq), at=row.at, actor=row.actor, action=row.action, subject=row.subject,
        from_ref=row.from_ref, to_ref=row.to_ref, reason=row.reason, details=row.details,
        prev_hash=row.prev_hash, hash=row.hash,
    )
