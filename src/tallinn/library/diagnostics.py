"""Diagnostics: one problem found in one file, at one place.

Loader, composer and every quality-gate rule report through the same record, so that
the CLI, the readiness report and SARIF output print them the same way::

    commands/review/code-review.md:3:14: V103 argument-hint starts with '[' ...
"""

from __future__ import annotations

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
    """Given an offset into `text`, return its 1-based (line, column)."""
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start + 1
