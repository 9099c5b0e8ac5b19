"""Hot reload: watch the library folder and reload the registry when a library file changes."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import anyio.abc
from watchfiles import Change, DefaultFilter, awatch

from tallinn.serve._inotify import Inotify
from tallinn.serve._registry import Registry

log = logging.getLogger("tallinn.serve")

# The debounce groups an editor's write-rename-chmod burst into one reload; the step is how
# often watchfiles' thread looks (only where inotify is not available).
DEBOUNCE_MS = 50
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
    log.info("watching %s for changes", registry.root)
    library_filter = LibraryFilter(registry.root)
    try:
        watcher = Inotify(registry.root, lambda path: library_filter(Change.modified, path))
    except OSError as exc:
        log.debug("inotify unavailable (%s); polling with watchfiles", exc)
    else:
        task_status.started()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_cancel_on, stop, tg.cancel_scope)
                while True:
                    changes = await watcher.next_batch(DEBOUNCE_MS / 1000)
                    await _reload(registry, changes)
        finally:
            watcher.close()
        return
    # watchfiles sets its watch up inside the generator, so the first batch it yields (empty
    # when nothing changed within `rust_timeout`) is the moment the watcher is known to run:
    # the caller is told then, and an edit made after that is never missed.
    watching = False
    async for batch in awatch(
        registry.root,
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
            await _reload(registry, {path for _, path in batch})


async def _cancel_on(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()


async def _reload(registry: Registry, changes: set[str]) -> None:
    log.debug("library changed: %s", sorted(changes))
    result = await registry.reload()
    if result.problems:
        log.error("kept the last good library; %d problem(s) in the new one", len(result.problems))
