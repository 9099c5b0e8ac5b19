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

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, delete, insert, select
from sqlalchemy.sql.expression import ColumnElement

from tallinn.ops.database import Clock, Database, utcnow
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

SAMPLES_PER_GROUP = 20
RETENTION = timedelta(days=30)
DETAIL_MAX = 1000
SCAN_MAX = 4 * DETAIL_MAX
NAME_MAX = 255  # an error class, a where, a client
REPLICA_MAX = 128
ARGUMENT_MIN = 4
GROUPS_LIMIT_MAX = 10_000
_RELEASE_ID = re.compile(r"[0-9a-f]{64}")

_TOKEN = re.compile(r"\btln_[0-9A-Za-z]+_[A-Za-z0-9_-]+")
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Any `word=value` or `word: value`; the key is checked apart (`_SECRET_KEY`), which keeps the
# scan linear: a key pattern with the secret words in its middle backtracks at every letter.
_PAIR = re.compile(r"(?P<key>\b[\w-]+)(?P<sep>\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
_SECRET_KEY = re.compile(r"token|passw(?:or)?d|secret|api[_-]?key|authorization|credential|"
                         r"cookie|session", re.IGNORECASE)
_URL_USER = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^\s/@]+@", re.IGNORECASE)
_LONG_RUN = re.compile(r"[A-Za-z0-9_+/=-]{24,}")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}\b")
_RUN = re.compile(r"\S+")
_PATH = re.compile(r"(?:\b[A-Za-z]:\\|\.{0,2}/)?[\w.-]+(?:[/\\][\w.-]+)+[/\\]?|(?<![\w<])/[\w.-]+")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")


def redact(detail: str, arguments: Iterable[str] = ()) -> str:
    """Given `render failed for 'src/app.py' with token=abc123`, return
    `render failed for <str> with token=<secret>`: the module docstring's rule."""
    text = detail
    for value in sorted({v for v in arguments if isinstance(v, str) and
                         len(v) >= ARGUMENT_MIN}, key=len, reverse=True):
        text = text.replace(value, "<arg>")
    # A huge message costs the patterns below no more than a few times what is kept.
    text = text[:SCAN_MAX]
    # Each pattern runs only where its cheap sign is present: most messages hold none.
    if "tln_" in text:
        text = _TOKEN.sub("<secret>", text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered or "token" in lowered:
        text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m[1]} <secret>", text)
    if _SECRET_KEY.search(text) is not None:
        text = _PAIR.sub(_secret_if_key, text)
    if "://" in text:
        text = _URL_USER.sub(lambda m: f"{m['scheme']}<secret>@", text)
    text = _LONG_RUN.sub(_secret_if_mixed, text)
    text = _QUOTED.sub("<str>", text)
    text = _CONTROL.sub(" ", text).strip()
    return text[:DETAIL_MAX]


def _secret_if_key(match: re.Match[str]) -> str:
    if _SECRET_KEY.search(match["key"]) is None:
        return match[0]
    return f"{match['key']}{match['sep']}<secret>"


def _secret_if_mixed(match: re.Match[str]) -> str:
    run = match[0]
    mixed = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
    return "<secret>" if mixed else run


def shape(detail: str) -> str:
    """Given `line 12 of /srv/lib/a.md: id 9f86d081884c`, return
    `line <n> of <path>: id <hex>` (after `redact`, which this applies first)."""
    return _shape_of_redacted(redact(detail))


def _shape_of_redacted(text: str) -> str:
    text = _HEX.sub("<hex>", text)
    # Only the runs that hold a slash can be paths; the path pattern is costly elsewhere.
    text = _RUN.sub(_paths_in, text)
    return _NUMBER.sub("<n>", text)


def _paths_in(match: re.Match[str]) -> str:
    run = match[0]
    return _PATH.sub("<path>", run) if "/" in run or "\\" in run else run


def fingerprint(error_class: str, where: str, detail: str) -> str:
    """The hex SHA-256 naming the group of an error: its class, where, and `shape(detail)`."""
    return _fingerprint_of(error_class, where, shape(detail))


def _fingerprint_of(error_class: str, where: str, shaped: str) -> str:
    body = "\n".join((error_class, where, shaped))
    return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()


def _name(value: str | None, limit: int, default: str) -> str:
    """A class, where or client as stored: printable, without secrets, at most `limit`."""
    if value is None:
        return default
    text = _CONTROL.sub(" ", _TOKEN.sub("<secret>", value[:2 * limit])).strip()[:limit]
    return text or default


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """One error a server answered with, e.g. `ErrorEvent(at, None, "code-review",
    "RenderError", "missing argument <str>", client="alice", replica="web-1")`.

    `release` is the id of the release that served the request (None when serving a folder),
    `where` the prompt, tool or resource the request named. Build it with `capture`, which
    redacts the message with the request's argument values; `ErrorLog.record` redacts again
    (all but the argument values, which it does not know).
    """

    at: datetime
    release: str | None
    where: str
    error_class: str
    detail: str
    client: str | None = None
    replica: str | None = None

    @classmethod
    def capture(cls, error: BaseException | str, *, at: datetime, where: str,
                arguments: Iterable[str] = (), release: str | None = None,
                client: str | None = None, replica: str | None = None,
                error_class: str | None = None) -> ErrorEvent:
        """The event for `error`, its message redacted with `arguments` (the request's values)
        before it is kept anywhere; the class is the exception's unless given."""
        if error_class is None:
            error_class = "Error" if isinstance(error, str) else type(error).__name__
        return cls(at, release, where, error_class, redact(str(error), arguments),
                   client, replica)


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


@dataclass(slots=True)
class _Pending:
    """One group's share of a batch, added up in memory before one upsert."""

    error_class: str
    where: str
    shape: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    releases: dict[str, list[Any]] = field(default_factory=dict)  # id: [count, first, last]
    samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, at: datetime, release: str | None, sample: dict[str, Any], keep: int) -> None:
        self.count += 1
        self.first = at if self.first is None or at < self.first else self.first
        self.last = at if self.last is None or at > self.last else self.last
        if release is not None:
            seen = self.releases.setdefault(release, [0, at, at])
            seen[0] += 1
            seen[1], seen[2] = min(seen[1], at), max(seen[2], at)
        self.samples.append(sample)
        if len(self.samples) > 2 * keep:  # a flood of one error keeps memory bounded
            self.samples = self.latest(keep)

    def latest(self, keep: int) -> list[dict[str, Any]]:
        return sorted(self.samples, key=lambda s: s["at"])[-keep:] if keep else []


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
        pending = self._pending(events)
        if not pending:
            return 0
        with self._db.transaction("record errors") as connection:
            upsert = _upsert(connection)
            # Fingerprint order, so two replicas writing the same groups lock them alike.
            for print_, group in sorted(pending.items()):
                group_id = self._write_group(connection, upsert, print_, group)
                self._write_releases(connection, upsert, group_id, group)
                self._write_samples(connection, group_id, group)
        return sum(group.count for group in pending.values())

    def _pending(self, events: Iterable[ErrorEvent]) -> dict[str, _Pending]:
        pending: dict[str, _Pending] = {}
        seen: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        keep = self.samples_per_group
        for event in events:
            if not isinstance(event, ErrorEvent):
                raise TypeError(f"record takes ErrorEvents, not {type(event).__name__}")
            if event.at.tzinfo is None:
                raise TypeError("naive datetime in an ErrorEvent; use datetime.now(UTC)")
            release = event.release
            if release is not None and not _RELEASE_ID.fullmatch(release):
                raise ValueError(f"an ErrorEvent's release is a 64-digit hex id, not {release!r}")
            error_class = _name(event.error_class, NAME_MAX, "Error")
            where = _name(event.where, NAME_MAX, "-")
            # A flood repeats one message: each distinct one is redacted and shaped once.
            known = seen.get((error_class, where, event.detail))
            if known is None:
                detail = redact(event.detail)
                shaped = _shape_of_redacted(detail)
                known = seen[error_class, where, event.detail] = (
                    detail, shaped, _fingerprint_of(error_class, where, shaped))
            detail, shaped, print_ = known
            group = pending.get(print_)
            if group is None:
                group = pending[print_] = _Pending(error_class, where, shaped)
            group.add(event.at, release, {
                "at": event.at, "release_id": release, "detail": detail,
                "client": None if event.client is None else _name(event.client, NAME_MAX, "-"),
                "replica": (None if event.replica is None
                            else _name(event.replica, REPLICA_MAX, "-")),
            }, keep)
        return pending

    def _write_group(self, connection: Connection, upsert: Any, print_: str,
                     group: _Pending) -> int:
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
                        group: _Pending) -> None:
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

    def _write_samples(self, connection: Connection, group_id: int, group: _Pending) -> None:
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


def _upsert(connection: Connection) -> Any:
    """The dialect's `insert` with `on_conflict_do_update`, imported only for that dialect
    (naming PostgreSQL's costs every SQLite process 20 ms and 2 MB)."""
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _earlier(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((b < a, b), else_=a)


def _later(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((b > a, b), else_=a)
