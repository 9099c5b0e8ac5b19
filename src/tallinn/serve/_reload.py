"""Hot reload: watch the library folder and reload the registry when a library file changes."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import anyio.abc
from watchfiles import Change, DefaultFilter, awatch

from tallinn.serve._registry import Registry

log = logging.getLogger("tallinn.serve")

# Small steps so an edit is served well within 300 ms; the debounce groups an editor's
# write-rename-chmod burst into one reload.
DEBOUNCE_MS = 50
STEP_MS = 20


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
    """Reload `registry` after each batch of changes until `stop` is set."""
    log.info("watching %s for changes", registry.root)
    task_status.started()
    async for changes in awatch(
        registry.root,
        watch_filter=LibraryFilter(registry.root),
        debounce=DEBOUNCE_MS,
        step=STEP_MS,
        stop_event=stop,
        rust_timeout=500,
    ):
        log.debug("library changed: %s", sorted(p for _, p in changes))
        result = await registry.reload()
        if result.problems:
            log.error(
                "kept the last good library; %d problem(s) in the new one", len(result.problems)
            )
