"""Importers: turn a library written in another format, or prompts written for another tool,
into a native Tallinn library.

Each importer is a module with one function, `convert(src: Path, out: Path) -> ImportReport`,
that reads the library at `src` and writes a native library (docs/format.md) into `out`.
What could not be carried as written is never a crash: it is a `Finding` in the report and a
visible `<!-- tallinn-import: ... -->` marker in the file where it was.

`IMPORTERS` maps a format name to its module; `importer(name)` finds one.

    >>> report = importer("tallinn-2025").convert(Path("old"), Path("new"))
    >>> report.summary()["commands_clean"]
"""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from tallinn.library.errors import TallinnError

__all__ = [
    "IMPORTERS",
    "MARKER",
    "ConvertedFile",
    "Finding",
    "FindingLevel",
    "ImportReport",
    "Importer",
    "ImporterError",
    "importer",
    "marker",
]

IMPORTERS: dict[str, str] = {
    "claude-code": "tallinn.importers.claude_code",
    "tallinn-2025": "tallinn.importers.tallinn_2025",
}

MARKER = "tallinn-import:"


class ImporterError(TallinnError):
    """An import cannot start: an unknown format, a missing source, an output that is not
    empty. Problems inside the source library are findings, not errors."""


class FindingLevel(StrEnum):
    ERROR = "error"  # content could not be carried: the file holds a marker instead
    WARNING = "warning"  # carried, but changed (a name, an argument)
    INFO = "info"  # carried elsewhere or on purpose left out of the prompt


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing an import could not carry as written, at its place in the source.

    `Finding("I101", "commands/a.md", 7, 7, "component 'x/y' not found", FindingLevel.ERROR)`
    """

    code: str
    path: str
    line: int
    col: int
    message: str
    level: FindingLevel = FindingLevel.ERROR

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "path": self.path, "line": self.line, "col": self.col,
                "message": self.message, "level": self.level.value}


@dataclass(frozen=True, slots=True)
class ConvertedFile:
    """One source file and where it went: `kind` is command, component, documentation or
    copied; `clean` says it was carried whole, with no error or warning."""

    source: str
    target: str | None
    kind: str
    name: str | None
    clean: bool


@dataclass(slots=True)
class ImportReport:
    """What an import did: every file written and every finding, in source order."""

    format: str
    source: Path
    out: Path
    files: list[ConvertedFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # Diagnostics of loading the written library natively, `path:line:col: CODE message`.
    check: list[str] = field(default_factory=list)
    markers: int = 0  # `<!-- tallinn-import: ... -->` comments written into the library

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level is FindingLevel.ERROR]

    def summary(self) -> dict[str, Any]:
        commands = [f for f in self.files if f.kind == "command"]
        components = [f for f in self.files if f.kind == "component"]
        blocking = Counter(
            f.code for f in self.findings if f.level is not FindingLevel.INFO
        )
        return {
            "commands": len(commands),
            "commands_clean": sum(f.clean for f in commands),
            "components": len(components),
            "components_clean": sum(f.clean for f in components),
            "findings": dict(sorted(Counter(f.code for f in self.findings).items())),
            "blocking": dict(sorted(blocking.items())),
            "check_problems": len(self.check),
            "markers": self.markers,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": str(self.source),
            "out": str(self.out),
            "summary": self.summary(),
            "files": [
                {"source": f.source, "target": f.target, "kind": f.kind, "name": f.name,
                 "clean": f.clean}
                for f in self.files
            ],
            "findings": [f.to_json() for f in self.findings],
            "check": list(self.check),
        }


class Importer(Protocol):
    """What an importer module provides."""

    def convert(self, src: Path, out: Path) -> ImportReport: ...


def importer(name: str) -> Importer:
    """The importer of format `name`; `ImporterError` names the known ones otherwise."""
    module = IMPORTERS.get(name)
    if module is None:
        known = ", ".join(sorted(IMPORTERS))
        raise ImporterError(f"unknown import format '{name}' (known: {known})")
    loaded: Importer = importlib.import_module(module)
    return loaded


def marker(message: str) -> str:
    """An HTML comment that marks, in a written file, where content could not be carried.

    Given `component 'a/b' not found`, return `<!-- tallinn-import: component 'a/b' not
    found -->`. The text is made inert: no `--` (which would end or break the comment) and no
    template token (`{{`, `$ARGUMENTS`, `<include`) that the composer would read.
    """
    text = " ".join(message.split())
    # Each replacement again until none is left: one pass over `{{{{` leaves `{ {{ {`.
    for token, inert in (("--", "- -"), ("{{", "{ {"), ("$ARGUMENTS", "ARGUMENTS")):
        while token in text:
            text = text.replace(token, inert)
    text = text.replace("<", "‹").replace(">", "›")
    return f"<!-- {MARKER} {text} -->"
