"""Where a library's files come from: a folder, or files held in memory (a stored release).

A `LibrarySource` gives a `FileReader` (`tallinn.library.files`: the one read path, with its
limits), a stable identity per file, so that a reload reads again only what changed, and a
label for messages. The loader, every gate and the server read a library through its source,
so a release kept in a database is checked and served exactly as the folder it came from::

    >>> build_library(FolderSource("my-library"))
    >>> build_library(FilesSource({"commands/hello.md": b"---\\n..."}, label="release 3"))

A `FilesSource` checks its paths once: an absolute path, a `..`, a backslash, a NUL or a path
given twice once normalised is a V111 problem of the library, and never read.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from tallinn.library.diagnostics import Diagnostic
from tallinn.library.files import UNREADABLE, FileReader, LibraryFiles, Limits, MemoryFiles

PathInput = str | os.PathLike[str]
# How recent a file's modification time may be for its identity to be trusted (see
# `FolderSource.identity`).
RACY_NS = 2_000_000_000


@runtime_checkable
class LibrarySource(Protocol):
    """The files of one library, wherever they are kept."""

    @property
    def label(self) -> str:
        """How messages name the library: a folder path, or `release 3 (ab12cd…)`."""

    @property
    def root(self) -> Path | None:
        """The library folder, for what truly needs one (writing fixes back); else `None`."""

    @property
    def problems(self) -> tuple[Diagnostic, ...]:
        """What is wrong with the source itself (paths that are never read)."""

    def files(self, limits: Limits | None = None) -> FileReader:
        """A reader of the source's files, within `limits`."""

    def identity(self, rel: str) -> Hashable | None:
        """What changes whenever the file at `rel` does; `None` when there is none."""


class FolderSource:
    """The library in the folder `path`; a file's identity is its size, mtime and inode."""

    def __init__(self, path: PathInput) -> None:
        self.path = Path(path)

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def root(self) -> Path:
        return self.path

    @property
    def problems(self) -> tuple[Diagnostic, ...]:
        return ()  # a folder's problems are found while walking it

    def files(self, limits: Limits | None = None) -> LibraryFiles:
        return LibraryFiles(self.path, limits)

    def identity(self, rel: str) -> Hashable | None:
        # The file a link leads to: editing it through the link is a change too. The path
        # itself is the key the identity is kept under.
        try:
            info = os.stat(os.path.join(self.path, rel))
        except (OSError, ValueError):
            return None
        if time.time_ns() - info.st_mtime_ns < RACY_NS:
            # A file system stamps times at a coarse grain (a few milliseconds here, two
            # seconds on FAT): a second write as quick as that, of the same size, would look
            # the same. A file that recent has no identity yet: it is read again each time,
            # and parsed again only when its bytes changed.
            return _Unknown()
        return (info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev, info.st_mode)

    def __repr__(self) -> str:
        return f"FolderSource({str(self.path)!r})"


class _Unknown:
    """An identity equal to no other, itself included."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)


class FilesSource:
    """Files held in memory, by relative POSIX path; a file's identity is its content hash.

    >>> source = FilesSource({"commands/a.md": b"..."}, label="release 3 (ab12cd)")
    """

    def __init__(self, files: Mapping[str, bytes], *, label: str = "files in memory") -> None:
        self._label = label
        checked, problems = _checked(files.items())
        self._files = checked
        self._problems = tuple(problems)
        self._hashes: dict[str, str] = {}

    @property
    def label(self) -> str:
        return self._label

    @property
    def root(self) -> Path | None:
        return None

    @property
    def problems(self) -> tuple[Diagnostic, ...]:
        return self._problems

    def files(self, limits: Limits | None = None) -> MemoryFiles:
        return MemoryFiles(self._files, limits)

    def identity(self, rel: str) -> Hashable | None:
        raw = self._files.get(rel)
        if raw is None:
            return None
        digest = self._hashes.get(rel)
        if digest is None:
            digest = self._hashes[rel] = hashlib.sha256(raw).hexdigest()
        return digest

    def __repr__(self) -> str:
        return f"FilesSource({len(self._files)} files, label={self._label!r})"


def as_source(where: LibrarySource | PathInput) -> LibrarySource:
    """Given a source or a folder path, return a source."""
    if isinstance(where, str | os.PathLike):
        return FolderSource(where)
    return where


def _shown(path: str) -> str:
    """A path as a message may show it: control characters escaped, never raw."""
    return path.encode("unicode_escape").decode("ascii") if not path.isprintable() else path


def _untidy(path: object) -> bool:
    return not isinstance(path, str) or any(part in ("", ".") for part in path.split("/"))


def _checked(items: Iterable[tuple[str, bytes]]) -> tuple[dict[str, bytes], list[Diagnostic]]:
    """Given (path, bytes) pairs, the files under their normalised paths, and the paths
    refused. Given `commands//./a.md`, the path is `commands/a.md`."""
    files: dict[str, bytes] = {}
    problems: list[Diagnostic] = []

    def refuse(path: str, reason: str) -> None:
        problems.append(Diagnostic(UNREADABLE, f"not read: the path {reason}", _shown(path)))

    # A path as written comes first: of `commands/a.md` and `commands/./a.md`, the second is
    # the one refused, whatever order they were given in.
    for path, raw in sorted(items, key=lambda item: (_untidy(item[0]), str(item[0]))):
        if not isinstance(path, str) or not isinstance(raw, bytes | bytearray | memoryview):
            raise TypeError("FilesSource takes a mapping of str paths to bytes")
        if "\0" in path:
            refuse(path, "contains a NUL character")
            continue
        if "\\" in path:
            refuse(path, "contains a backslash; write paths with forward slashes")
            continue
        if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
            refuse(path, "is absolute; paths are relative to the library")
            continue
        parts = [part for part in path.split("/") if part not in ("", ".")]
        if ".." in parts:
            refuse(path, "leads outside the library ('..')")
            continue
        if not parts:
            refuse(path, "names no file")
            continue
        rel = "/".join(parts)
        if rel in files:
            refuse(path, f"names '{rel}', which is given already")
            continue
        files[rel] = bytes(raw)
    folders = {rel.rsplit("/", i)[0] for rel in files for i in range(1, rel.count("/") + 1)}
    for rel in sorted(folders & files.keys()):
        del files[rel]
        refuse(rel, "names a file and a folder at once")
    return files, problems
