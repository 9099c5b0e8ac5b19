"""The front-matter cache: a warm load parses no YAML and gives exactly the cold load's result."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import WriteLibrary

from tallinn.library import Library, frontmatter, load_library
from tallinn.library.cache import FILE_NAME, FrontMatterCache

FILES = {
    "tallinn.toml": "[library]\nname = 'cached'\n",
    "commands/review/review.md": """
        ---
        description: Review a file
        arguments:
          - {name: path, description: File, required: true}
          - {name: tone, type: enum, enum: [calm, dry], default: calm}
        examples:
          - {description: Review app.py, args: {path: app.py}}
        colour: blue
        ---
        Review {{path}} in a {{tone}} tone.
        <include component="shared/rules"/>
        """,
    "commands/commit.md": """
        ---
        description: Write a commit message
        ---
        Message for: $ARGUMENTS
        """,
    "components/shared/rules.md": """
        ---
        description: Shared rules
        ---
        Be precise.
        """,
}


def same(a: Library, b: Library) -> None:
    assert a.commands == b.commands
    assert a.components == b.components
    assert a.templates == b.templates
    assert a.diagnostics == b.diagnostics
    assert a.content_hash == b.content_hash


def no_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("YAML was parsed")

    monkeypatch.setattr(frontmatter, "_parse_yaml", fail)


@pytest.fixture
def lib(write_library: WriteLibrary) -> Path:
    return write_library(FILES)


def test_a_warm_load_parses_no_yaml_and_equals_a_cold_load(
    lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    cold = load_library(lib)
    first = load_library(lib, cache_dir=cache)
    assert (cache / FILE_NAME).is_file()
    no_yaml(monkeypatch)
    warm = load_library(lib, cache_dir=cache)
    same(cold, first)
    same(cold, warm)
    # The unknown key keeps its warning at the same place.
    assert any(d.code == "V104" for d in warm.diagnostics)


def test_an_edited_file_is_parsed_again_and_its_old_entry_dropped(
    lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    load_library(lib, cache_dir=cache)
    before = json.loads((cache / FILE_NAME).read_text())["entries"]
    path = lib / "commands" / "commit.md"
    path.write_text(path.read_text().replace("a commit message", "a better message"))
    edited = load_library(lib, cache_dir=cache)
    assert edited.commands["commit"].description == "Write a better message"
    after = json.loads((cache / FILE_NAME).read_text())["entries"]
    assert len(after) == len(before) == 3
    assert len(after.keys() - before.keys()) == 1
    no_yaml(monkeypatch)
    same(edited, load_library(lib, cache_dir=cache))


def test_a_file_with_a_yaml_error_is_reported_the_same_and_never_cached(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    lib = write_library({**FILES, "commands/bad.md": "---\ndescription: a: b\n---\nx\n"})
    cache = tmp_path / "cache"
    cold = load_library(lib)
    assert any(d.code == "V102" and d.path == "commands/bad.md" for d in cold.diagnostics)
    same(cold, load_library(lib, cache_dir=cache))
    same(cold, load_library(lib, cache_dir=cache))
    assert len(json.loads((cache / FILE_NAME).read_text())["entries"]) == 3


def test_front_matter_json_cannot_carry_is_parsed_every_time(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    lib = write_library({
        **FILES,
        "commands/dated.md": "---\ndescription: Dated\nsince: 2025-07-01\n---\nx\n",
        "commands/keyed.md": "---\ndescription: Keyed\nlevels: {1: low}\n---\nx\n",
    })
    cache = tmp_path / "cache"
    for _ in range(2):
        library = load_library(lib, cache_dir=cache)
        assert library.commands["dated"].front_matter["since"] == dt.date(2025, 7, 1)
        assert library.commands["keyed"].front_matter["levels"] == {1: "low"}
    assert len(json.loads((cache / FILE_NAME).read_text())["entries"]) == 3


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"stamp": {"format": 0}, "entries": {}}',
        "{\"stamp\": %s, \"entries\": {\"k\": 1}}",
        "{\"stamp\": %s, \"entries\": []}",
        "{\"stamp\": %s, \"entries\": {\"k\": [{}, {\"a\": [1]}, {}]}}",
    ],
)
def test_a_damaged_or_foreign_cache_is_ignored_and_rewritten(
    lib: Path, tmp_path: Path, content: str
) -> None:
    cache = tmp_path / "cache"
    load_library(lib, cache_dir=cache)
    stamp = json.dumps(json.loads((cache / FILE_NAME).read_text())["stamp"])
    (cache / FILE_NAME).write_text(content.replace("%s", stamp))
    same(load_library(lib), load_library(lib, cache_dir=cache))
    assert len(json.loads((cache / FILE_NAME).read_text())["entries"]) == 3


def test_an_entry_that_does_not_match_its_shape_is_a_miss(lib: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_library(lib, cache_dir=cache)
    stored = json.loads((cache / FILE_NAME).read_text())
    stored["entries"] = {key: [value[0], {"description": ["x"]}, {}]
                         for key, value in stored["entries"].items()}
    (cache / FILE_NAME).write_text(json.dumps(stored))
    opened = FrontMatterCache.open(cache)
    assert all(opened.get(text) is None for text in ("description: Shared rules",))
    same(load_library(lib), load_library(lib, cache_dir=cache))


def test_a_cache_that_cannot_be_written_changes_nothing(lib: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would go")
    same(load_library(lib), load_library(lib, cache_dir=blocked))
    assert blocked.read_text().startswith("a file")
    assert not list(tmp_path.glob(".frontmatter-*"))


def test_the_cache_folder_ignores_itself_in_git(lib: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_library(lib, cache_dir=cache)
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    assert sorted(p.name for p in cache.iterdir()) == [".gitignore", FILE_NAME]


def test_an_unchanged_library_does_not_rewrite_the_cache(lib: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_library(lib, cache_dir=cache)
    stamp = (cache / FILE_NAME).stat().st_mtime_ns
    (cache / FILE_NAME).touch()
    touched = (cache / FILE_NAME).stat().st_mtime_ns
    load_library(lib, cache_dir=cache)
    assert (cache / FILE_NAME).stat().st_mtime_ns == touched >= stamp


def test_counts_hits_and_misses(tmp_path: Path) -> None:
    cache = FrontMatterCache.open(tmp_path)
    assert cache.get("description: x") is None
    cache.put("description: x", ({"description": "x"}, {"description": (2, 1)}, {}))
    assert cache.changed
    assert cache.save()
    again = FrontMatterCache.open(tmp_path)
    assert again.get("description: x") == ({"description": "x"}, {"description": (2, 1)}, {})
    assert (again.hits, again.misses) == (1, 0)
    assert not again.changed


def test_the_cache_file_is_readable_by_whoever_can_read_the_library(
    lib: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    previous = os.umask(0o022)
    try:
        load_library(lib, cache_dir=cache)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((cache / FILE_NAME).stat().st_mode) == 0o644


def test_a_warm_load_does_not_even_import_pyyaml(lib: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    load_library(lib, cache_dir=cache)
    code = (
        "import sys; from tallinn.library import load_library; "
        f"load_library({str(lib)!r}, cache_dir={str(cache)!r}); print('yaml' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "False"
