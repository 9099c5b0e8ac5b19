"""Linux inotify read on the event loop: library changes without a polling thread.

watchfiles polls from a worker thread that takes the GIL every `step` (20 ms); while the event
loop is busy, each of those takes forces a thread switch on it, which cost about a tenth of the
throughput of a loaded server on two cores. An inotify descriptor is read only when the kernel
has news, so watching costs nothing between edits.

    watcher = Inotify(root, accept=lambda path: path.endswith(".md"))
    paths = await watcher.next_batch(debounce=0.05)   # {"/lib/commands/a.md"}
    watcher.close()
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

import anyio

AVAILABLE = sys.platform.startswith("linux")

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_ISDIR = 0x40000000
EVENTS = (
    IN_MODIFY
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len; then `len` bytes of name
_READ_SIZE = 64 * 1024
# Under a steady stream of writes, reload at least this often rather than wait for quiet.
_MAX_BATCH_SECONDS = 1.0


class Inotify:
    """Watch every folder under `root` (hidden ones excepted) for changes `accept` cares about.

    Raises `OSError` when inotify cannot be used (not Linux, or the watch limit reached).
    """

    def __init__(self, root: Path, accept: Callable[[str], bool]) -> None:
        if not AVAILABLE:
            raise OSError(errno.ENOSYS, "inotify is Linux only")
        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add_watch.restype = ctypes.c_int
        fd = int(libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, f"inotify_init1: {os.strerror(code)}")
        self.fd = fd
        self.root = str(root)
        self.accept = accept
        self._folders: dict[int, str] = {}  # watch descriptor -> folder
        try:
            self._watch_tree(self.root)
        except OSError:
            self.close()
            raise

    def _watch_tree(self, top: str) -> None:
        if top != self.root and os.path.basename(top).startswith("."):
            return  # hidden, like `.tallinn/` where the state store writes
        for folder, subfolders, _ in os.walk(top):
            subfolders[:] = [name for name in subfolders if not name.startswith(".")]
            wd = self._add_watch(self.fd, os.fsencode(folder), EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW)
            if wd < 0:
                code = ctypes.get_errno()
                if code in (errno.ENOENT, errno.ENOTDIR):  # gone again already
                    continue
                raise OSError(code, f"inotify_add_watch: {os.strerror(code)}", folder)
            self._folders[wd] = folder

    def _drain(self) -> set[str]:
        """Read every pending event; return the accepted paths. New folders get watched too."""
        changed: set[str] = set()
        while True:
            try:
                data = os.read(self.fd, _READ_SIZE)
            except BlockingIOError:
                return changed
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                name = data[start : start + length].rstrip(b"\0")
                offset = start + length
                if mask & IN_Q_OVERFLOW:  # events were lost: assume anything changed
                    changed.add(self.root)
                    continue
                folder = self._folders.get(wd)
                if folder is None:
                    continue
                if mask & IN_IGNORED:  # the folder is gone, and its watch with it
                    del self._folders[wd]
                    continue
                path = os.path.join(folder, os.fsdecode(name)) if name else folder
                if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                    self._watch_tree(path)
                if self.accept(path):
                    changed.add(path)

    async def next_batch(self, debounce: float) -> set[str]:
        """Wait for accepted changes, then for `debounce` seconds of quiet; return their paths.

        An editor's write-rename-chmod burst arrives as one batch.
        """
        while True:
            await anyio.wait_readable(self.fd)
            batch = self._drain()
            deadline = anyio.current_time() + _MAX_BATCH_SECONDS
            while anyio.current_time() < deadline:
                with anyio.move_on_after(debounce) as quiet:
                    await anyio.wait_readable(self.fd)
                if quiet.cancelled_caught:
                    break
                batch |= self._drain()
            if batch:
                return batch

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
