"""Alembic environment: runs on the connection `tallinn.ops.migrate` hands over, locked."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from tallinn.ops.migrate import VERSION_TABLE

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):  # pragma: no cover - guards misuse of the alembic CLI
    raise RuntimeError("run migrations with `tallinn db upgrade`, not the alembic command")

context.configure(
    connection=connection,
    version_table=VERSION_TABLE,
    # SQLite alters tables by copying them; new migrations use op.batch_alter_table.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
