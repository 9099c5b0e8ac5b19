"""One audited file: its text, kind, front matter, fenced code blocks and code spans.

Everything a rule asks for is computed once, on first use, and positions are mapped back
to the file's own 1-based line and column. Offsets index the file text as the loader reads
it (UTF-8, no byte-order mark, newlines normalised to `\\n`), the text a `Fix` edits.

Fenced blocks are found by a line scanner that follows CommonMark's fence rules (a run of
three or more backticks or tildes, closed by a run of the same character at least as long,
an info string with no backtick for backtick fences) but accepts any indentation: prompt
bodies nest fences inside XML-like tags (`<steps>\\n    ```bash`), where CommonMark, and so
markdown-it, would see an indented code block or a paragraph, while the model reading the
prompt sees a code block.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from tallinn.gates import baseline
from tallinn.gates.base import Rule
from tallinn.gates.rules.security import _shell
from tallinn.library import Diagnostic, Fix, Severity, frontmatter
from tallinn.library.files import Limits
from tallinn.library.scanning import backtick_spans

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<marker>`{3,}|~{3,})(?P<info>.*)$")
# Claude Code runs `` !`cmd` `` in a command body before sending the prompt.
_BANG = re.compile(r"(?<![\w!`])!`(?P<command>[^`\n]+)`")
# Characters nobody sees; matched text is looked at with them taken out.
INVISIBLE = re.compile(
    "[\u200b-\u200d\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069"
    "\U000e0000-\U000e007f]+"
)
# What the hidden-character rules look for; most files have none, and one search says so.
_HIDDEN = re.compile(
    "[\u200b-\u200d\u2060-\u2064\u180e\ufeff\u202a-\u202e\u2066-\u2069"
    "\ufe00-\ufe0f\U000e0000-\U000e007f\U000e0100-\U000e01ef]"
)
PYTHON_LANGS = frozenset({"python", "py", "python3", "py3", "pycon", "python-repl", "ipython"})
SHELL_LANGS = frozenset(
    {"bash", "sh", "shell", "zsh", "ksh", "dash", "console", "shell-session", "shellsession",
     "terminal"}
)
_PROMPTED_LANGS = {
    # Session transcripts: commands follow a prompt, the other lines are output.
    "pycon": (">>> ", "... "),
    "python-repl": (">>> ", "... "),
    "console": ("$ ", "% "),
    "shell-session": ("$ ", "% "),
    "shellsession": ("$ ", "% "),
    "terminal": ("$ ", "% "),
}


class Kind(StrEnum):
    """What a file is to the library: only prompts get the prompt rules."""

    COMMAND = "command"
    COMPONENT = "component"
    OTHER = "other"  # tallinn.toml, tests, READMEs: secrets and hidden characters only

    @classmethod
    def of(cls, path: str) -> Kind:
        """Given a library-relative path such as `commands/review/x.md`, what the file is."""
        if not path.endswith(".md") or path.rsplit("/", 1)[-1].lower() == "readme.md":
            return cls.OTHER
        if path.startswith("commands/"):
            return cls.COMMAND
        if path.startswith("components/"):
            return cls.COMPONENT
        return cls.OTHER


@dataclass(slots=True)
class Snippet:
    """Code to analyse: a fenced block's body or the command of a `` !`cmd` `` line.

    `text` joins the code lines with newlines; `starts[i]` is the file offset of line `i`.
    """

    lang: str
    text: str
    starts: tuple[int, ...]
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def file_offset(self, offset: int) -> int:
        """Given an offset into `text`, return the matching offset into the file."""
        line_starts = self._line_starts
        index = bisect.bisect_right(line_starts, offset) - 1
        return self.starts[index] + offset - line_starts[index]

    @property
    def _line_starts(self) -> list[int]:
        starts: list[int] | None = self.cache.get("line_starts")
        if starts is None:
            starts = [0]
            for match in re.finditer("\n", self.text):
                starts.append(match.end())
            self.cache["line_starts"] = starts
        return starts


@dataclass(frozen=True, slots=True)
class Fence:
    """A fenced code block: language, 1-based lines of the opening and closing fence."""

    lang: str
    info: str
    open_line: int
    close_line: int  # the last line of the file when the fence is never closed
    snippet: Snippet


class AuditFile:
    """A file of the library as the security rules see it."""

    def __init__(self, path: str, text: str, kind: Kind, limits: Limits | None = None) -> None:
        self.path = path
        self.text = text
        self.kind = kind
        self.limits = limits  # the library's, so front matter parses as the loader parses it
        self._code_spans: dict[int, list[tuple[int, int]]] = {}

    def __repr__(self) -> str:
        return f"AuditFile({self.path!r}, {self.kind.value})"

    @property
    def is_prompt(self) -> bool:
        return self.kind is not Kind.OTHER

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def line_starts(self) -> list[int]:
        starts = [0]
        for line in self.lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        return starts

    def position(self, offset: int) -> tuple[int, int]:
        """Given a file offset, return its 1-based (line, column)."""
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def offset(self, line: int, col: int = 1) -> int:
        """Given a 1-based line and column, return the file offset."""
        return self.line_starts[line - 1] + col - 1

    @cached_property
    def front_matter(self) -> frontmatter.Parsed | None:
        """The parsed front matter of a prompt file, or None when it has none or it is broken."""
        if not self.is_prompt:
            return None
        parsed = frontmatter.parse(self.text, self.path, limits=self.limits)
        return None if isinstance(parsed, Diagnostic) else parsed

    @cached_property
    def body_line(self) -> int:
        """The 1-based line where the body starts (after the front matter, if any)."""
        parts = frontmatter.split(self.text, self.path)
        return 1 if isinstance(parts, Diagnostic) else parts[3]

    @cached_property
    def fences(self) -> tuple[Fence, ...]:
        """The fenced code blocks of the body, in order."""
        if "```" not in self.text and "~~~" not in self.text:
            return ()
        fences: list[Fence] = []
        lines = self.lines
        index = self.body_line - 1
        while index < len(lines):
            match = _FENCE_OPEN.match(lines[index])
            if match is None or (match["marker"][0] == "`" and "`" in match["info"]):
                index += 1
                continue
            marker, indent = match["marker"], len(match["indent"])
            closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            end = index + 1
            while end < len(lines) and not closing.match(lines[end]):
                end += 1
            info = match["info"].strip()
            lang = _language(info)
            snippet = self._snippet(lang, index + 1, min(end, len(lines)), indent)
            fences.append(Fence(lang, info, index + 1, min(end + 1, len(lines)), snippet))
            index = end + 1
        return tuple(fences)

    def _snippet(self, lang: str, first: int, stop: int, indent: int) -> Snippet:
        """The body of a fence from 0-based line `first` up to `stop`, less its indentation.

        In a session transcript (`console`, `pycon`) only the lines after a prompt are code.
        """
        prompts = _PROMPTED_LANGS.get(lang, ())
        transcript = bool(prompts) and any(
            self.lines[n].lstrip(" \t").startswith(prompts) for n in range(first, stop)
        )
        texts: list[str] = []
        starts: list[int] = []
        for number in range(first, stop):
            line = self.lines[number]
            strip = len(line) - len(line.lstrip(" \t"))
            start = self.line_starts[number]
            if transcript:
                prefix = next((p for p in prompts if line[strip:].startswith(p)), None)
                code = "" if prefix is None else line[strip + len(prefix):]
                start += 0 if prefix is None else strip + len(prefix)
            else:
                code = line[min(strip, indent):]
                start += min(strip, indent)
            texts.append(code)
            starts.append(start)
        return Snippet(lang, "\n".join(texts), tuple(starts))

    def snippets(self, langs: frozenset[str]) -> Iterator[Snippet]:
        """The bodies of the fenced blocks whose language is one of `langs`."""
        for fence in self.fences:
            if fence.lang in langs:
                yield fence.snippet

    @cached_property
    def fence_lines(self) -> frozenset[int]:
        """1-based numbers of every line of every fenced block, fences included."""
        return frozenset(
            n for fence in self.fences for n in range(fence.open_line, fence.close_line + 1)
        )

    @cached_property
    def fence_spans(self) -> Mapping[int, int]:
        """Opening line of each fence -> its closing line (for suppressions before a block)."""
        return {fence.open_line: fence.close_line for fence in self.fences}

    def code_spans(self, line: int) -> list[tuple[int, int]]:
        """Offsets (start, end) of the inline code spans of a 1-based line.

        Found once per line (a line with many findings asks many times), in one pass.
        """
        spans = self._code_spans.get(line)
        if spans is None:
            start = self.line_starts[line - 1]
            spans = [(start + a, start + b) for a, b in
                     backtick_spans(self.lines[line - 1], backslash_escapes=False)]
            self._code_spans[line] = spans
        return spans

    def in_code(self, offset: int) -> bool:
        """Whether a file offset lies in a fenced block or an inline code span."""
        line, _ = self.position(offset)
        if line in self.fence_lines:
            return True
        return any(start <= offset < end for start, end in self.code_spans(line))

    @cached_property
    def bang_commands(self) -> tuple[Snippet, ...]:
        """The `` !`cmd` `` shell lines of the body (outside fenced blocks), as snippets."""
        if "!`" not in self.text:
            return ()
        found = []
        for number, line in self.prose_lines():
            for match in _BANG.finditer(line):
                start = self.line_starts[number - 1] + match.start("command")
                found.append(Snippet("bang", match["command"], (start,)))
        return tuple(found)

    def shell_scripts(self) -> Iterator[tuple[Snippet, _shell.Script]]:
        """Fenced shell blocks and `` !`cmd` `` lines, each with its parsed script."""
        for snippet in (*self.snippets(SHELL_LANGS), *self.bang_commands):
            script = snippet.cache.get("shell")
            if not isinstance(script, _shell.Script):
                script = snippet.cache["shell"] = _shell.parse(snippet.text)
            yield snippet, script

    @cached_property
    def suppressions(self) -> list[baseline.Suppression]:
        """The inline `tallinn: ignore[...]` comments of the file."""
        return baseline.parse_suppressions(self.text, self.fence_spans)

    @cached_property
    def hidden(self) -> bool:
        """Whether the file holds any invisible or text-reordering character."""
        return _HIDDEN.search(self.text) is not None

    @cached_property
    def visible(self) -> tuple[str, list[int] | None]:
        """The text without invisible characters, and a map from its offsets to the file's.

        The map is None when the file has none (offsets are then the same).
        """
        if not self.hidden:
            return self.text, None
        text = self.text
        kept: list[str] = []
        where: list[int] = []
        pos = 0
        for run in INVISIBLE.finditer(text):
            kept.append(text[pos:run.start()])
            where.extend(range(pos, run.start()))
            pos = run.end()
        if pos == 0:
            return text, None  # only variation selectors, which stay: nothing is taken out
        kept.append(text[pos:])
        where.extend(range(pos, len(text) + 1))
        return "".join(kept), where

    @cached_property
    def phrase_text(self) -> str:
        """The visible text case-folded, each run of whitespace one space: what the phrase
        rules' quick tests look in for the words every match must hold."""
        return " ".join(self.visible[0].casefold().split())

    def prose_lines(self) -> Iterator[tuple[int, str]]:
        """(1-based number, text) of the body lines outside fenced blocks."""
        skip = self.fence_lines
        for number in range(self.body_line, len(self.lines) + 1):
            if number not in skip:
                yield number, self.lines[number - 1]

    def finding(
        self,
        rule: Rule,
        offset: int,
        message: str,
        *,
        severity: Severity | None = None,
        fix: Fix | None = None,
    ) -> Diagnostic:
        """A diagnostic of `rule` at a file offset; `severity` overrides the rule's own."""
        line, col = self.position(offset)
        return Diagnostic(rule.code, message, self.path, line, col,
                          severity or rule.severity, fix)


def _language(info: str) -> str:
    """Given a fence info string such as `{.python}` or `bash title="x"`, return `python`."""
    word = info.split(maxsplit=1)[0] if info.split() else ""
    return word.strip("{}").lstrip(".").split(",")[0].lower()
