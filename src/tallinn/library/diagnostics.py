"""Diagnostics: one problem found in one file, at one place.

Loader, composer and every quality-gate rule report through the same record, so that
the CLI, the readiness report and SARIF output print them the same way::

    commands/review/code-review.md:3:14: V103 argument-hint starts with '[' ...
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is. Errors stop a library from loading a file or shipping."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 2, "warning": 1, "info": 0}[self.value]


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace `text[start:end]` of a file with `replacement` (offsets in characters)."""

    start: int
    end: int
    replacement: str


@dataclass(frozen=True, slots=True)
class Fix:
    """A change that resolves a diagnostic. `safe` fixes never change what a prompt renders."""

    description: str
    edits: tuple[Edit, ...]
    safe: bool = True


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A problem at `path:line:col` (1-based), with a rule `code` such as `V201`."""

    code: str
    message: str
    path: str
    line: int = 1
    col: int = 1
    severity: Severity = Severity.ERROR
    fix: Fix | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def line_col(text: str, offset: int) -> tuple[int, int]:
    """Given an offset into `text`, return its 1-based (line, column).

    For one position only: it reads `text` up to `offset`. A scanner asking for many positions
    in one text uses a `LineIndex`, which reads the text once.
    """
    LineIndex.scanned += offset
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1


class LineIndex:
    """The line starts of one text, found once, so that each position costs a binary search.

    A line ends at `\n` alone: the reader turns CRLF and lone CR into `\n` (see
    `tallinn.library.files`), and no other character (U+2028, U+0085, form feed) ends a line,
    so every scanner, the YAML parser's marks included, counts lines the same way.

    >>> LineIndex("a\nbc").line_col(3)
    (2, 2)
    """

    scanned: int = 0
    """Characters read by every index and `line_col` call so far: what the tests of linear
    scanning count."""

    __slots__ = ("_starts",)

    def __init__(self, text: str) -> None:
        starts = [0]
        find = text.find
        pos = find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self._starts = starts
        LineIndex.scanned += len(text)

    def line_col(self, offset: int) -> tuple[int, int]:
        """Given an offset, return its 1-based (line, column)."""
        index = bisect_right(self._starts, offset) - 1
        return index + 1, offset - self._starts[index] + 1

    def offset(self, line: int) -> int:
        """Given a 1-based line number, return the offset at which it starts."""
        return self._starts[min(max(line, 1), len(self._starts)) - 1]
