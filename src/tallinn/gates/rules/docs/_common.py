"""What the documentation rules share: settings, the record of one requirement, key marks."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from pydantic import Field

from tallinn.gates.base import GateSettings
from tallinn.library import Diagnostic, Library, Severity
from tallinn.library.frontmatter import split
from tallinn.library.model import Document

try:  # libyaml is an order of magnitude faster; PyYAML ships it in its wheels.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - only on builds without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class DocsSettings(GateSettings):
    """`[gates.docs]`."""

    min_description_length: int = Field(20, ge=0, le=1000)
    min_coverage: float = Field(0.95, ge=0, le=1)
    coverage_floor: float | None = Field(0.8, ge=0, le=1)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One piece of documentation a library should have; `finding` says what is missing.

    `Requirement("D103", "review-file: an example", None)` is met.
    """

    code: str
    subject: str
    finding: Diagnostic | None = None

    @property
    def met(self) -> bool:
        return self.finding is None


@dataclass(frozen=True, slots=True)
class Marks:
    """Where a file's front-matter keys are written: 1-based (line, col) in the file."""

    node: yaml.Node | None
    first_line: int = 2  # the file line of the front matter's first line
    closing_line: int = 1  # the line of the closing '---', where a missing key would go

    @classmethod
    def of(cls, doc: Document) -> Marks:
        parts = split(doc.source, doc.path)
        if isinstance(parts, Diagnostic):  # pragma: no cover - a loaded file has front matter
            return cls(None)
        text, first_line, _body, body_line = parts
        try:
            loader = _Loader(text)
            try:
                node = loader.get_single_node()
            finally:
                loader.dispose()
        except yaml.YAMLError:  # pragma: no cover - a loaded file has valid YAML
            node = None
        return cls(node, first_line, body_line - 1)

    def _mark(self, node: yaml.Node) -> tuple[int, int]:
        return node.start_mark.line + self.first_line, node.start_mark.column + 1

    def key(self, *path: str | int) -> tuple[int, int]:
        """The key (or list item) at `path`, e.g. `key("arguments", 0)`; else the nearest."""
        node = self.node
        found = self.missing
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                match = next(((k, v) for k, v in node.value if k.value == part), None)
                if match is None:
                    return found
                found, node = self._mark(match[0]), match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                    and 0 <= part < len(node.value):
                node = node.value[part]
                found = self._mark(node)
            else:
                return found
        return found

    @property
    def missing(self) -> tuple[int, int]:
        """Where a missing key would be added: the closing '---' of the front matter."""
        return self.closing_line, 1


@dataclass(frozen=True, slots=True)
class DocsCheck:
    """What a documentation rule gets besides the command or component it checks."""

    library: Library
    settings: DocsSettings
    marks: Marks = field(default_factory=lambda: Marks(None))

    def finding(self, code: str, message: str, doc: Document,
                where: tuple[int, int]) -> Diagnostic:
        line, col = where
        return Diagnostic(code, message, doc.path, line, col, Severity.WARNING)
