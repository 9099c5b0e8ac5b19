"""A full or read-only file system, for real: a small tmpfs (and a small ext4 image) mounted for
the test. Writing the state store, the readiness report or the front-matter cache gives a clear
error and leaves the old file whole or no file at all."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.gates.readiness_factory import COMMAND
from tests.helpers import write_files
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.library import load_library
from tallinn.ops import Store, StoreError, open_store

runner = CliRunner()
Mount = Callable[..., Path]


def _mount(target: Path, *args: str) -> None:
    result = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        pytest.skip(f"mounting a file system is not permitted here: {result.stderr.strip()}")


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Mount]:
    """Mount a file system for one test: `mount("tmpfs", size="1m")`; unmounted afterwards."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a file system needs root on Linux")
    mounted: list[Path] = []

    def make(kind: str, size: str = "2m") -> Path:
        target = tmp_path / f"{kind}-{len(mounted)}"
        target.mkdir()
        if kind == "tmpfs":
            _mount(target, "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs")
        else:  # an ext4 image with 1 KiB blocks, as mkfs makes for small volumes
            if shutil.which("mkfs.ext4") is None:
                pytest.skip("mkfs.ext4 is not installed")
            image = tmp_path / f"{target.name}.img"
            subprocess.run(["truncate", "-s", size, str(image)], check=True)
            subprocess.run(["mkfs.ext4", "-q", "-b", "1024", "-m", "0", str(image)],
                           check=True, capture_output=True)
            _mount(target, "-o", "loop", str(image))
        mounted.append(target)
        return target

    yield make
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill `folder`'s file system until `leave` bytes or fewer are free; return the filler."""
    filler = folder / "filler"
    handle = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while True:
            os.write(handle, b"\0" * 1024)
    except OSError:
        pass
    finally:
        os.close(handle)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


# -- the state store ------------------------------------------------------------------------


def test_a_full_disk_refuses_store_writes_and_keeps_what_was_committed(mount: Mount) -> None:
    """With the disk full, a write fails with store_full; after room is made, the file passes
    integrity_check and holds every token committed before, and nothing of the failed write."""
    folder = mount("tmpfs", size="2m")
    url = f"sqlite:///{folder / 'state.db'}"
    with open_store(url) as store:
        kept = store.create_token("kept")
        filler = fill(folder)
        with pytest.raises(StoreError) as caught:
            _write_until_it_fails(store)
        assert caught.value.code == "store_full"
        assert "full" in str(caught.value)
        with pytest.raises(StoreError) as refused:
            store.create_token("lost")
        assert refused.value.code == "store_full"
    result = runner.invoke(app, ["token", "create", "cli", "--store", url])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: state store {url}: ")
    assert "is full" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    filler.unlink()
    with open_store(url) as store:
        assert store.verify_token(kept) == "kept"
        assert [t.name for t in store.list_tokens()] == ["kept"]
    with sqlite3.connect(folder / "state.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _write_until_it_fails(store: Store) -> None:
    for number in range(10_000):  # the log takes what little room is left, then fails
        store.record_event("auth_failure", client="c", detail="x" * 1900 + str(number))


def test_a_read_only_store_is_one_clear_line(mount: Mount) -> None:
    """A store on a read-only file system: `tallinn token create` says so in one line, exit 2."""
    folder = mount("tmpfs")
    url = f"sqlite:///{folder / 'state.db'}"
    with open_store(url) as store:
        store.create_token("kept")
    remount_read_only(folder)
    result = runner.invoke(app, ["token", "create", "new", "--store", url])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: state store {url}: {folder / 'state.db'} cannot be written "
        "(read-only file system or no access)\n"
    )


@pytest.mark.parametrize("leave_kib", [4, 8, 9, 10, 12, 16])
def test_a_nearly_full_small_block_file_system_is_an_error_not_sigbus(
    mount: Mount, leave_kib: int
) -> None:
    """On 1 KiB blocks with a few KiB free, SQLite's shared-memory index would be mapped over
    unallocated blocks and the process killed by SIGBUS; the store refuses with store_full."""
    folder = mount("ext4", size="2m")
    url = f"sqlite:///{folder / 'state.db'}"
    with open_store(url) as store:
        store.create_token("kept")
    fill(folder, leave=leave_kib * 1024)
    result = subprocess.run(
        [sys.executable, "-m", "tallinn", "token", "create", "new", "--store", url],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2, f"exit {result.returncode}: {result.stderr}"
    assert "is full" in result.stderr
    assert "Traceback" not in result.stderr


# -- the readiness report -------------------------------------------------------------------


def test_a_report_that_does_not_fit_leaves_the_old_one_whole(
    mount: Mount, tmp_path: Path
) -> None:
    """`tallinn gates --report` on a full disk: one line, exit 2, the previous report intact
    and no temporary file left beside it."""
    library = write_files(tmp_path / "lib", {
        "tallinn.toml": '[library]\nname = "full-disk"\n',
        "commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
    })
    folder = mount("tmpfs", size="1m")
    report = folder / "report.json"
    first = runner.invoke(app, ["gates", "-L", str(library), "--only", "xml",
                                "--report", str(report), "--exit-zero"])
    assert first.exit_code == 0, first.output
    before = report.read_bytes()
    assert before.startswith(b"{")
    fill(folder)
    again = runner.invoke(app, ["gates", "-L", str(library), "--only", "xml",
                                "--report", str(report), "--exit-zero"])
    assert again.exit_code == 2
    assert f"error: cannot write the report {report}: No space left on device" in again.stderr
    assert report.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["filler", "report.json"]


def test_a_first_report_that_does_not_fit_leaves_no_file(mount: Mount, tmp_path: Path) -> None:
    library = write_files(tmp_path / "lib", {
        "tallinn.toml": '[library]\nname = "full-disk"\n',
        "commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
    })
    folder = mount("tmpfs", size="1m")
    fill(folder)
    result = runner.invoke(app, ["gates", "-L", str(library), "--only", "xml",
                                 "--report", str(folder / "report.md"), "--exit-zero"])
    assert result.exit_code == 2
    assert sorted(p.name for p in folder.iterdir()) == ["filler"]


# -- the front-matter cache -----------------------------------------------------------------


def test_a_cache_that_does_not_fit_keeps_the_old_file_and_the_load_works(
    mount: Mount, tmp_path: Path
) -> None:
    """A full disk when the front-matter cache is saved: the load still succeeds, the old
    cache file is byte for byte the same and no temporary file is left."""
    library = write_files(tmp_path / "lib", {
        "tallinn.toml": '[library]\nname = "cache"\n',
        "commands/a/hello.md": COMMAND.replace("{{name}}", "me"),
    })
    folder = mount("tmpfs", size="1m")
    cache = folder / "cache"
    load_library(library, cache_dir=cache)
    files = sorted(p.name for p in cache.iterdir())
    saved = {name: (cache / name).read_bytes() for name in files}
    fill(folder)
    # New front matter, so the cache has an entry to add and tries to save.
    (library / "commands/a/other.md").write_text(
        "---\ndescription: Say goodbye\n---\nGoodbye.\n", encoding="utf-8"
    )
    loaded = load_library(library, cache_dir=cache)
    assert sorted(c for c in loaded.commands) == ["hello", "other"]
    assert sorted(p.name for p in cache.iterdir()) == files
    assert {name: (cache / name).read_bytes() for name in files} == saved
