"""The registry serves any library source and reloads a folder incrementally."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import anyio
import pytest
from tests.helpers import count_calls
from tests.serve.serve_helpers import FIXTURE_LIBRARY

from tallinn.library import frontmatter, load_library
from tallinn.library.loader import build_library
from tallinn.library.source import FilesSource
from tallinn.serve import Outcome, Registry, _reload
from tallinn.serve._catalog import build_snapshot

pytestmark = pytest.mark.timeout(30)
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux only")
EDITED = "---\ndescription: Explain code, edited\n---\nExplain it again.\n"


def _aged(root: Path) -> Path:
    """Date every file a minute back, so each has a stat identity to trust."""
    for path in root.rglob("*"):
        os.utime(path, ns=(path.stat().st_mtime_ns - 60 * 10**9,) * 2)
    return root


def _files() -> FilesSource:
    files = {rel: textwrap.dedent(text).lstrip("\n").encode()
             for rel, text in FIXTURE_LIBRARY.items()}
    return FilesSource(files, label="release 1 (ab12cd)")


async def test_a_registry_serves_files_held_in_memory() -> None:
    """A FilesSource loads, serves its commands, and is never watched for changes."""
    registry = Registry(_files())
    snapshot = registry.load()
    assert registry.root is None
    assert "explain-code" in snapshot.library.commands
    assert snapshot.library.label == "release 1 (ab12cd)"
    assert (await registry.reload()).outcome is Outcome.UNCHANGED
    stop = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(_reload.watch_library, registry, stop)
            stop.set()


async def test_a_reload_with_the_changed_path_parses_that_file_alone(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told which file changed, a reload parses that one file and swaps the new library in."""
    registry = Registry(_aged(library_dir))
    first = registry.load()
    (library_dir / "commands/docs/explain-code.md").write_text(EDITED, encoding="utf-8")
    parses = count_calls(monkeypatch, frontmatter, "parse")
    result = await registry.reload({"commands/docs/explain-code.md"})
    assert result.outcome is Outcome.SWAPPED
    assert parses() == 1
    current = registry.snapshot()
    assert current.library.commands["explain-code"].description == "Explain code, edited"
    assert current.library.content_hash == load_library(library_dir).content_hash
    assert current.library.commands["code-review"] is first.library.commands["code-review"]


async def test_a_refused_reload_is_the_base_of_the_next(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a broken edit is refused, fixing it parses only the fixed file again."""
    registry = Registry(_aged(library_dir))
    registry.load()
    path = library_dir / "commands/docs/explain-code.md"
    path.write_text("---\ndescription: [\n---\nx\n", encoding="utf-8")
    assert (await registry.reload({"commands/docs/explain-code.md"})).outcome is Outcome.REFUSED
    path.write_text(EDITED, encoding="utf-8")
    parses = count_calls(monkeypatch, frontmatter, "parse")
    assert (await registry.reload({"commands/docs/explain-code.md"})).outcome is Outcome.SWAPPED
    assert parses() == 1
    assert registry.reload_error == ()


@linux
async def test_the_watcher_names_the_edited_file_to_the_reload(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit seen by inotify reloads the library after parsing only the edited file."""
    registry = Registry(_aged(library_dir))
    first = registry.load()
    parses = count_calls(monkeypatch, frontmatter, "parse")
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(_reload.watch_library, registry, stop)
        (library_dir / "commands/docs/explain-code.md").write_text(EDITED, encoding="utf-8")
        with anyio.fail_after(10):
            while registry.current is first:
                await anyio.sleep(0.02)
        stop.set()
    assert parses() == 1
    assert registry.snapshot().library.commands["explain-code"].description == (
        "Explain code, edited")


def test_library_paths_are_relative_or_none(tmp_path: Path) -> None:
    """Watcher paths become library paths; one outside the folder means "look at all"."""
    root = tmp_path / "lib"
    assert _reload.library_paths(root, [str(root / "commands/a.md"), str(root)]) == {
        "commands/a.md", "."}
    assert _reload.library_paths(root, [str(tmp_path / "elsewhere/a.md")]) is None


def test_a_snapshot_reuses_the_views_of_unchanged_commands(library_dir: Path) -> None:
    """A rebuilt snapshot keeps the views of unchanged records and equals a fresh build."""
    library = build_library(_aged(library_dir))
    before = build_snapshot(library)
    (library_dir / "commands/docs/explain-code.md").write_text(EDITED, encoding="utf-8")
    rebuilt = build_library(library.source, previous=library,
                            changed={"commands/docs/explain-code.md"})
    after = build_snapshot(rebuilt, previous=before)
    fresh = build_snapshot(rebuilt)
    assert (after.prompts, after.resources, after.texts, after.index) == (
        fresh.prompts, fresh.resources, fresh.texts, fresh.index)
    changed = after.prompts[[p["name"] for p in after.prompts].index("explain-code")]
    assert changed["description"] == "Explain code, edited"
    kept = [p["name"] for p in after.prompts].index("code-review")
    assert after.prompts[kept] is before.prompts[kept]
    assert after.index[kept] is before.index[kept]


def test_a_snapshot_after_a_component_edit_makes_only_the_changed_views(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A component edit remakes that component's views alone: no command's depend on it."""
    from tallinn.serve import _catalog

    library = build_library(_aged(library_dir))
    before = build_snapshot(library)
    findings = library_dir / "components/reporting/findings.md"
    findings.write_text(findings.read_text(encoding="utf-8") + "Be brief.\n", encoding="utf-8")
    rebuilt = build_library(library.source, previous=library,
                            changed={"components/reporting/findings.md"})
    assert rebuilt.templates["code-review"] is not library.templates["code-review"]
    commands = count_calls(monkeypatch, _catalog, "_command")
    components = count_calls(monkeypatch, _catalog, "_component")
    after = build_snapshot(rebuilt, previous=before)
    assert (commands(), components()) == (0, 1)
    fresh = build_snapshot(rebuilt)
    assert (after.prompts, after.resources, after.texts, after.index) == (
        fresh.prompts, fresh.resources, fresh.texts, fresh.index)
    assert "Be brief." in after.texts["tallinn://components/reporting/findings"]
