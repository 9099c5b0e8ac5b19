"""The SQLite file under the store: its folder, its room, its identity, and what went wrong.

SQLite keeps a WAL database's index in shared memory: a `-shm` file beside the database,
mapped into every process that opens it. SQLite grows that file by writing one byte at the
end of each 4 KiB page. On a file system whose blocks are smaller than a page (ext4 picks
1 KiB blocks for small volumes) that allocates only the page's last block; when the file
system is nearly full, SQLite's first write into the rest of the page finds no block to
allocate, and the kernel answers with SIGBUS, which kills the process. So a store is not
opened on a file system with less than `MIN_FREE_BYTES` free: a clear `store_full` error
instead of a crash.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

from tallinn.ops.errors import StoreError

if TYPE_CHECKING:  # only `file_path` takes one; the driver-only verifier imports no SQLAlchemy
    from sqlalchemy.engine import URL

# Room a SQLite store needs to open: two 32 KiB regions of the -shm index, with room to spare
# for the write-ahead log's first frames.
MIN_FREE_BYTES = 256 * 1024

Identity = tuple[int, int]  # (st_dev, st_ino)


def file_path(url: URL) -> Path | None:
    """Given `sqlite:////srv/lib/.tallinn/state.db`, return that path; None for other stores."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = str(url.database)
    if database.startswith("file:"):  # a URI filename: leave it to SQLite
        return None
    return Path(database).expanduser()


def identity(path: Path) -> Identity | None:
    """The (device, inode) of `path`, or None when nothing is there."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


def prepare(path: Path, where: str, *, create: bool) -> None:
    """Make sure a store can be opened at `path`; raise `StoreError` naming what is wrong.

    `where` is the store's URL for messages. `create` False refuses a missing file (a store
    that vanished while serving is not silently replaced by an empty one).
    """
    problem = _problem(path, create=create, make_folder=True)
    if problem is not None:
        code, detail = problem
        raise StoreError(f"state store {where}: {detail}", code)


def _problem(path: Path, *, create: bool, make_folder: bool) -> tuple[str, str] | None:
    """Given a store path, return `(code, what is wrong)`, or None when it can be opened."""
    folder = path.parent
    if not create and not path.exists():
        return "store_missing", f"the file {path} is gone"
    if not make_folder and not folder.is_dir():
        return "store_path", f"the folder {folder} does not exist"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return "store_path", f"cannot create the folder {folder}: {_why(exc)}"
    if path.is_dir():
        return "store_path", f"{path} is a folder, not a file"
    if not (os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))):
        return "store_read_only", f"{path} cannot be written (read-only file system or no access)"
    free = free_bytes(folder)
    if free is not None and free < MIN_FREE_BYTES:
        return (
            "store_full",
            f"the file system holding {folder} is full "
            f"({free} bytes free, {MIN_FREE_BYTES} needed)",
        )
    return None


def free_bytes(folder: Path) -> int | None:
    """Bytes this process may still write in `folder`'s file system (root may use reserved)."""
    if not hasattr(os, "statvfs"):  # pragma: no cover - Windows has no statvfs
        return None
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    blocks = stat.f_bfree if getattr(os, "geteuid", lambda: -1)() == 0 else stat.f_bavail
    return blocks * stat.f_frsize


def diagnose(path: Path, message: str) -> tuple[str, str]:
    """Given SQLite's `message` about the store at `path`, return `(code, clearest message)`.

    SQLite says "unable to open database file" or "disk I/O error" for several conditions;
    the folder and its file system tell which one it is.
    """
    problem = _problem(path, create=True, make_folder=False)
    if problem is not None:
        return problem
    if "disk is full" in message:
        return "store_full", f"the file system is full ({message})"
    if "readonly" in message or "read-only" in message:
        return "store_read_only", f"{path} cannot be written ({message})"
    return "store_unavailable", message


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return "a part of the path is a file, not a folder"
    return exc.strerror or str(exc)
