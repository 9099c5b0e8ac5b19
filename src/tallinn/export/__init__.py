"""Export a library to other agents' own formats, with a manifest and a drift check.

One module per target, each an `Exporter`; `TARGETS` is the table of them. Depends on
`tallinn.library` only.

>>> from tallinn.export import TARGETS, write_export
>>> exporter = TARGETS["claude-skills"]
>>> result = exporter.build(library)
>>> write_export(exporter, library, result, Path("out"))
"""

from tallinn.export._base import Export, Exporter, ExportError, ExportFile, Loss
from tallinn.export.drift import Drift, DriftKind, check
from tallinn.export.manifest import MANIFESTS, Manifest, manifest_file
from tallinn.export.targets import TARGETS
from tallinn.export.write import Written, write_export

__all__ = [
    "MANIFESTS",
    "TARGETS",
    "Drift",
    "DriftKind",
    "Export",
    "ExportError",
    "ExportFile",
    "Exporter",
    "Loss",
    "Manifest",
    "Written",
    "check",
    "manifest_file",
    "write_export",
]
