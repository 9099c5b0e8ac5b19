"""Read a library's files: the one read path of the loader, every gate and the server.

Whoever reads a library file reads it here, so the security audit sees exactly the text the
loader composes and the server serves. A file that cannot be read is a diagnostic with its
path, never a silent skip:

- only regular files inside the library root are read: a FIFO, a socket or a device is
  refused before it is opened (a FIFO would block the reader for good, `/dev/zero` never
  ends), and so is a symbolic link that leads outside the root, a broken one or a loop; a
  symbolic link that stays inside is followed;
- a file is opened with `O_NONBLOCK`, checked again with `fstat` on the open descriptor (the
  path may have been swapped since it was looked at), and at most `max_file_bytes + 1` bytes
  are read, so a file that grows while it is read still costs no more memory than the limit;
- text is UTF-8, without a byte-order mark, and CRLF and lone CR newlines become `\\n`: every
  position Tallinn reports counts lines the same way (see `LineIndex`).

The limits come from the `[limits]` table of `tallinn.toml` (docs/format.md lists them)::

    >>> files = LibraryFiles(Path("my-library"), Limits())
    >>> paths, problems = files.walk("commands", lambda name: name.endswith(".md"))
    >>> files.read_text(paths[0])   # the text, or a Diagnostic saying why not

`MemoryFiles` reads files held in memory (a stored release) the same way, within the same
limits: both are a `FileReader`, which is what a `tallinn.library.source.LibrarySource` gives.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from tallinn.library.diagnostics import Diagnostic

# The composer recurses once per level of includes, so its limit stays well below Python's.
_HIGHEST = {"max_include_depth": 200}
NOT_UTF8 = "V100"
INVALID_CONFIG = "V106"
UNREADABLE = "V111"
TOO_LARGE = "V112"
TOO_MANY_FILES = "V116"


@dataclass(frozen=True, slots=True)
class Limits:
    """How much one library may make Tallinn do; the `[limits]` table of `tallinn.toml`."""

    max_file_bytes: int = 1_000_000
    """Largest file read, in bytes; a larger one is refused (V112)."""
    max_yaml_nodes: int = 10_000
    """Most YAML nodes in one file's front matter or test file, aliases counted expanded."""
    max_yaml_depth: int = 50
    """Deepest nesting of YAML lists and mappings."""
    max_yaml_aliases: int = 100
    """Most YAML aliases (`*name`) in one document."""
    max_include_depth: int = 32
    """Longest chain of includes from a command down to its deepest component (V206); at
    most 200."""
    max_arguments: int = 100
    """Most arguments one command or component declares (V114)."""
    max_placeholders: int = 10_000
    """Most placeholders and includes in one body (V304)."""
    max_files: int = 100_000
    """Most entries (files and folders) listed under one of the library's folders
    (`commands/`, `components/`, `tests/`); past it the rest are not read (V116)."""

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> tuple[Limits, list[tuple[str, str]]]:
        """Given the `[limits]` table, return the limits and what was wrong with it.

        A wrong entry keeps its default and is named in the problems, as (key, message).
        """
        known = {f.name for f in fields(cls)}
        values: dict[str, int] = {}
        problems: list[tuple[str, str]] = []
        for key, value in table.items():
            if key not in known:
                problems.append((key, f"[limits] has no setting '{key}' (known: "
                                      f"{', '.join(sorted(known))})"))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append((key, f"[limits] {key} must be a whole number of at least 1, "
                                      f"not {value!r}"))
            elif value > _HIGHEST.get(key, value):
                problems.append((key, f"[limits] {key} may be at most {_HIGHEST[key]}, "
                                      f"not {value}"))
            else:
                values[key] = value
        return cls(**values), problems

    @property
    def fingerprint(self) -> str:
        """A short text naming every limit, so a cache keeps entries per set of limits."""
        return _fingerprint(self)


@lru_cache(maxsize=64)
def _fingerprint(limits: Limits) -> str:
    # Once per set of limits, not once per file parsed: a load asks for it at every file.
    return ",".join(str(getattr(limits, f.name)) for f in fields(limits))


def normalise(text: str) -> str:
    """Given decoded text, drop a byte-order mark and make every newline `\\n`."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def decode(raw: bytes, rel: str) -> str | Diagnostic:
    """Given a file's bytes, return its text (see `normalise`) or where it is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Lines as `normalise` counts them: a CRLF is one newline, a lone CR another.
        head = raw[: exc.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = head.count(b"\n") + 1
        col = len(head) - (head.rfind(b"\n") + 1) + 1
        return Diagnostic(NOT_UTF8, "file is not valid UTF-8", rel, line, col)
    return normalise(text)


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


class FileReader(Protocol):
    """How every part of Tallinn reads a library's files, wherever they are kept."""

    @property
    def root(self) -> Path | None:
        """The library folder; `None` for files held in memory, where nothing is written."""

    @property
    def limits(self) -> Limits: ...

    @property
    def followed_links(self) -> bool:
        """Whether a walk went through a symbolic link: an edit may then show at a path
        other than the one the file is listed under."""

    def read_bytes(self, rel: str) -> bytes | Diagnostic: ...

    def read_text(self, rel: str) -> str | Diagnostic: ...

    def exists(self, rel: str) -> bool: ...

    def is_dir(self, rel: str) -> bool: ...

    def names(self, folder: str) -> list[str]:
        """The names directly in `folder` (`""`: the library folder), sorted; none when it
        cannot be listed."""

    def stays_inside(self, rel: str) -> bool: ...

    def walk(
        self, folder: str, accept: Callable[[str], bool], skip_dirs: frozenset[str] = ...,
    ) -> tuple[list[str], list[Diagnostic]]: ...


def _too_many(folder: str, limit: int) -> Diagnostic:
    return Diagnostic(
        TOO_MANY_FILES,
        f"more than {limit:,} files and folders under {folder}/; the rest are not read "
        "([limits] max_files in tallinn.toml)",
        folder,
    )


def _special(rel: str, mode: int) -> Diagnostic:
    return Diagnostic(UNREADABLE, f"not read: {_kind(mode)}, not a regular file", rel)


def _too_large(rel: str, size: int, limit: int) -> Diagnostic:
    shown = f"{size:,} bytes" if size <= limit else f"more than {limit:,} bytes"
    return Diagnostic(
        TOO_LARGE,
        f"file is {shown}, over the limit of {limit:,} "
        "([limits] max_file_bytes in tallinn.toml)",
        rel,
    )


class MemoryFiles:
    """Files held in memory, by library path (`commands/a.md`), read within `limits`.

    The paths are checked already (`tallinn.library.source.FilesSource` does it): this reader
    only applies the limits and decodes, as `LibraryFiles` does for a folder.
    """

    def __init__(self, files: Mapping[str, bytes], limits: Limits | None = None) -> None:
        self.files = files
        self.limits = limits or Limits()
        self._folders = {rel.rsplit("/", i)[0] for rel in files
                         for i in range(1, rel.count("/") + 1)}

    @property
    def root(self) -> Path | None:
        return None

    @property
    def followed_links(self) -> bool:
        return False

    def read_bytes(self, rel: str) -> bytes | Diagnostic:
        raw = self.files.get(rel)
        if raw is None:
            if rel in self._folders:
                return _special(rel, stat.S_IFDIR)
            return Diagnostic(UNREADABLE, "not read: no such file", rel)
        if len(raw) > self.limits.max_file_bytes:
            return _too_large(rel, len(raw), self.limits.max_file_bytes)
        return raw

    def read_text(self, rel: str) -> str | Diagnostic:
        raw = self.read_bytes(rel)
        return raw if isinstance(raw, Diagnostic) else decode(raw, rel)

    def exists(self, rel: str) -> bool:
        return rel in self.files or rel in self._folders

    def is_dir(self, rel: str) -> bool:
        return rel == "" or rel in self._folders

    def names(self, folder: str) -> list[str]:
        prefix = f"{folder}/" if folder else ""
        return sorted({rel[len(prefix):].partition("/")[0] for rel in self.files
                       if rel.startswith(prefix)})

    def stays_inside(self, rel: str) -> bool:
        return False  # nothing is written into a library held in memory

    def walk(
        self,
        folder: str,
        accept: Callable[[str], bool],
        skip_dirs: frozenset[str] = frozenset(),
    ) -> tuple[list[str], list[Diagnostic]]:
        """As `LibraryFiles.walk`: hidden names are not read, `skip_dirs` are not entered."""
        prefix = f"{folder}/"
        found: list[str] = []
        for rel in self.files:
            if not rel.startswith(prefix):
                continue
            *dirs, name = rel[len(prefix):].split("/")
            if name.startswith(".") or not accept(name):
                continue
            if any(d.startswith(".") or d in skip_dirs for d in dirs):
                continue
            found.append(rel)
        if len(found) > self.limits.max_files:
            return sorted(found)[: self.limits.max_files], [_too_many(folder,
                                                                      self.limits.max_files)]
        return sorted(found), []


_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class LibraryFiles:
    """The files of the library at `root`, read within `limits`."""

    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root: Path = root
        self.limits = limits or Limits()
        self.followed_links = False
        self._real_root = os.path.realpath(root)

    def _inside(self, real: str) -> bool:
        return real == self._real_root or real.startswith(os.path.join(self._real_root, ""))

    def _resolve(self, rel: str) -> str | Diagnostic:
        """The real path of `rel`, when it stays inside the library; else why not."""
        path = os.path.join(self.root, rel)
        try:
            real = os.path.realpath(path, strict=True)
        except OSError as exc:
            if os.path.islink(path):
                if exc.errno == errno.ELOOP:
                    reason = "is a symbolic link loop"
                else:
                    reason = "is a broken symbolic link"
            else:
                reason = f"cannot be read: {exc.strerror or exc}"
            return Diagnostic(UNREADABLE, f"not read: the file {reason}", rel)
        if not self._inside(real):
            return Diagnostic(
                UNREADABLE,
                "not read: a symbolic link that leads outside the library; "
                "only files inside the library folder are read",
                rel,
            )
        return real

    def _open_unlinked(self, rel: str) -> int | None:
        """A handle on the regular file at `rel`, opened folder by folder from the library
        folder without following any symbolic link; None when the path has a link, is not a
        regular file, or anything fails: then `_resolve` decides, and says why.

        Every folder is opened relative to the one before it, so no link can be put in the
        way between a check and the open; and no path is resolved in Python (`realpath`
        costs a `lstat` per part of the path).
        """
        *folders, name = rel.split("/")
        if name in ("", ".", "..") or any(f in ("", ".", "..") for f in folders):
            return None
        try:
            folder = os.open(self._real_root, _FOLDER_FLAGS)
        except OSError:
            return None
        try:
            for part in folders:
                inner = os.open(part, _FOLDER_FLAGS, dir_fd=folder)
                os.close(folder)
                folder = inner
            # Refused before opening: opening a device can have effects of its own.
            if not stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode):
                return None
            return os.open(name, _FILE_FLAGS, dir_fd=folder)
        except OSError:
            return None
        finally:
            os.close(folder)

    def read_bytes(self, rel: str) -> bytes | Diagnostic:
        """The bytes of the regular file at library path `rel`, or why it cannot be read."""
        handle = self._open_unlinked(rel)
        if handle is None:
            real = self._resolve(rel)
            if isinstance(real, Diagnostic):
                return real
            try:
                mode = os.stat(real).st_mode
                if not stat.S_ISREG(mode):
                    # Refused before opening: opening a device can have effects of its own.
                    return self._special(rel, mode)
                handle = os.open(real, _FILE_FLAGS)
            except OSError as exc:
                return Diagnostic(UNREADABLE, f"not read: {exc.strerror or exc}", rel)
        try:
            info = os.fstat(handle)
            if not stat.S_ISREG(info.st_mode):
                return self._special(rel, info.st_mode)
            limit = self.limits.max_file_bytes
            if info.st_size > limit:
                return self._too_large(rel, info.st_size)
            chunks: list[bytes] = []
            size = 0
            while size <= limit:
                chunk = os.read(handle, limit + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            return Diagnostic(UNREADABLE, f"not read: {exc.strerror or exc}", rel)
        finally:
            os.close(handle)
        if size > limit:  # it grew while it was read
            return self._too_large(rel, size)
        return b"".join(chunks)

    def read_text(self, rel: str) -> str | Diagnostic:
        """The text of `rel` (UTF-8, normalised newlines), or why it cannot be read."""
        raw = self.read_bytes(rel)
        return raw if isinstance(raw, Diagnostic) else decode(raw, rel)

    def stays_inside(self, rel: str) -> bool:
        """Whether `rel`, with every link on its way followed, is inside the library: where
        a file may be written."""
        return self._inside(os.path.realpath(os.path.join(self.root, rel)))

    def exists(self, rel: str) -> bool:
        """Whether anything, a dangling link included, is at `rel`."""
        return os.path.lexists(os.path.join(self.root, rel))

    def is_dir(self, rel: str) -> bool:
        """Whether `rel` is a folder (`""`: the library folder itself)."""
        return os.path.isdir(os.path.join(self.root, rel))

    def names(self, folder: str) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(os.path.join(self.root, folder)))
        except OSError:
            return []

    def _special(self, rel: str, mode: int) -> Diagnostic:
        return _special(rel, mode)

    def _too_large(self, rel: str, size: int) -> Diagnostic:
        return _too_large(rel, size, self.limits.max_file_bytes)

    def walk(
        self,
        folder: str,
        accept: Callable[[str], bool],
        skip_dirs: frozenset[str] = frozenset(),
    ) -> tuple[list[str], list[Diagnostic]]:
        """The library paths under `folder` whose file name `accept`s, sorted, and problems.

        Names starting with a dot are not read. A symbolic link to a directory inside the
        library is followed once; one leading outside, broken or looping is a problem. A path
        is listed whatever its type: `read_bytes` says why a FIFO or a device is not read.
        """
        top = os.path.join(self.root, folder)
        if not os.path.isdir(top):
            return [], []
        if os.path.islink(top):  # `commands -> /etc` lists nothing of /etc
            resolved = self._resolve(folder)
            if isinstance(resolved, Diagnostic):
                return [], [resolved]
            self.followed_links = True
        found: list[str] = []
        problems: list[Diagnostic] = []
        seen: set[str] = set()
        pending = [folder]
        linked: list[str] = []  # read after every real folder, so a link is the one reported
        listed = 0
        while pending or linked:
            current = pending.pop() if pending else linked.pop()
            real = os.path.realpath(os.path.join(self.root, current))
            if real in seen:
                problems.append(Diagnostic(
                    UNREADABLE,
                    "not read: a symbolic link to a folder that is read already "
                    "(a link loop, or a second path to it)",
                    current,
                ))
                continue
            seen.add(real)
            try:
                # Listed lazily and counted, so a folder of millions of entries costs no
                # more than the limit before it is refused.
                entries = []
                with os.scandir(os.path.join(self.root, current)) as listing:
                    for entry in listing:
                        listed += 1
                        if listed > self.limits.max_files:
                            problems.append(_too_many(folder, self.limits.max_files))
                            return sorted(found), problems
                        entries.append(entry)
                entries.sort(key=lambda e: e.name)
            except OSError as exc:
                problems.append(Diagnostic(
                    UNREADABLE, f"folder not read: {exc.strerror or exc}", current
                ))
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = f"{current}/{entry.name}"
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    linked_dir = entry.is_symlink() and entry.is_dir()
                except OSError:
                    is_dir = linked_dir = False
                if is_dir or linked_dir:
                    if entry.name in skip_dirs:
                        continue
                    if linked_dir:
                        resolved = self._resolve(rel)
                        if isinstance(resolved, Diagnostic):
                            problems.append(resolved)
                            continue
                        linked.append(rel)
                        self.followed_links = True
                    else:
                        pending.append(rel)
                elif accept(entry.name):
                    found.append(rel)
                    if entry.is_symlink():
                        self.followed_links = True
        return sorted(found), problems
