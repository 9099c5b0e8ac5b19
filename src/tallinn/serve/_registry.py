"""The served library: one reference, swapped atomically when a reload succeeds.

Every handler reads `registry.current` once and works on that `Snapshot` only, so a request
never sees half of one library and half of the next. A reload whose library has any
error-severity diagnostic is refused: the last good library keeps serving, and the refusal
is kept in `reload_error` until a good load succeeds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio

from tallinn.library import Library, LibraryError
from tallinn.library.loader import build_library
from tallinn.library.source import LibrarySource, as_source
from tallinn.serve._catalog import Snapshot, build_snapshot
from tallinn.serve._metrics import Metrics

log = logging.getLogger("tallinn.serve")

Listener = Callable[[Snapshot | None, Snapshot], Awaitable[None]]


class Outcome(StrEnum):
    SWAPPED = "swapped"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class ReloadResult:
    outcome: Outcome
    problems: tuple[str, ...] = ()


class Registry:
    """Holds the current `Snapshot` of the library `source` (a `LibrarySource`, or a folder).

    >>> registry = Registry("my-library")
    >>> registry.load()            # raises LibraryError when the folder is unusable
    >>> registry.current.library.commands["code-review"]

    A reload builds on the library built last, served or refused: only the files that changed
    are read again (see `tallinn.library.loader.build_library`). A `loader` replaces that
    build: it is given the folder (or the source) and loads the whole library each time.
    """

    def __init__(
        self,
        source: LibrarySource | str | os.PathLike[str],
        *,
        metrics: Metrics | None = None,
        loader: Callable[[Any], Library] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.source = as_source(source)
        self.metrics = metrics or Metrics()
        self._loader = loader
        self._cache_dir = cache_dir
        self._built: Library | None = None
        self._current: Snapshot | None = None
        self._listeners: list[Listener] = []
        self._lock = anyio.Lock()
        self.reload_error: tuple[str, ...] = ()

    @property
    def root(self) -> Path | None:
        """The library folder; `None` for a library held in memory."""
        return self.source.root

    @property
    def current(self) -> Snapshot | None:
        return self._current

    def snapshot(self) -> Snapshot:
        """The current snapshot; a server is only built after `load()`, so one exists."""
        current = self._current
        if current is None:
            raise RuntimeError("no library loaded yet: call Registry.load() first")
        return current

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(previous, current)` after every swap (e.g. to send list_changed)."""
        self._listeners.append(listener)

    def load(self) -> Snapshot:
        """Load the library for the first time. Files with errors are left out, not fatal."""
        library = self._build(None)
        for diagnostic in library.errors:
            log.warning("left out of the served library: %s", diagnostic)
        snapshot = build_snapshot(library)
        self._install(snapshot)
        return snapshot

    def _install(self, snapshot: Snapshot) -> None:
        self._current = snapshot  # the one swap: a single reference assignment
        self.metrics.library_loaded(snapshot.library)

    def _build(self, changed: Iterable[str] | None,
               source: LibrarySource | None = None) -> Library:
        source = source or self.source
        if self._loader is not None:
            return self._loader(source.root if source.root is not None else source)
        library = build_library(source, cache_dir=self._cache_dir, previous=self._built,
                                changed=changed)
        self._built = library
        return library

    def _attempt(self, changed: Iterable[str] | None,
                 source: LibrarySource | None = None) -> Snapshot | tuple[str, ...]:
        """Load and build off the event loop; a list of problems when the load is refused."""
        try:
            library = self._build(changed, source)
        except LibraryError as exc:
            log.error("reload refused: %s", exc)
            return ("library folder is not usable (see the server log)",)
        except Exception:
            log.exception("reload failed")
            return ("library could not be loaded (see the server log)",)
        if library.errors:
            for diagnostic in library.errors:
                log.error("reload refused: %s", diagnostic)
            return tuple(str(d) for d in library.errors)
        current = self._current
        if current is not None and current.library.content_hash == library.content_hash:
            return current
        return build_snapshot(library, previous=current)

    async def reload(self, changed: Iterable[str] | None = None, *,
                     source: LibrarySource | None = None) -> ReloadResult:
        """Load the library again; swap it in only if it has no errors and changed.

        `changed` names the library paths a watcher saw change (`commands/a.md`); without
        it, every file is looked at. A `source` replaces the one served (another stored
        release) once its library is swapped in; a refused one is forgotten.
        """
        async with self._lock:
            result = await anyio.to_thread.run_sync(self._attempt, changed, source)
            if isinstance(result, tuple):
                self.reload_error = result
                self.metrics.reload_failures.inc()
                return ReloadResult(Outcome.REFUSED, result)
            self.reload_error = ()
            if source is not None:
                self.source = source
            if result is self._current:
                return ReloadResult(Outcome.UNCHANGED)
            previous = self._current
            self._install(result)
            self.metrics.reloads.inc()
            library = result.library
            log.info(
                "library reloaded: %d commands, %d components (%s)",
                len(library.commands),
                len(library.components),
                library.content_hash[:12],
            )
        for listener in list(self._listeners):
            try:
                await listener(previous, result)
            except Exception:
                log.exception("reload listener failed")
        return ReloadResult(Outcome.SWAPPED)
