"""An export folder is hostile input: its manifest and files are read through the library's
one read path, so links out, FIFOs, huge files and bytes that are not UTF-8 are reported with
their place, never followed, waited on or read whole."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from tests.export.conftest import EDGE_LIBRARY

from tallinn.export import TARGETS, ExportError, check, manifest_file, write_export
from tallinn.export.drift import DriftKind
from tallinn.export.manifest import read
from tallinn.library import Library, load_library

TARGET = "cursor"


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return load_library(Path(shutil.copytree(EDGE_LIBRARY, tmp_path / "edge")))


@pytest.fixture
def out(tmp_path: Path, library: Library) -> Path:
    """A fresh export of `cursor` in `tmp_path/out`."""
    folder = tmp_path / "out"
    exporter = TARGETS[TARGET]
    write_export(exporter, library, exporter.build(library), folder)
    return folder


def _first_file(out: Path) -> str:
    record = read(out, TARGET)
    assert record is not None
    return sorted(record.files)[0]


def test_an_exported_file_replaced_by_a_fifo_is_a_drift_not_a_wait(
    out: Path, library: Library
) -> None:
    """A FIFO where an exported file was is reported as edited, and is never opened."""
    rel = _first_file(out)
    (out / rel).unlink()
    os.mkfifo(out / rel)
    drift = check(out, library)
    assert [(d.kind, d.path) for d in drift] == [(DriftKind.EDITED, rel)]
    assert "FIFO" in drift[0].detail


def test_a_huge_exported_file_is_a_drift_read_no_further_than_the_limit(
    out: Path, library: Library
) -> None:
    """A file past the read limit is reported as edited, with the limit, without reading it."""
    rel = _first_file(out)
    with (out / rel).open("r+b") as handle:
        handle.truncate(10 * 1024 * 1024 * 1024)  # 10 GiB, sparse: nothing to read but zeros
    drift = check(out, library, max_file_bytes=1_000_000)
    assert [(d.kind, d.path) for d in drift] == [(DriftKind.EDITED, rel)]
    assert "over the limit of 1,000,000" in drift[0].detail


def test_an_exported_file_that_is_not_utf8_is_compared_by_its_bytes(
    out: Path, library: Library
) -> None:
    """Bytes that are not UTF-8 in an exported file are an edit, and the check goes on."""
    rel = _first_file(out)
    (out / rel).write_bytes(b"\xff\xfe not text \x80")
    drift = check(out, library)
    assert [(d.kind, d.path) for d in drift] == [(DriftKind.EDITED, rel)]


def test_an_exported_file_that_links_out_is_refused(
    out: Path, library: Library, tmp_path: Path
) -> None:
    """An exported file replaced by a symbolic link to a file outside is refused, unread."""
    rel = _first_file(out)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside\n", encoding="utf-8")
    (out / rel).unlink()
    (out / rel).symlink_to(secret)
    with pytest.raises(ExportError, match="symbolic link"):
        check(out, library)


def test_a_manifest_that_is_a_fifo_is_refused_with_its_path(out: Path) -> None:
    """A FIFO in place of the manifest is an error naming it, not a reader blocked for good."""
    recorded = out / manifest_file(TARGET)
    recorded.unlink()
    os.mkfifo(recorded)
    with pytest.raises(ExportError) as raised:
        check(out, None)
    assert str(raised.value).startswith(f"{recorded}:1:1: E001 not read: a FIFO")


def test_a_manifest_over_the_limit_is_refused(out: Path) -> None:
    """A manifest larger than the limit is refused with the limit, not parsed."""
    recorded = out / manifest_file(TARGET)
    data = json.loads(recorded.read_text(encoding="utf-8"))
    data["padding"] = "x" * 2_000
    recorded.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ExportError, match="over the limit of 1,000"):
        read(out, TARGET, max_bytes=1_000)
    assert read(out, TARGET) is not None  # within the default limit it is read


def test_a_manifest_that_is_not_utf8_is_refused_at_the_byte(out: Path) -> None:
    """A manifest with bytes that are not UTF-8 is an error at their line and column."""
    recorded = out / manifest_file(TARGET)
    recorded.write_bytes(b'{\n  "tallinn": "\xff"\n}\n')
    with pytest.raises(ExportError) as raised:
        check(out, None)
    assert str(raised.value) == f"{recorded}:2:15: E001 file is not valid UTF-8"


def test_a_manifest_that_links_out_is_refused(out: Path, tmp_path: Path) -> None:
    """A manifest replaced by a symbolic link to a file elsewhere is refused, unread."""
    recorded = out / manifest_file(TARGET)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_bytes(recorded.read_bytes())
    recorded.unlink()
    recorded.symlink_to(elsewhere)
    with pytest.raises(ExportError, match="symbolic link"):
        check(out, None)


def test_a_manifest_nested_too_deeply_is_an_error(out: Path) -> None:
    """JSON nested deeper than Python can parse is an error with the manifest's path."""
    recorded = out / manifest_file(TARGET)
    recorded.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        check(out, None)
    assert str(raised.value).startswith(f"{recorded}:")
    assert "not valid JSON" in str(raised.value)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("put_there", ["fifo", "huge"])
def test_exporting_again_writes_over_a_fifo_or_a_huge_file_without_reading_it(
    out: Path, library: Library, put_there: str
) -> None:
    """Exporting again over an owned file turned into a FIFO or a 10 GiB sparse file neither
    waits on the FIFO nor reads the file whole: it is written over, and the export is whole."""
    rel = _first_file(out)
    wanted = (out / rel).read_bytes()
    if put_there == "fifo":
        (out / rel).unlink()
        os.mkfifo(out / rel)
    else:
        with (out / rel).open("r+b") as handle:
            handle.truncate(10 * 1024 * 1024 * 1024)
    exporter = TARGETS[TARGET]
    written = write_export(exporter, library, exporter.build(library), out)
    assert rel in written.written
    assert (out / rel).is_file()
    assert (out / rel).read_bytes() == wanted
    assert check(out, library) == []
