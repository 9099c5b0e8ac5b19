"""The latency of each release's requests, as a histogram in every signal batch.

Rows written before this revision get an empty histogram, which reads as "not timed".

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("rollout_signals", sa.Column("latency", sa.String(200), nullable=False,
                                               server_default=""))


def downgrade() -> None:
    op.drop_column("rollout_signals", "latency")
