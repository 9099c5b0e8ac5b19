"""Drift: has an export's folder changed since it was written, or its source?

`check(folder, library)` compares, for each export in the folder, each file its manifest names
with its recorded hash, and the library's content hash with the one the export was made from.
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


def check(folder: Path, library: Library | None) -> list[Drift]:
    """Every drift of the exports in `folder`, target by target: files in path order, then the
    source; empty when nothing changed. Without `library` the source is not compared. Raises
    `ExportError` when the folder has no manifest or a bad one."""
    records = manifests.read_all(folder)
    if not records:
        raise ExportError(str(folder / MANIFESTS), "no export manifest: not an export folder")
    found = []
    for record in records:
        for rel, digest in sorted(record.files.items()):
            path = _inside(folder, rel)
            if not path.is_file():
                found.append(Drift(DriftKind.MISSING, rel, record.target))
            elif sha256(path.read_bytes()) != digest:
                found.append(Drift(DriftKind.EDITED, rel, record.target))
        if library is not None and library.content_hash != record.content_hash:
            found.append(Drift(DriftKind.SOURCE, manifests.manifest_file(record.target),
                               record.target,
                               f"library {library.name!r} changed since the export; "
                               f"run tallinn export {record.target} again"))
    return found
