"""Schema migrations with Alembic, run from code, safe when several replicas start at once.

`upgrade(engine)` takes a database-wide lock before Alembic reads the current revision, so
the first process migrates and the others find the schema already at head:

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`); PostgreSQL has
  transactional DDL, so a failed migration leaves nothing behind.
- SQLite: `BEGIN IMMEDIATE`, which takes the database's write lock (others wait up to the busy
  timeout); SQLite DDL is transactional too, so the same holds.

A database already at `HEAD` is recognised with one plain query, without importing Alembic
(a tenth of a second and 10 MB at every server start). A server that finds its database behind
migrates it in a child process (`upgrade(engine, isolated=True)`, which runs this module), so
that Alembic's 10 MB are never loaded into a process that then serves for weeks.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, column, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from tallinn.ops.errors import StoreError
from tallinn.ops.store_defaults import CHILD_TIMEOUT_S, CHILD_URL, HEAD

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "tallinn_schema_version"
_SELECT_REVISION = select(table(VERSION_TABLE, column("version_num")))
# Any fixed 64-bit number works; this one is "tallinn" in ASCII.
PG_LOCK_KEY = int.from_bytes(b"tallinn", "big")


@dataclass(frozen=True, slots=True)
class Revisions:
    """Where a database stands: `Revisions(current="0001", head="0001")`."""

    current: str | None
    head: str | None

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; `None` for a database never migrated."""
    from alembic.runtime.migration import MigrationContext

    _quiet_alembic()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def revisions(engine: Engine) -> Revisions:
    return Revisions(current=current_revision(engine), head=head_revision())


def upgrade(engine: Engine, target: str = "head", *,
            isolated: bool = False) -> tuple[str | None, str | None]:
    """Migrate the database to `target` under a lock; return the revisions before and after.

    `isolated` runs the migration in a child process when one is due (never for an in-memory
    SQLite database, which no other process can reach). Alembic's own errors are raised as
    `StoreError`.
    """
    if target in ("head", HEAD) and _stored_revision(engine) == HEAD:
        return HEAD, HEAD  # the common case: nothing to do, and no Alembic to import
    if isolated and engine.url.database not in (None, "", ":memory:"):
        return _upgrade_in_child(engine, target)
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util.exc import CommandError

    _quiet_alembic()
    with engine.connect() as connection:
        _lock(connection)
        before = MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
        _check_known(before)
        try:
            command.upgrade(_config(connection), target)
        except CommandError as exc:
            raise StoreError(str(exc)) from exc
        connection.commit()
    return before, current_revision(engine)



def _upgrade_in_child(engine: Engine, target: str) -> tuple[str | None, str | None]:
    before = _stored_revision(engine)
    env = {**os.environ, CHILD_URL: engine.url.render_as_string(hide_password=False)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tallinn.ops.migrate", target], env=env, capture_output=True,
            text=True, timeout=CHILD_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StoreError(f"the schema migration did not finish: {exc}") from exc
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise StoreError(lines[-1] if lines else f"the schema migration exited {done.returncode}")
    engine.dispose()  # connections opened before the migration may hold the old schema
    return before, _stored_revision(engine)


def _main() -> int:
    """The child of `upgrade(..., isolated=True)`: migrate `$TALLINN_MIGRATE_URL`, then exit."""
    from sqlalchemy.engine import make_url

    from tallinn.ops.engine import make_engine  # the parent's settings: WAL, busy timeout

    engine = make_engine(make_url(os.environ[CHILD_URL]))
    try:
        upgrade(engine, sys.argv[1] if len(sys.argv) > 1 else "head")
    except (StoreError, SQLAlchemyError) as exc:
        print(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0


def _stored_revision(engine: Engine) -> str | None:
    """The revision in the version table, by plain SQL; None if there is no single one to read.

    No lock: a database found at head stays there, whoever else is migrating.
    """
    try:
        with engine.connect() as connection:
            rows = connection.execute(_SELECT_REVISION).all()
    except SQLAlchemyError:  # no version table yet, or no database: the full path will tell
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _quiet_alembic() -> None:
    """Keep Alembic's INFO lines ("Context impl SQLiteImpl.", "Running upgrade ...") out of the
    caller's logs: a server logging at INFO would print them at every start. A level set on the
    `alembic` logger on purpose is left alone."""
    logger = logging.getLogger("alembic")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def _check_known(revision: str | None) -> None:
    """Refuse a database that a newer Tallinn migrated past what this one knows."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    if revision is not None and revision not in {s.revision for s in script.walk_revisions()}:
        raise StoreError(
            f"the database is at schema revision {revision}, which this version of Tallinn "
            f"does not know (its newest is {script.get_current_head()}): "
            "a newer Tallinn has migrated it"
        )


def _lock(connection: Connection) -> None:
    """Take the migration lock for the rest of this connection's transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        # pysqlite leaves DDL outside transactions; an explicit one makes it atomic and locked.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    # Config values pass through configparser interpolation: escape '%'.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


if __name__ == "__main__":
    sys.exit(_main())
