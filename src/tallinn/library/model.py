"""The in-memory shape of a prompt library: commands, components, arguments.

Records are frozen: a loaded `Library` never changes, so a server can swap one
reference on reload and every request sees one consistent library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tallinn.library.diagnostics import Diagnostic, Severity
from tallinn.library.files import Limits
from tallinn.library.source import FilesSource, FolderSource, LibrarySource

if TYPE_CHECKING:
    from tallinn.library.compose import Template
    from tallinn.library.files import FileReader
    from tallinn.library.patterns import Pattern

ArgValue = str | int | float | bool


class ArgType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ENUM = "enum"


@dataclass(frozen=True, slots=True)
class Argument:
    """A declared argument of a command or component."""

    name: str
    description: str = ""
    type: ArgType = ArgType.STRING
    required: bool = False
    default: ArgValue | None = None
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    compiled_pattern: Pattern | None = field(default=None, compare=False, repr=False)  # RE2


@dataclass(frozen=True, slots=True)
class Example:
    """An example invocation: `args` maps argument names to values."""

    description: str
    args: Mapping[str, ArgValue]


@dataclass(frozen=True, slots=True)
class Location:
    """Where something was written: a library-relative path and a 1-based line and column."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Document:
    """What commands and components share: a source file with front matter and a body."""

    name: str
    path: str  # relative to the library root, with forward slashes
    description: str
    arguments: tuple[Argument, ...]
    body_line: int  # 1-based line of the file on which the body starts
    source: str  # the whole file, as read (newlines normalised)
    body_start: int  # where the body starts in `source`
    # The body when it is not the end of the source: a 2025-format prompt, converted.
    converted_body: str | None = None

    @property
    def body(self) -> str:
        """The text after the front matter: the template. Sliced from `source` when asked, so
        a served library holds each file's text once (it is read only to compose)."""
        if self.converted_body is not None:
            return self.converted_body
        return self.source[self.body_start :]

    @property
    def front_matter(self) -> Mapping[str, Any]:
        """Every key of the front matter as written, unknown ones included.

        Parsed again from `source` at each call: it is seldom read (the known keys are fields
        already), and a served library of thousands of commands need not hold it.
        """
        from tallinn.library.frontmatter import Parsed, parse

        parsed = parse(self.source, self.path)
        return parsed.data if isinstance(parsed, Parsed) else {}

    def argument(self, name: str) -> Argument | None:
        for arg in self.arguments:
            if arg.name == name:
                return arg
        return None


@dataclass(frozen=True, slots=True)
class Component(Document):
    """A reusable fragment, named `group/name`."""

    @property
    def group(self) -> str:
        return self.name.rpartition("/")[0]


@dataclass(frozen=True, slots=True)
class Command(Document):
    """A prompt template, named by its file stem, in the category of its folder."""

    category: str = ""
    argument_hint: str | None = None
    allowed_tools: tuple[str, ...] = ()
    model: str | None = None
    tags: tuple[str, ...] = ()
    critical: bool = False
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True, slots=True)
class LibraryConfig:
    """Settings from the library's `tallinn.toml`; unknown tables are kept for other tools."""

    name: str = ""
    description: str = ""
    tables: Mapping[str, Any] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)

    def table(self, name: str) -> Mapping[str, Any]:
        value = self.tables.get(name, {})
        return value if isinstance(value, Mapping) else {}


_UNSET = FilesSource({}, label="no source")


@dataclass(frozen=True, slots=True)
class Library:
    """A loaded and composed library. Files with errors are left out and reported.

    `source` gives its files (`tallinn.library.source`); `root` is its folder, `None` when
    the files are held in memory (a stored release).
    """

    root: Path | None
    commands: Mapping[str, Command]
    components: Mapping[str, Component]
    templates: Mapping[str, Template]
    diagnostics: tuple[Diagnostic, ...]
    config: LibraryConfig
    content_hash: str
    source: LibrarySource = field(default_factory=lambda: _UNSET, compare=False)
    # What the build that made it knew of each file, so a rebuild reads only what changed.
    state: object | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.source is _UNSET:  # built by hand, from a folder: its files are there
            if self.root is None:
                raise TypeError("a Library needs a source or a root")
            object.__setattr__(self, "source", FolderSource(self.root))

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def name(self) -> str:
        if self.config.name:
            return self.config.name
        return self.root.name if self.root is not None else self.label

    @property
    def label(self) -> str:
        """How messages name where the library comes from: its folder, or a release."""
        return str(self.root) if self.root is not None else self.source.label

    def files(self) -> FileReader:
        """A reader of the library's files, within its limits: the one read path."""
        return self.source.files(self.config.limits)

    def categories(self) -> list[str]:
        return sorted({c.category for c in self.commands.values()})
