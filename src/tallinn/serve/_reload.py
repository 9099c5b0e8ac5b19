"""Hot reload: watch the library folder and reload the registry when a library file changes.

The paths a batch names go to `Registry.reload`, so the rebuild reads only those files again.
Only a library in a folder is watched: a `FilesSource` (a stored release) never changes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import anyio
import anyio.abc
from watchfiles import Change, DefaultFilter, awatch

from tallinn.serve._inotify import Inotify
from tallinn.serve._registry import Registry

log = logging.getLogger("tallinn.serve")

# The debounce groups an editor's write-rename-chmod burst into one reload (its writes come
# within a millisecond or two); the step is how often watchfiles' thread looks (only where
# inotify is not available). A reload after one edit takes a few milliseconds at any size
# (benchmarks/bench_serve.py), so this wait is most of the time from an edit to its serving.
DEBOUNCE_MS = 25
STEP_MS = 20
# How long the watchfiles fallback waits for a change before it yields an empty batch.
POLL_READY_MS = 200


class LibraryFilter(DefaultFilter):
    """Only what the loader reads: Markdown, tallinn.toml, and folders (a renamed folder).

    Hidden folders are skipped, as the loader skips them: the state store keeps its SQLite
    file in `<library>/.tallinn/`, and its writes must not trigger reloads.
    """

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root.resolve()

    def __call__(self, change: Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        try:
            parts = Path(path).resolve().relative_to(self.root).parts
        except ValueError:
            return False
        if not parts or any(p.startswith(".") for p in parts):
            return False
        name = parts[-1]
        return name.endswith(".md") or name == "tallinn.toml" or "." not in name


async def watch_library(
    registry: Registry,
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Reload `registry` after each batch of changes until `stop` is set.

    On Linux, inotify read on the event loop (no thread, nothing to do between edits); where
    that cannot be had, watchfiles' polling thread. `task_status.started()` is called once the
    watch is in place: every edit after `await tg.start(watch_library, ...)` is seen.
    """
    root = registry.root
    if root is None:
        log.info("not watching %s: it is not a folder", registry.source.label)
        task_status.started()
        await stop.wait()
        return
    log.info("watching %s for changes", root)
    library_filter = LibraryFilter(root)
    try:
        watcher = Inotify(root, lambda path: library_filter(Change.modified, path))
    except OSError as exc:
        log.debug("inotify unavailable (%s); polling with watchfiles", exc)
    else:
        task_status.started()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on, stop, tg.cancel_scope)
                while True:
                    changes = await watcher.next_batch(DEBOUNCE_MS / 1000)
                    await _reload(registry, root, changes)
        finally:
            watcher.close()
        return
    # watchfiles sets its watch up inside the generator, so the first batch it yields (empty
    # when nothing changed within `rust_timeout`) is the moment the watcher is known to run:
    # the caller is told then, and an edit made after that is never missed.
    watching = False
    async for batch in awatch(
        root,
        watch_filter=library_filter,
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        rust_timeout=POLL_READY_MS,
        yield_on_timeout=True,
    ):
        if not watching:
            watching = True
            task_status.started()
        if batch:
            await _reload(registry, root, {path for _, path in batch})


async def _cancel_on(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


def library_paths(root: Path, changes: Iterable[str]) -> set[str] | None:
    """Given `/lib/commands/a.md`, the library path `commands/a.md`; `None` when a path is
    not below `root` as written (a link on the way): then every file is looked at."""
    top = os.path.abspath(root)
    found: set[str] = set()
    for path in changes:
        rel = os.path.relpath(os.path.abspath(path), top)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep):
            return None
        found.add(Path(rel).as_posix())
    return found


async def _reload(registry: Registry, root: Path, changes: set[str]) -> None:
    log.debug("library changed: %s", sorted(changes))
    result = await registry.reload(library_paths(root, changes))
    if result.problems:
        log.error("kept the last good library; %d problem(s) in the new one", len(result.problems))
