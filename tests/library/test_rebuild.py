"""Incremental rebuilds: an edit reads, parses and composes only what it touches, and the
result is always the library a full build of the same files gives."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import count_calls, write_files

from tallinn.library import Library, frontmatter
from tallinn.library.compose import Composer
from tallinn.library.loader import build_library
from tallinn.library.source import FilesSource, FolderSource

INCLUDE = re.compile(r'<include component="([^"]+)"/>')
NAMES = ("a", "b", "c", "d")


def component(body: str, *, broken: bool = False, arguments: str = "") -> str:
    front = "description: [" if broken else "description: A part"
    return f"---\n{front}\n{arguments}---\n{body}\n"


def command(body: str, *, arguments: str = "") -> str:
    return f"---\ndescription: A command\n{arguments}---\n{body}\n"


WHO = "arguments:\n  - name: who\n    required: true\n"
BODIES = st.sampled_from([
    "Plain text.",
    "Hello {{who}}.",
    "Odd {{ brace",
    "Missing <include component=\"parts/zz\"/> part.",
    *(f'Use <include component="parts/{n}"/> here.' for n in NAMES),
    *(f'<include component="parts/{n}"/>\nand <include component="parts/{m}"/>'
      for n in NAMES for m in NAMES if n < m),
])
CONFIGS = st.sampled_from([
    None,
    '[library]\nname = "lib"\n',
    "[limits]\nmax_include_depth = 2\n",
    "[limits\n",
])


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, str | None]:
    """One edit: (library path, new text), or (path, None) to remove the file."""
    kind = draw(st.sampled_from(["component", "command", "command", "config", "remove"]))
    if kind == "config":
        return "tallinn.toml", draw(CONFIGS)
    if kind == "remove":
        name = draw(st.sampled_from(NAMES))
        return draw(st.sampled_from([f"components/parts/{name}.md",
                                     f"commands/x/cmd-{name}.md"])), None
    name = draw(st.sampled_from(NAMES))
    body = draw(BODIES)
    arguments = draw(st.sampled_from(["", WHO]))
    if kind == "component":
        return f"components/parts/{name}.md", component(
            body, broken=draw(st.booleans()) and draw(st.booleans()), arguments=arguments)
    return f"commands/x/cmd-{name}.md", command(body, arguments=arguments)


def start_files() -> dict[str, str]:
    files = {f"components/parts/{n}.md": component(f"Part {n}.") for n in NAMES}
    files["components/parts/b.md"] = component('B then <include component="parts/c"/>')
    files.update({f"commands/x/cmd-{n}.md": command(f'Do <include component="parts/{n}"/>.')
                  for n in NAMES})
    return files


def same(incremental: Library, full: Library) -> None:
    assert incremental.content_hash == full.content_hash
    assert incremental.diagnostics == full.diagnostics
    assert list(incremental.commands) == list(full.commands)
    assert incremental.commands == full.commands
    assert incremental.components == full.components
    assert {n: t.text for n, t in incremental.templates.items()} == {
        n: t.text for n, t in full.templates.items()}
    assert {n: t.includes for n, t in incremental.templates.items()} == {
        n: t.includes for n, t in full.templates.items()}
    assert incremental.config == full.config


def in_memory(files: dict[str, str]) -> FilesSource:
    return FilesSource({rel: text.encode() for rel, text in files.items()})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(edits(), min_size=1, max_size=8), st.booleans())
def test_any_sequence_of_edits_rebuilds_to_the_full_build(
    sequence: list[tuple[str, str | None]], hinted: bool
) -> None:
    """After each random edit, the incremental rebuild equals a full build of the same files."""
    files = start_files()
    library = build_library(in_memory(files))
    for rel, text in sequence:
        if text is None:
            files.pop(rel, None)
        else:
            files[rel] = text
        source = in_memory(files)
        library = build_library(source, previous=library, changed={rel} if hinted else None)
        same(library, build_library(source))


def age(root: Path) -> None:
    """Date every file of `root` a minute back, as a library edited long after it was written."""
    for path in root.rglob("*"):
        os.utime(path, ns=(path.stat().st_mtime_ns - 60 * 10**9,) * 2)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(edits(), min_size=1, max_size=5))
def test_edits_in_a_folder_rebuild_to_the_full_build(
    tmp_path_factory: pytest.TempPathFactory, sequence: list[tuple[str, str | None]]
) -> None:
    """In a folder, with the paths a watcher would name, each rebuild equals a full build."""
    root = write_files(tmp_path_factory.mktemp("lib"), start_files())
    age(root)
    source = FolderSource(root)
    library = build_library(source)
    for rel, text in sequence:
        path = root / rel
        if text is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(text, encoding="utf-8")
        library = build_library(source, previous=library, changed={rel})
        same(library, build_library(source))


def test_a_rebuild_without_changes_is_the_previous_library(tmp_path: Path) -> None:
    """Nothing changed: the same library object comes back, and nothing is parsed."""
    root = write_files(tmp_path / "lib", start_files())
    age(root)
    library = build_library(FolderSource(root))
    assert build_library(library.source, previous=library) is library
    assert build_library(library.source, previous=library, changed=["tests/x.yaml"]) is library


def test_a_touched_file_is_read_but_not_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file saved again with the same bytes is read, found unchanged, and not parsed."""
    root = write_files(tmp_path / "lib", start_files())
    age(root)
    library = build_library(FolderSource(root))
    parses = count_calls(monkeypatch, frontmatter, "parse")
    os.utime(root / "components/parts/a.md")
    rebuilt = build_library(library.source, previous=library,
                            changed={"components/parts/a.md"})
    assert parses() == 0
    assert rebuilt.content_hash == library.content_hash


def test_a_new_file_or_folder_named_by_a_watcher_builds_in_full(tmp_path: Path) -> None:
    """A prompt file the last build did not know is found, whatever the watcher said."""
    root = write_files(tmp_path / "lib", start_files())
    age(root)
    library = build_library(FolderSource(root))
    (root / "commands/y").mkdir()
    (root / "commands/y/new.md").write_text(command("New."), encoding="utf-8")
    rebuilt = build_library(library.source, previous=library, changed={"commands/y"})
    assert "new" in rebuilt.commands
    same(rebuilt, build_library(FolderSource(root)))


def test_an_edit_through_a_link_is_seen(tmp_path: Path) -> None:
    """A command listed through a symbolic link is read again when its target is edited."""
    root = write_files(tmp_path / "lib", start_files())
    (root / "commands/x/linked.md").symlink_to(root / "commands/x/cmd-a.md")
    age(root)
    library = build_library(FolderSource(root))
    (root / "commands/x/cmd-a.md").write_text(command("Edited."), encoding="utf-8")
    rebuilt = build_library(library.source, previous=library, changed={"commands/x/cmd-a.md"})
    assert rebuilt.templates["linked"].text == "Edited.\n"


def synthetic(commands: int) -> dict[str, bytes]:
    """A library shaped as benchmarks/synth.py makes them, in memory."""
    import random

    rng = random.Random(7)
    parts = commands // 10
    files: dict[str, bytes] = {}
    for index in range(parts):
        nested = (f'<include component="g/part-{index + 1}"/>\n'
                  if index + 1 < parts and index % 3 == 0 else "")
        files[f"components/g/part-{index}.md"] = (
            f"---\ndescription: Part {index}\n---\nShared {index}.\n{nested}").encode()
    for index in range(commands):
        includes = "".join(f'<include component="g/part-{c}"/>\n'
                           for c in rng.sample(range(parts), 2))
        files[f"commands/c{index % 10}/cmd-{index:05d}.md"] = (
            f"---\ndescription: Command {index}\narguments:\n  - name: target\n"
            f"    required: true\n---\nWork on {{{{target}}}}.\n{includes}").encode()
    return files


def includers(files: dict[str, bytes], edited: str) -> set[str]:
    """The command paths whose text includes component `edited`, directly or not, found from
    the files' text alone."""
    included = {rel: set(INCLUDE.findall(raw.decode())) for rel, raw in files.items()}
    names = {edited}
    grew = True
    while grew:
        more = {rel.removeprefix("components/").removesuffix(".md")
                for rel, found in included.items()
                if rel.startswith("components/") and found & names}
        grew = not more <= names
        names |= more
    return {rel for rel, found in included.items()
            if rel.startswith("commands/") and found & names}


def test_one_edit_in_ten_thousand_commands_parses_one_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Editing one component parses that file alone and composes exactly its includers."""
    files = synthetic(10_000)
    library = build_library(FilesSource(files))
    assert len(library.commands) == 10_000
    edited = "g/part-42"
    files[f"components/{edited}.md"] = b"---\ndescription: Part 42\n---\nEdited 42.\n"
    expected = includers(files, edited)
    assert 0 < len(expected) < 100
    parses = count_calls(monkeypatch, frontmatter, "parse")
    composes = count_calls(monkeypatch, Composer, "compose")
    rebuilt = build_library(FilesSource(files), previous=library)
    assert parses() == 1
    assert composes() == len(expected)
    with_edit = {c.path for c in rebuilt.commands.values()
                 if "Edited 42." in rebuilt.templates[c.name].text}
    assert with_edit == expected
    assert rebuilt.content_hash != library.content_hash
