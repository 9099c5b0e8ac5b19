"""Drift: has an export's folder changed since it was written, or its source?

`check(folder, library)` compares, for each export in the folder, each file its manifest names
with its recorded hash, and the library's content hash with the one the export was made from.
The folder is hostile input: its files are read through the library's one read path
(`tallinn.library.files`), so a FIFO, a device or a file over `MAX_EXPORT_FILE_BYTES` is a
drift that says why it was not read, and a symbolic link on the way is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from tallinn.export import manifest as manifests
from tallinn.export._base import ExportError
from tallinn.export.manifest import MANIFESTS, sha256
from tallinn.export.write import _inside
from tallinn.library import Library
from tallinn.library.diagnostics import Diagnostic
from tallinn.library.files import LibraryFiles, Limits

# An exported file is a composed prompt: far larger than any is a file someone put there.
MAX_EXPORT_FILE_BYTES = 16 * 1024 * 1024


class DriftKind(StrEnum):
    EDITED = "edited"
    MISSING = "missing"
    SOURCE = "source changed"


@dataclass(frozen=True, slots=True)
class Drift:
    """One difference: `Drift(EDITED, ".claude/skills/x/SKILL.md", "claude-skills")`."""

    kind: DriftKind
    path: str
    target: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.kind.value}" + (f" ({self.detail})" if self.detail else "")


def check(
    folder: Path,
    library: Library | None,
    *,
    max_file_bytes: int = MAX_EXPORT_FILE_BYTES,
) -> list[Drift]:
    """Every drift of the exports in `folder`, target by target: files in path order, then the
    source; empty when nothing changed. Without `library` the source is not compared. Raises
    `ExportError` when the folder has no manifest or a bad one, or a file's path goes through
    a symbolic link."""
    records = manifests.read_all(folder)
    if not records:
        raise ExportError(str(folder / MANIFESTS), "no export manifest: not an export folder")
    files = LibraryFiles(folder, Limits(max_file_bytes=max_file_bytes))
    found = []
    for record in records:
        for rel, digest in sorted(record.files.items()):
            path = _inside(folder, rel)
            if not path.exists():
                found.append(Drift(DriftKind.MISSING, rel, record.target))
                continue
            data = files.read_bytes(rel)
            if isinstance(data, Diagnostic):
                found.append(Drift(DriftKind.EDITED, rel, record.target, data.message))
            elif sha256(data) != digest:
                found.append(Drift(DriftKind.EDITED, rel, record.target))
        if library is not None and library.content_hash != record.content_hash:
            found.append(Drift(DriftKind.SOURCE, manifests.manifest_file(record.target),
                               record.target,
                               f"library {library.name!r} changed since the export; "
                               f"run tallinn export {record.target} again"))
    return found
