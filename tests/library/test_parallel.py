"""A load in worker processes gives the library a serial load gives: records, findings in
their order, content hash and front-matter cache; the parent parses only its own share."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tallinn.gates.xml import check
from tallinn.library import Library, load_library, loader, parallel
from tallinn.library.cache import FILE_NAME

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "cases"
CORPUS = ROOT.parent / "shared" / "corpora" / "tallinn-2025-07"
SEPARATOR = re.compile(r"^<!-- case(?:: [^\n]*)? -->\n", re.MULTILINE)
sys.path.insert(0, str(ROOT / "benchmarks"))

from synth import generate  # noqa: E402

GOOD = "---\ndescription: Say hello\n---\nHello.\n"
COMMAND = """---
description: Review a file
argument-hint: "<path> [focus]"
arguments:
  - {name: path, description: File, required: true, pattern: '[a-z./]+'}
  - {name: focus, type: enum, enum: [speed, safety], default: speed}
  - {name: depth, type: integer, default: 3}
allowed-tools: Read, Bash(git log:*, git diff:*)
tags: [review, shared]
critical: true
model: sonnet
examples:
  - {description: Review app.py, args: {path: app.py}}
  - {description: Wrong, args: {focus: nothing}}
---
Review {{path}} for {{focus}}, {{depth}} deep.
<include component="shared/rules"/>
"""


def hostile(root: Path) -> Path:
    """A library with every kind of file a load must survive, and good files beside them."""
    files = {
        "tallinn.toml": "[library]\nname = 'hostile'\n[limits]\nmax_file_bytes = 2000\n",
        "components/shared/rules.md": "---\ndescription: Rules\n---\n<rules>Be precise.</rules>\n",
        "components/shared/args.md": ("---\ndescription: With an argument\narguments:\n"
                                      "  - {name: who, required: true}\n---\nHi {{who}}\n"),
        "components/shared/broken.md": "---\ndescription: [unclosed\n---\nx\n",
        "components/loop/a.md": '---\ndescription: A\n---\n<include component="loop/b"/>\n',
        "components/loop/b.md": '---\ndescription: B\n---\n<include component="loop/a"/>\n',
        "commands/a/ok.md": GOOD,
        "commands/a/review.md": COMMAND,
        "commands/a/ctrl.md": "---\ndescription: a\x01b\n---\nx\n",
        "commands/a/tab.md": "---\ndescription: x\n\targs: y\n---\nx\n",
        "commands/a/colon.md": "---\ndescription: a: b\n---\nx\n",
        "commands/a/unknown.md": "---\ndescription: x\ncolour: red\n---\n<b>x\n",
        "commands/a/no-front.md": "Just text <include component=\"shared/nothing\"/>\n",
        "commands/a/unclosed.md": "---\ndescription: x\n",
        "commands/a/big.md": GOOD + "x" * 3000,
        "commands/a/pattern.md": ("---\ndescription: x\narguments:\n"
                                  "  - {name: p, pattern: '(a'}\n---\n{{p}}\n"),
        "commands/a/loop.md": '---\ndescription: x\n---\n<include component="loop/a"/>\n',
        "commands/a/Upper.md": GOOD,
        "commands/b/ok.md": GOOD,
        "commands/b/nodesc.md": "---\ntags: [a]\n---\nx\n",
        "commands/b/uses.md": ('---\ndescription: x\n---\n<include component="shared/broken"/>\n'
                               '<include component="shared/args" who="me"/>{{nobody}}\n'),
        "commands/b/laughs.md": (
            "---\ndescription: d\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
            + "\n".join(f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 10)
                        + "]" for i in range(8)) + "\n---\nx\n"),
        "commands/b/date.md": "---\ndescription: x\nwhen: 2001-02-03\nbad: 2001-13-45\n---\nx\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "commands/b/latin1.md").write_bytes(b"---\ndescription: caf\xe9\n---\nx\n")
    os.mkfifo(root / "commands/b/pipe.md")
    (root / "commands/b/zero.md").symlink_to("/dev/zero")
    (root / "commands/b/outside.md").symlink_to("/etc/hostname")
    (root / "commands/b/dangling.md").symlink_to(root / "nowhere.md")
    (root / "commands/linked").symlink_to(root / "commands/a")
    return root


def loaded(root: Path, workers: int, cache: bool = True) -> Library:
    return load_library(root, workers=workers,
                        cache_dir=root / ".tallinn" / "cache" if cache else None)


def same_library(serial: Library, in_workers: Library) -> None:
    assert in_workers.diagnostics == serial.diagnostics
    assert [str(d) for d in in_workers.diagnostics] == [str(d) for d in serial.diagnostics]
    assert in_workers.commands == serial.commands
    assert list(in_workers.commands) == list(serial.commands)
    assert in_workers.components == serial.components
    assert in_workers.templates == serial.templates
    assert in_workers.content_hash == serial.content_hash
    for name, command in serial.commands.items():
        for mine, theirs in zip(in_workers.commands[name].arguments, command.arguments,
                                strict=True):
            assert (mine.compiled_pattern is None) == (theirs.compiled_pattern is None)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Parallel loads for any library size; counts what the parent parses and decodes."""
    monkeypatch.setattr(parallel, "PARALLEL_FILES", 1)
    counts = {"parsed here": 0, "decoded": 0, "shared out": 0}
    parse, decode, fork_map = loader._parse_file, parallel._decode, parallel.fork_map
    parent = os.getpid()

    def parse_file(*args: Any) -> Any:
        if os.getpid() == parent:
            counts["parsed here"] += 1
        return parse(*args)

    def decode_one(encoded: Any, known: Any) -> Any:
        counts["decoded"] += 1
        return decode(encoded, known)

    def shared_out(*args: Any) -> Any:
        done = fork_map(*args)
        counts["shared out"] += done is not None
        return done

    monkeypatch.setattr(loader, "_parse_file", parse_file)
    monkeypatch.setattr(parallel, "_decode", decode_one)
    monkeypatch.setattr(parallel, "fork_map", shared_out)
    return counts


def prompt_files(root: Path) -> int:
    reader = loader.FolderSource(root).files()
    return sum(len(reader.walk(folder, loader.is_prompt_file)[0])
               for folder in ("commands", "components"))


def compare(root: Path, counted: dict[str, int]) -> tuple[Library, Library]:
    files = prompt_files(root)
    serial = loaded(root, 1)
    serial_cache = (root / ".tallinn/cache" / FILE_NAME).read_bytes()
    (root / ".tallinn/cache" / FILE_NAME).unlink()
    counted["parsed here"] = 0
    in_workers = loaded(root, 2)
    # This process parses the first half; the other half comes back from the worker.
    assert counted == {"parsed here": (files + 1) // 2, "decoded": files // 2, "shared out": 1}
    same_library(serial, in_workers)
    assert (root / ".tallinn/cache" / FILE_NAME).read_bytes() == serial_cache
    assert check(in_workers, workers=2).findings == check(serial).findings
    assert counted["shared out"] == 2  # the XML check too
    return serial, in_workers


def test_hostile_files_load_alike_in_workers(tmp_path: Path, counted: dict[str, int]) -> None:
    """Every hostile file gives the same finding at the same place in worker processes."""
    root = hostile(tmp_path / "lib")
    serial, _ = compare(root, counted)
    codes = {d.code for d in serial.diagnostics}
    assert {"V100", "V101", "V102", "V104", "V105", "V110", "V111", "V112", "V113",
            "V115", "V201", "V204"} <= codes
    assert "review" in serial.commands


def test_a_synthetic_library_loads_alike_in_workers(tmp_path: Path,
                                                    counted: dict[str, int]) -> None:
    """A synthetic library of 300 commands, and a second load from its cache, load alike."""
    root = generate(tmp_path / "lib", 300)
    serial, _ = compare(root, counted)
    assert len(serial.commands) == 300
    again = loaded(root, 2)  # every entry from the cache, in the workers
    same_library(serial, again)


def test_the_rule_cases_load_alike_in_workers(tmp_path: Path, counted: dict[str, int]) -> None:
    """Each case of the rule case files, as a command of its own, is found alike."""
    root = tmp_path / "lib"
    (root / "commands/cases").mkdir(parents=True)
    for path in sorted(CASES.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        starts = [m.end() for m in SEPARATOR.finditer(text)] or [0]
        for index, start in enumerate(starts):
            end = SEPARATOR.search(text, start)
            chunk = text[start:end.start() if end else len(text)]
            (root / f"commands/cases/{path.stem.lower()}-{index}.md").write_text(
                chunk, encoding="utf-8")
    serial, _ = compare(root, counted)
    assert check(serial).findings


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_the_2025_corpus_read_as_native_loads_alike(tmp_path: Path,
                                                    counted: dict[str, int]) -> None:
    """The 2025 corpus's files, read as a native library, are found alike in workers."""
    root = tmp_path / "lib"
    for folder in ("commands", "components"):
        for path in (CORPUS / folder).rglob("*"):
            if path.is_file():
                target = root / path.relative_to(CORPUS)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    (root / "tallinn.toml").write_text("[library]\nname = 'corpus'\n", encoding="utf-8")
    serial, _ = compare(root, counted)
    assert serial.diagnostics


def test_a_small_library_loads_in_this_process(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Below `PARALLEL_FILES` files, or with one worker, no worker process is started."""
    root = generate(tmp_path / "lib", 20)
    assert not parallel.worth_it(prompt_files(root), 8)
    assert not parallel.worth_it(parallel.PARALLEL_FILES, 1)

    def refuse(*args: Any) -> None:
        raise AssertionError("no worker for a small library")

    monkeypatch.setattr(parallel, "parse_files", refuse)
    assert len(load_library(root, workers=8).commands) == 20


def test_a_process_with_threads_loads_in_this_process(tmp_path: Path,
                                                      counted: dict[str, int]) -> None:
    """While another thread runs (a server), the load forks nothing and parses here."""
    root = generate(tmp_path / "lib", 20)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, args=(30,))
    thread.start()
    try:
        assert not parallel.can_fork()
        library = load_library(root, workers=2)
    finally:
        stop.set()
        thread.join(30)
    assert counted == {"parsed here": prompt_files(root), "decoded": 0, "shared out": 0}
    assert len(library.commands) == 20


def test_a_worker_that_dies_leaves_the_load_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed mid-load (out of memory, say) costs nothing: the parent parses all."""
    monkeypatch.setattr(parallel, "PARALLEL_FILES", 1)
    root = generate(tmp_path / "lib", 30)
    parse = loader._parse_file
    parent = os.getpid()

    def dies(folder: str, rel: str, *args: Any) -> Any:
        if os.getpid() != parent and rel.endswith("cmd-00007.md"):
            os._exit(9)
        return parse(folder, rel, *args)

    monkeypatch.setattr(loader, "_parse_file", dies)
    library = load_library(root, workers=2, cache_dir=root / ".cache")
    serial = load_library(root, workers=1)
    same_library(serial, library)
    assert (root / ".cache" / FILE_NAME).is_file()


def test_the_hostile_tests_pass_with_every_load_in_workers() -> None:
    """The loader's, limits' and files' tests, every load in workers, pass as they do serially."""
    modules = [f"tests/library/test_{name}.py" for name in
               ("loader", "limits", "files", "cache", "yamlsafe", "frontmatter", "source")]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *modules],
        cwd=ROOT, env={**os.environ, "TALLINN_TEST_PARALLEL": "1"},
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def test_a_cache_writer_that_dies_leaves_the_writing_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The front-matter cache, written by a forked process while this one composes, is
    written here when that process dies; a second load then parses nothing."""
    from tallinn.library.cache import FrontMatterCache

    monkeypatch.setattr(parallel, "PARALLEL_FILES", 1)
    root = generate(tmp_path / "lib", 30)
    save = FrontMatterCache.save
    parent = os.getpid()
    calls: list[int] = []

    def dies(self: FrontMatterCache) -> bool:
        calls.append(os.getpid())
        if os.getpid() != parent:
            (tmp_path / "writer-died").touch()
            os._exit(9)
        return save(self)

    monkeypatch.setattr(FrontMatterCache, "save", dies)
    loaded(root, 2)
    assert (tmp_path / "writer-died").exists()
    assert calls == [parent]
    cache = FrontMatterCache.open(root / ".tallinn" / "cache")
    assert len(cache._stored) == prompt_files(root)
