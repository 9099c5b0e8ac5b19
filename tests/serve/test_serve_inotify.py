"""The inotify watcher (Linux) and the watchfiles fallback of the library watcher."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from tallinn.serve import Registry, _reload
from tallinn.serve._inotify import Inotify

pytestmark = pytest.mark.timeout(30)
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")


def _markdown(path: str) -> bool:
    return path.endswith(".md") and "/." not in path


@linux
async def test_a_write_is_one_batch_and_hidden_folders_are_not_watched(tmp_path: Path) -> None:
    """An editor's burst of writes arrives as one batch; a hidden folder's writes never do."""
    (tmp_path / "commands").mkdir()
    (tmp_path / ".tallinn").mkdir()
    watcher = Inotify(tmp_path, _markdown)
    try:
        target = tmp_path / "commands" / "a.md"
        for n in range(5):
            target.write_text(f"version {n}\n", encoding="utf-8")
        with anyio.fail_after(5):
            assert await watcher.next_batch(0.05) == {str(target)}
        (tmp_path / ".tallinn" / "state.md").write_text("x", encoding="utf-8")
        (tmp_path / "commands" / "notes.txt").write_text("x", encoding="utf-8")
        with anyio.move_on_after(0.3) as quiet:
            await watcher.next_batch(0.05)
        assert quiet.cancelled_caught
    finally:
        watcher.close()


@linux
async def test_new_folders_are_watched_too(tmp_path: Path) -> None:
    """A folder created after the start is watched, and so are the files written into it."""
    watcher = Inotify(tmp_path, lambda path: True)
    try:
        (tmp_path / "review").mkdir()
        with anyio.fail_after(5):
            assert str(tmp_path / "review") in await watcher.next_batch(0.05)
        (tmp_path / "review" / "b.md").write_text("new\n", encoding="utf-8")
        with anyio.fail_after(5):
            assert await watcher.next_batch(0.05) == {str(tmp_path / "review" / "b.md")}
        (tmp_path / ".tallinn").mkdir()  # a hidden folder made later is not watched
        with anyio.fail_after(5):
            await watcher.next_batch(0.05)
        assert str(tmp_path / ".tallinn") not in watcher._folders.values()
        assert str(tmp_path / "review") in watcher._folders.values()
    finally:
        watcher.close()
    assert watcher.fd == -1


async def test_without_inotify_watchfiles_polls(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where inotify cannot be had, the watcher falls back to watchfiles and still reloads."""

    def unavailable(*args: object) -> Inotify:
        raise OSError("no inotify here")

    monkeypatch.setattr(_reload, "Inotify", unavailable)
    registry = Registry(library_dir)
    first = registry.load()
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(_reload.watch_library, registry, stop)  # returns once it watches
        (library_dir / "commands/docs/fresh.md").write_text(
            "---\ndescription: Fresh\n---\nFresh.\n", encoding="utf-8"
        )
        with anyio.fail_after(5):
            while registry.current is first:
                await anyio.sleep(0.02)
        stop.set()
    assert registry.current is not None
    assert "fresh" in registry.current.library.commands
