"""Write an export into a folder: each file atomically, and only files the export owns.

A file is written to a temporary file beside it and renamed over the old one, so a reader
never sees half a file. The target's manifest in the folder names the files its previous export
wrote: those no longer written are removed, and a file there that it does not own (a file of
the user's, or of another target's export) is never overwritten.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tallinn import __version__
from tallinn.export import manifest as manifests
from tallinn.export._base import Export, Exporter, ExportError
from tallinn.export.manifest import Manifest, check_path, manifest_file, sha256
from tallinn.library import Library


@dataclass(frozen=True, slots=True)
class Written:
    """What `write_export` did: the files written and the files removed, relative paths."""

    written: tuple[str, ...]
    removed: tuple[str, ...]
    manifest: Manifest


def _inside(folder: Path, rel: str) -> Path:
    """The path of `rel` in `folder`; refuses a path through a symbolic link, which could
    point outside the folder."""
    path = folder
    for part in rel.split("/"):
        path = path / part
        if path.is_symlink():
            raise ExportError(str(path), "is a symbolic link; an export never follows one")
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename.

    The rename makes the write atomic for readers. There is no fsync: an export is made again
    in a moment, and `--check` finds a file a crash left short; an fsync per file made writing
    a thousand files twenty times slower.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _holds(folder: Path, rel: str, content: bytes) -> bool:
    """Whether the file at `rel` has exactly `content`: read through the library's one read
    path, never more than `content` and a byte, so a FIFO, a device or a huge file put where
    an export goes is simply written over, not read."""
    from tallinn.library.files import LibraryFiles, Limits

    found = LibraryFiles(folder, Limits(max_file_bytes=max(1, len(content)))).read_bytes(rel)
    return found == content


def _prune(folder: Path, rel: str) -> None:
    """Remove the folders of `rel` that are left empty, up to (not including) `folder`."""
    parent = (folder / rel).parent
    while parent != folder and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def write_export(exporter: Exporter, library: Library, result: Export, folder: Path,
                 *, force: bool = False) -> Written:
    """Write `result` into `folder` with its manifest; raises `ExportError` before writing
    anything when a file to write belongs to another target's export, or is there and not
    owned by this target's manifest (unless `force`), or when a manifest or path is unsafe."""
    folder.mkdir(parents=True, exist_ok=True)
    previous = manifests.read(folder, exporter.name)
    owned = set(previous.files) if previous is not None else set()
    others = {rel: record.target for record in manifests.read_all(folder)
              if record.target != exporter.name for rel in record.files}
    data: dict[str, bytes] = {}
    for file in result.files:
        rel = check_path(file.path, f"{exporter.name} target")
        if rel in data:
            raise ExportError(rel, "two commands export to the same file")
        data[rel] = file.content.encode("utf-8")
        if rel in others:
            raise ExportError(str(folder / rel), f"belongs to the {others[rel]} export here")
    foreign = sorted(rel for rel in data if rel not in owned
                     and (_inside(folder, rel).exists() or _inside(folder, rel).is_symlink()))
    if foreign and not force:
        raise ExportError(str(folder / foreign[0]),
                          f"exists and is not owned by {manifest_file(exporter.name)} "
                          f"({len(foreign)} such file(s)); move it away or pass --force")
    written: list[str] = []
    for rel, content in sorted(data.items()):
        path = _inside(folder, rel)
        if _holds(folder, rel, content):
            continue
        atomic_write(path, content)
        written.append(rel)
    removed = _remove_stale(folder, owned - set(data))
    record = Manifest(
        tallinn=__version__, target=exporter.name, agent=exporter.agent,
        agent_version=exporter.agent_version, library_name=library.name,
        content_hash=library.content_hash,
        files={rel: sha256(content) for rel, content in data.items()},
    )
    atomic_write(_inside(folder, manifest_file(exporter.name)), record.dumps().encode("utf-8"))
    return Written(tuple(written), tuple(removed), record)


def _remove_stale(folder: Path, stale: set[str]) -> Sequence[str]:
    removed = []
    for rel in sorted(stale):
        path = _inside(folder, rel)
        if path.is_file():
            path.unlink()
            removed.append(rel)
        _prune(folder, rel)
    return removed
