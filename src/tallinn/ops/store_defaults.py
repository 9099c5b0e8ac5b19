"""Where the store lives by default and the fixed settings it connects and migrates with.

Nothing here imports SQLAlchemy, so the store (`tallinn.ops.engine`, `tallinn.ops.migrate`)
and the driver-only token verifier (`tallinn.ops.verifier`) read the same values from one place.
"""

from __future__ import annotations

from pathlib import Path

from tallinn.settings import starter_path

STATE_DIR = ".tallinn"
STATE_FILE = "state.db"
# How long a SQLite writer waits for another one before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How long a PostgreSQL connection attempt may take, in seconds (ping relies on it).
PG_CONNECT_TIMEOUT_S = 5
# The newest revision in migrations/versions; a test keeps the two in step.
HEAD = "0007"
CHILD_URL = "TALLINN_MIGRATE_URL"  # the URL goes to the child in its environment, not argv
CHILD_TIMEOUT_S = 300


def default_sqlite_path(library_root: Path | None) -> Path:
    """Given a library folder, return `<root>/.tallinn/state.db`; else `./.tallinn/state.db`.

    The bundled starter library lives inside the installed package, which may be read-only and
    is shared by every user, so its state goes to the current directory instead.
    """
    base = Path.cwd()
    if library_root is not None and not _same_path(library_root, starter_path()):
        base = library_root
    return base / STATE_DIR / STATE_FILE


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:  # pragma: no cover - resolve() only fails on exotic filesystems
        return a == b
