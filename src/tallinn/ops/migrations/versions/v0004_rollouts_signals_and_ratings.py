"""Gradual rollouts, the signal batches the servers flush, and the ratings of prompts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Migrations spell out their types rather than import schema.py, which moves on.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Timestamp = sa.DateTime(timezone=True)
Digest = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("active_channel", sa.String(64), nullable=True),
        sa.Column("stable_release", Digest, nullable=False),
        sa.Column("candidate_release", Digest, nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("step_started_at", Timestamp, nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("ended_at", Timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
        sa.UniqueConstraint("active_channel", name="uq_rollouts_active_channel"),
        sa.ForeignKeyConstraint(["stable_release"], ["releases.id"],
                                name="fk_rollouts_stable_release_releases"),
        sa.ForeignKeyConstraint(["candidate_release"], ["releases.id"],
                                name="fk_rollouts_candidate_release_releases"),
    )
    op.create_index("ix_rollouts_channel_id", "rollouts", ["channel", "id"])
    op.create_table(
        "rollout_signals",
        sa.Column("replica", sa.String(128), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("release_id", Digest, nullable=False),
        sa.Column("minute", Timestamp, nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("server_errors", sa.BigInteger(), nullable=False),
        sa.Column("client_errors", sa.BigInteger(), nullable=False),
        sa.Column("stars", sa.String(120), nullable=False, server_default="0,0,0,0,0"),
        sa.PrimaryKeyConstraint("replica", "seq", name="pk_rollout_signals"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"],
                                name="fk_rollout_signals_release_id_releases"),
    )
    op.create_index("ix_rollout_signals_release_id_minute", "rollout_signals",
                    ["release_id", "minute"])
    op.create_table(
        "rollout_ratings",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("release_id", Digest, nullable=False),
        sa.Column("prompt", sa.String(255), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_ratings"),
        sa.ForeignKeyConstraint(["release_id"], ["releases.id"],
                                name="fk_rollout_ratings_release_id_releases"),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name="ck_rollout_ratings_rating_stars"),
    )
    op.create_index("ix_rollout_ratings_release_id_at", "rollout_ratings",
                    ["release_id", "at"])


def downgrade() -> None:
    op.drop_table("rollout_ratings")
    op.drop_table("rollout_signals")
    op.drop_table("rollouts")
