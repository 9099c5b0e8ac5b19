"""What the documentation rules share: settings, the record of one requirement, key marks."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml
from pydantic import Field

from tallinn.gates.base import GateSettings
from tallinn.library import Diagnostic, Library, Severity, yamlsafe
from tallinn.library.diagnostics import LineIndex
from tallinn.library.files import Limits
from tallinn.library.frontmatter import split
from tallinn.library.model import Document


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
    lines: LineIndex | None = None

    @classmethod
    def of(cls, doc: Document, limits: Limits | None = None) -> Marks:
        """The marks of a loaded file, its YAML parsed as the loader parses it (within the
        same limits, with lines counted the same way)."""
        parts = split(doc.source, doc.path)
        if isinstance(parts, Diagnostic):  # pragma: no cover - a loaded file has front matter
            return cls(None)
        text, first_line, _body, body_line = parts
        loader = yamlsafe.LimitedLoader(text, limits or Limits())
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:  # pragma: no cover - a loaded file has valid YAML
            node = None
        finally:
            loader.dispose()
        return cls(node, first_line, body_line - 1, LineIndex(text))

    def _mark(self, node: yaml.Node) -> tuple[int, int]:
        # From the offset: YAML also ends lines at U+2028 and U+0085, the loader does not.
        assert self.lines is not None  # set wherever there is a node
        line, col = self.lines.line_col(int(node.start_mark.index))
        return line + self.first_line - 1, col

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


@dataclass(slots=True)
class DocsCheck:
    """What a documentation rule gets besides the command or component it checks.

    `marks` are read from the document's front matter on first use: only a requirement that
    is not met needs a position, so a well-documented library parses no YAML here.
    """

    library: Library
    settings: DocsSettings
    document: Document | None = None
    _marks: Marks | None = field(default=None, repr=False)

    @property
    def marks(self) -> Marks:
        if self._marks is None:
            self._marks = (Marks(None) if self.document is None
                           else Marks.of(self.document, self.library.config.limits))
        return self._marks

    def finding(self, code: str, message: str, doc: Document,
                where: tuple[int, int]) -> Diagnostic:
        line, col = where
        return Diagnostic(code, message, doc.path, line, col, Severity.WARNING)
