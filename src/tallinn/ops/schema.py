"""The tables, as the code queries them. Migrations in `migrations/versions/` create them.

A test compares this metadata with the migrated database, so the two cannot drift apart.
New tables for later features (rollout, feedback) go here and in a new migration.

- `tokens`, `security_events`: API tokens (hashes only) and what the server refused.
- `blobs`, `releases`, `release_files`: immutable releases of a library; each file's bytes are
  a blob named by its SHA-256, stored once however many releases hold it.
- `channels`, `channel_history`: named pointers to releases, and every move of each.
- `audit_log`: append-only entries, each carrying the hash of the one before.
- `rollouts`, `rollout_signals`, `rollout_ratings`: gradual rollouts of a candidate release on
  a channel, the request counts each replica flushed per (release, minute), and the ratings.
- `release_hours`: those signals and ratings summed per (release, hour), kept up to date in the
  transactions that write them, so that charts over days read hours, not minutes.
- `error_groups`, `error_group_releases`, `error_samples`: the errors servers answered with,
  grouped by fingerprint, the releases each group happened in, and its latest samples.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    case,
)
from sqlalchemy.types import TypeDecorator

from tallinn.ops.rollout.signals import LATENCY_BOUNDS_MS

# Named constraints let SQLite migrations (batch mode) find and alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only autoincrements a primary key declared exactly INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which stores no time zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise TypeError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The public part of `tln_<token_id>_<secret>`: how a presented token is looked up.
    Column("token_id", String(32), nullable=False, unique=True),
    Column("name", String(64), nullable=False),
    # Hex SHA-256 of the secret part; the secret itself is never stored.
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    # What the token may do: reader, viewer, operator or admin (see `tallinn.ops.tokens`).
    Column("role", String(16), nullable=False, server_default="reader"),
)

# One active token per name; revoked ones keep their name for the record. A unique index on
# the name of active tokens only (NULL for revoked ones, and NULLs never collide), written
# the same for SQLite and PostgreSQL: a partial index needs `sqlite_where=` and
# `postgresql_where=`, and naming a dialect makes SQLAlchemy import it (the PostgreSQL
# dialect costs 20 ms and 2 MB in every process, SQLite ones included).
Index(
    "uq_tokens_active_name",
    case((tokens.c.revoked_at.is_(None), tokens.c.name)),
    unique=True,
)

security_events = Table(
    "security_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("occurred_at", UTCDateTime, nullable=False, index=True),
    Column("kind", String(64), nullable=False),
    Column("client", String(255), nullable=True),
    Column("detail", Text, nullable=False, server_default=""),
    Index("ix_security_events_kind_occurred_at", "kind", "occurred_at"),
)

# Hex SHA-256 digests name blobs and releases.
Digest = String(64)

blobs = Table(
    "blobs",
    metadata,
    Column("hash", Digest, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

releases = Table(
    "releases",
    metadata,
    # The content hash over the sorted (path, blob hash) list: equal content, equal id.
    Column("id", Digest, primary_key=True),
    # The order releases were made in, 1, 2, 3, ...: what "the next version" counts from.
    Column("seq", Integer, nullable=False, unique=True),
    Column("version", String(64), nullable=False, unique=True),
    Column("notes", Text, nullable=False, server_default=""),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # None outside git; `git_dirty` says whether the work tree had uncommitted changes.
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    # The readiness report of the gates run at release time, as JSON.
    Column("report", Text, nullable=True),
    Column("forced", Boolean, nullable=False, server_default="0"),
    Column("force_reason", Text, nullable=True),
)

release_files = Table(
    "release_files",
    metadata,
    Column("release_id", Digest, ForeignKey("releases.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("blob_hash", Digest, ForeignKey("blobs.hash"), nullable=False, index=True),
)

channels = Table(
    "channels",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("release_id", Digest, ForeignKey("releases.id"), nullable=False),
    Column("moved_at", UTCDateTime, nullable=False),
    Column("moved_by", String(255), nullable=False),
)

channel_history = Table(
    "channel_history",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    # `promote` or `rollback`; None for the first release a channel points at.
    Column("action", String(32), nullable=False),
    Column("from_release", Digest, ForeignKey("releases.id"), nullable=True),
    Column("to_release", Digest, ForeignKey("releases.id"), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_channel_history_channel_id", "channel", "id"),
)

audit_log = Table(
    "audit_log",
    metadata,
    # 1, 2, 3, ... without gaps: a deleted entry leaves a hole `verify` names.
    Column("seq", BigId, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("from_ref", String(255), nullable=True),
    Column("to_ref", String(255), nullable=True),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),
    # One entry may follow another only once: a fork of the chain is refused by the database.
    Column("prev_hash", Digest, nullable=False, unique=True),
    Column("hash", Digest, nullable=False),
)

rollouts = Table(
    "rollouts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("channel", String(64), nullable=False),
    # The channel's name while the rollout runs or is paused, NULL once it ended: at most one
    # rollout per channel is under way, and NULLs never collide in a unique column.
    Column("active_channel", String(64), nullable=True, unique=True),
    Column("stable_release", Digest, ForeignKey("releases.id"), nullable=False),
    Column("candidate_release", Digest, ForeignKey("releases.id"), nullable=False),
    # The `RolloutPlan`, as JSON.
    Column("plan", Text, nullable=False),
    Column("phase", String(16), nullable=False),
    Column("step", Integer, nullable=False),
    Column("step_started_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    # Raised by every change: a writer changes the row only at the version it read.
    Column("version", Integer, nullable=False),
    Column("started_by", String(255), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Index("ix_rollouts_channel_id", "channel", "id"),
)

rollout_signals = Table(
    "rollout_signals",
    metadata,
    # A `SignalBatch`: one replica's counts for one release in one minute. (replica, seq) is
    # its key, so a flush written twice counts once.
    Column("replica", String(128), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("release_id", Digest, ForeignKey("releases.id"), nullable=False),
    Column("minute", UTCDateTime, nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("server_errors", BigInteger, nullable=False),
    Column("client_errors", BigInteger, nullable=False),
    Column("stars", String(120), nullable=False, server_default="0,0,0,0,0"),
    # Request counts per latency bucket (tallinn.ops.rollout.signals.LATENCY_BOUNDS_MS).
    Column("latency", String(200), nullable=False, server_default=""),
    PrimaryKeyConstraint("replica", "seq", name="pk_rollout_signals"),
    Index("ix_rollout_signals_release_id_minute", "release_id", "minute"),
)

# One column per latency bucket of `tallinn.ops.rollout.signals.LATENCY_BOUNDS_MS` (and one
# past the last bound), so that a flush adds to an hour's histogram in one upsert.
LATENCY_COLUMNS = (*(f"latency_le_{bound}ms" for bound in LATENCY_BOUNDS_MS), "latency_over")

release_hours = Table(
    "release_hours",
    metadata,
    # The sums of every replica's `rollout_signals` and of the `rollout_ratings` of one release
    # in one hour (the hour's start).
    Column("release_id", Digest, ForeignKey("releases.id"), nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    Column("requests", BigInteger, nullable=False, server_default="0"),
    Column("server_errors", BigInteger, nullable=False, server_default="0"),
    Column("client_errors", BigInteger, nullable=False, server_default="0"),
    Column("ratings", BigInteger, nullable=False, server_default="0"),
    Column("satisfied", BigInteger, nullable=False, server_default="0"),
    *(Column(name, BigInteger, nullable=False, server_default="0") for name in LATENCY_COLUMNS),
    PrimaryKeyConstraint("release_id", "hour", name="pk_release_hours"),
)

rollout_ratings = Table(
    "rollout_ratings",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("release_id", Digest, ForeignKey("releases.id"), nullable=False),
    Column("prompt", String(255), nullable=False),
    Column("rating", Integer, nullable=False),
    Column("comment", Text, nullable=True),
    Column("client", String(255), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating_stars"),
    Index("ix_rollout_ratings_release_id_at", "release_id", "at"),
)

error_groups = Table(
    "error_groups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # Hex SHA-256 of (error class, where, shape): equal fingerprint, same group.
    Column("fingerprint", Digest, nullable=False, unique=True),
    Column("error_class", String(255), nullable=False),
    # The prompt, tool or resource the failing request named.
    Column("location", String(255), nullable=False),
    # The redacted message with numbers, hex ids and paths replaced by placeholders.
    Column("shape", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False, index=True),
)

error_group_releases = Table(
    "error_group_releases",
    metadata,
    # Releases may be served before the store knows them (a folder), so no foreign key.
    Column("group_id", BigId, ForeignKey("error_groups.id"), nullable=False),
    Column("release_id", Digest, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "release_id", name="pk_error_group_releases"),
    Index("ix_error_group_releases_release_id", "release_id"),
)

error_samples = Table(
    "error_samples",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", BigId, ForeignKey("error_groups.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("release_id", Digest, nullable=True),
    # Redacted at record time: no argument values, no secrets (see `tallinn.ops.error_log`).
    Column("detail", Text, nullable=False),
    Column("client", String(255), nullable=True),
    Column("replica", String(128), nullable=True),
    Index("ix_error_samples_group_id_id", "group_id", "id"),
)
