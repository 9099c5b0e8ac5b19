"""The tables, as the code queries them. Migrations in `migrations/versions/` create them.

A test compares this metadata with the migrated database, so the two cannot drift apart.
New tables for later features (releases, rollout, feedback) go here and in a new migration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
)
from sqlalchemy.types import TypeDecorator

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
