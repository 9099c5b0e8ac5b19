"""One active token per name, by a unique index on an expression instead of a partial index.

The partial index needed a dialect option per database (`sqlite_where=`, `postgresql_where=`),
and naming a dialect makes SQLAlchemy import it in every process. The expression index says
the same thing in SQL both databases read alike: revoked tokens index as NULL, which never
collides.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

ACTIVE_NAME = sa.text("(CASE WHEN revoked_at IS NULL THEN name END)")


def upgrade() -> None:
    op.drop_index("uq_tokens_active_name", table_name="tokens")
    op.create_index("uq_tokens_active_name", "tokens", [ACTIVE_NAME], unique=True)


def downgrade() -> None:
    op.drop_index("uq_tokens_active_name", table_name="tokens")
    op.create_index(
        "uq_tokens_active_name",
        "tokens",
        ["name"],
        unique=True,
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
