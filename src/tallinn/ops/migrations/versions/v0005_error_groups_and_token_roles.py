"""Error tracking (groups by fingerprint, the releases each happened in, the latest samples)
and a role for every API token.

Tokens made before this revision become readers, which is all a token could do until now.
The role column is added and dropped in place (SQLite has done both since 3.35): a batch
rebuild of `tokens` would lose the expression index that keeps one active token per name.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

# Migrations spell out their types rather than import schema.py, which moves on.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
Digest = sa.String(64)


def upgrade() -> None:
    op.add_column("tokens", sa.Column("role", sa.String(16), nullable=False,
                                      server_default="reader"))
    op.create_table(
        "error_groups",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", Digest, nullable=False),
        sa.Column("error_class", sa.String(255), nullable=False),
        sa.Column("location", sa.String(255), nullable=False),
        sa.Column("shape", sa.Text(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", Timestamp, nullable=False),
        sa.Column("last_seen", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_error_groups"),
        sa.UniqueConstraint("fingerprint", name="uq_error_groups_fingerprint"),
    )
    op.create_index("ix_error_groups_last_seen", "error_groups", ["last_seen"])
    op.create_table(
        "error_group_releases",
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("release_id", Digest, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", Timestamp, nullable=False),
        sa.Column("last_seen", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "release_id", name="pk_error_group_releases"),
        sa.ForeignKeyConstraint(["group_id"], ["error_groups.id"],
                                name="fk_error_group_releases_group_id_error_groups"),
    )
    op.create_index("ix_error_group_releases_release_id", "error_group_releases",
                    ["release_id"])
    op.create_table(
        "error_samples",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("group_id", BigId, nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("release_id", Digest, nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("client", sa.String(255), nullable=True),
        sa.Column("replica", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_error_samples"),
        sa.ForeignKeyConstraint(["group_id"], ["error_groups.id"],
                                name="fk_error_samples_group_id_error_groups"),
    )
    op.create_index("ix_error_samples_at", "error_samples", ["at"])
    op.create_index("ix_error_samples_group_id_id", "error_samples", ["group_id", "id"])


def downgrade() -> None:
    op.drop_table("error_samples")
    op.drop_table("error_group_releases")
    op.drop_table("error_groups")
    op.drop_column("tokens", "role")
