"""Releases (with their files as content-addressed blobs), channels with their history, and
the append-only audit log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

# Migrations spell out their types rather than import schema.py, which moves on.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
Digest = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("hash", Digest, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name="pk_blobs"),
    )
    op.create_table(
        "releases",
        sa.Column("id", Digest, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("git_commit", sa.String(64), nullable=True),
        sa.Column("git_dirty", sa.Boolean(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("force_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_releases"),
        sa.UniqueConstraint("seq", name="uq_releases_seq"),
        sa.UniqueConstraint("version", name="uq_releases_version"),
    )
    op.create_table(
        "release_files",
        sa.Column("release_id", Digest, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("blob_hash", Digest, nullable=False),
        sa.PrimaryKeyConstraint("release_id", "path", name="pk_release_files"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"],
                                name="fk_release_files_release_id_releases"),
        sa.ForeignKeyConstraint(["blob_hash"], ["blobs.hash"],
                                name="fk_release_files_blob_hash_blobs"),
    )
    op.create_index("ix_release_files_blob_hash", "release_files", ["blob_hash"])
    op.create_table(
        "channels",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("release_id", Digest, nullable=False),
        sa.Column("moved_at", Timestamp, nullable=False),
        sa.Column("moved_by", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_channels"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"],
                                name="fk_channels_release_id_releases"),
    )
    op.create_table(
        "channel_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_release", Digest, nullable=True),
        sa.Column("to_release", Digest, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_channel_history"),
        sa.ForeignKeyConstraint(["from_release"], ["releases.id"],
                                name="fk_channel_history_from_release_releases"),
        sa.ForeignKeyConstraint(["to_release"], ["releases.id"],
                                name="fk_channel_history_to_release_releases"),
    )
    op.create_index("ix_channel_history_channel_id", "channel_history", ["channel", "id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", BigId, nullable=False, autoincrement=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("from_ref", sa.String(255), nullable=True),
        sa.Column("to_ref", sa.String(255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", Digest, nullable=False),
        sa.Column("hash", Digest, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
        sa.UniqueConstraint("prev_hash", name="uq_audit_log_prev_hash"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("channel_history")
    op.drop_table("channels")
    op.drop_table("release_files")
    op.drop_table("releases")
    op.drop_table("blobs")
