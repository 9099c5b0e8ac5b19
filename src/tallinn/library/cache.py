"""A cache of parsed front matter, so a library of a thousand files loads without re-parsing
YAML it has parsed before.

Parsing front matter is most of the time a load takes (about 0.15 s of 0.25 s for 1,000
commands, even with libyaml); reading the cache back is a single `json.load`. Entries are
keyed by a hash of the front matter's own text, so an entry can never be stale: an edited
file has a new key, and a file that is edited back finds its old entry again. A cache file
written by another version of Tallinn or PyYAML is ignored.

The cache is one JSON file, written atomically (a temporary file, then a rename) and only
when a load parsed something new; it keeps the entries of the last load alone, so it never
outgrows the library. It holds plain data only: reading it runs no code, and what it returns
goes through the same validation as freshly parsed front matter. Front matter that JSON
cannot carry exactly (dates, non-string keys, binary) is parsed every time.

A cache that cannot be read or written is not an error: the library loads as without one.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tallinn import __version__

FILE_NAME = "frontmatter.json"
_FORMAT = 3  # bump whenever what an entry holds, or how it is computed, changes
_GITIGNORE = "# Written by Tallinn: a cache, safe to delete.\n*\n"

# (data, key marks, value marks), as `frontmatter.Parsed` holds them.
Entry = tuple[dict[str, Any], dict[str, tuple[int, int]], dict[str, tuple[int, int]]]


@cache
def _stamp() -> dict[str, Any]:
    """What the entries depend on; fixed for the life of the process, so read once. PyYAML's
    version comes from its metadata, not by importing it: a load that finds everything here
    never imports PyYAML at all."""
    try:
        pyyaml = version("PyYAML")
    except PackageNotFoundError:  # pragma: no cover - PyYAML is a dependency
        pyyaml = ""
    return {"format": _FORMAT, "tallinn": __version__, "pyyaml": pyyaml}


def _key(yaml_text: str) -> str:
    return hashlib.blake2b(yaml_text.encode("utf-8"), digest_size=20).hexdigest()


def _plain(value: Any) -> bool:
    """True when JSON gives back exactly `value`: the types YAML and JSON share, str keys."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class FrontMatterCache:
    """Parsed front matter by the hash of its text, kept in `<folder>/frontmatter.json`.

    `load_library(root, cache_dir=folder)` opens one for the load and saves it at the end;
    by hand:

    >>> cache = FrontMatterCache.open(Path("lib/.tallinn/cache"))
    >>> frontmatter.parse(text, "commands/x.md", cache)   # looks up, or parses and records
    >>> cache.save()                                       # writes only if something changed
    """

    def __init__(self, folder: Path, entries: Mapping[str, Any] | None = None) -> None:
        self.folder = folder
        self._stored: Mapping[str, Any] = entries or {}
        self._used: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0

    @classmethod
    def open(cls, folder: Path) -> FrontMatterCache:
        """The cache in `folder`, empty when the file is missing, unreadable or from elsewhere."""
        try:
            with (folder / FILE_NAME).open("rb") as file:
                stored = json.load(file)
        except (OSError, ValueError):
            return cls(folder)
        if not isinstance(stored, dict) or stored.get("stamp") != _stamp():
            return cls(folder)
        entries = stored.get("entries")
        return cls(folder, entries if isinstance(entries, dict) else None)

    def get(self, yaml_text: str) -> Entry | None:
        key = _key(yaml_text)
        raw = self._stored.get(key)
        entry = _entry(raw)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._used[key] = raw
        return entry

    def put(self, yaml_text: str, entry: Entry, *, plain: bool = False) -> None:
        """Record an entry, if JSON can carry it; `plain=True` says the caller knows it can."""
        data, key_marks, value_marks = entry
        if plain or _plain(data):
            self._used[_key(yaml_text)] = [data, key_marks, value_marks]

    def take_used(self) -> tuple[list[tuple[str, Any]], int, int]:
        """What this cache recorded since it was made or last asked (entries used, hits,
        misses), forgotten here: a worker process of a load sends it to `absorb`."""
        used = (list(self._used.items()), self.hits, self.misses)
        self._used = {}
        self.hits = self.misses = 0
        return used

    def absorb(self, used: list[tuple[str, Any]], hits: int, misses: int) -> None:
        """Record what `take_used` gave in another process, as if recorded here."""
        self._used.update(used)
        self.hits += hits
        self.misses += misses

    @property
    def changed(self) -> bool:
        """Whether the file on disk differs from what this load used: new or dropped entries."""
        return self._used.keys() != self._stored.keys()

    def saved(self) -> None:
        """Say that another process wrote this cache's entries (its `save` returned True)."""
        self._stored = dict(self._used)

    def save(self) -> bool:
        """Write the entries this load used, if they changed. False when it could not write."""
        if not self.changed:
            return True
        document = {"stamp": _stamp(), "entries": self._used}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text(_GITIGNORE, encoding="utf-8")
            # A private name, then an atomic rename: a concurrent load reads the old file or
            # the new one, never half of one. Created with the umask's permissions (not
            # mkstemp's 0600), so everyone who can read the library can use its cache.
            temporary = self.folder / f".frontmatter-{os.getpid()}-{secrets.token_hex(4)}.tmp"
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            try:
                # One `dumps`, not `dump`: `dump` encodes piece by piece in pure Python, two to
                # four times slower than the C encoder `dumps` uses (1 s against 0.3 s for the
                # 7.7 MB cache of 11,000 files).
                text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
                with os.fdopen(handle, "w", encoding="utf-8") as file:
                    file.write(text)
                os.replace(temporary, self.folder / FILE_NAME)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        except OSError:
            return False
        self._stored = dict(self._used)
        return True


def _entry(raw: Any) -> Entry | None:
    """An entry as stored, checked: a file edited by hand or cut short is only a miss."""
    if not (isinstance(raw, list) and len(raw) == 3):
        return None
    data, key_marks, value_marks = raw
    if not (isinstance(data, dict) and isinstance(key_marks, dict)
            and isinstance(value_marks, dict)):
        return None
    try:
        return (
            data,
            {str(k): (int(v[0]), int(v[1])) for k, v in key_marks.items()},
            {str(k): (int(v[0]), int(v[1])) for k, v in value_marks.items()},
        )
    except (TypeError, ValueError, IndexError):
        return None
