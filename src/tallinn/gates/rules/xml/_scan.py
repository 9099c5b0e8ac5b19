"""Find the XML-style tags of a prompt body and check how they nest, in one pass.

Prompt bodies are Markdown with XML-style tags (`<role>`, `<instructions>`). What is not a
tag is left alone: text in fenced code blocks and inline code spans (found with markdown-it,
mapped back to offsets), HTML comments, CDATA sections, autolinks (`<https://...>`), escaped
`\\<`, and prose such as `a < b`, `x<y`, `<=`, `->`, `List<String>` or `<file path>`. HTML
void elements (`<br>`, `<hr>`, `<img ...>`) need no closing tag. `<include .../>` is the
composer's business (V201, V202) and is skipped here.

The rules V401-V404 read the problems this scan records::

    >>> result = scan("<role>You review code.\\n", "a.md")
    >>> [t.name for t in result.unclosed]
    ['role']
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from tallinn.library.diagnostics import Diagnostic, Fix, LineIndex, Severity
from tallinn.library.scanning import (
    ScanCounter,
    backtick_pairs,
    backtick_spans,
    literal_spans,
)

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

# HTML elements that never have content, so never a closing tag (HTML Living Standard, 13.1.2).
VOID_ELEMENTS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
})
SKIPPED = frozenset({"include"})

_NAME = r"[A-Za-z_][\w.:-]*"
_MARKUP = re.compile(
    rf"""
    # Comments, CDATA sections and processing instructions are blanked before this scan
    # (`mask`), in one pass: as alternatives here, each unclosed one would read to the end.
    <![A-Za-z][^<>]*>                                 # declaration, e.g. <!DOCTYPE html>
    |<[A-Za-z][A-Za-z0-9+.-]{{1,31}}:[^\s<>]*>         # autolink <https://...>
    |<[\w.+-]+@[\w.-]+>                               # e-mail autolink
    |</(?P<close>{_NAME})\s*>
    |<(?P<open>{_NAME})
      (?P<attrs>(?:\s(?:[^<>"'/]|/(?!>)|"[^"<]*"|'[^'<]*')*)?)
      (?P<slash>/)?>
    """,
    re.VERBOSE | re.DOTALL,
)
_ATTRIBUTE = re.compile(
    r"""(?P<space>\s*)(?P<name>[^\s=/"'<>]+)
        (?:\s*=\s*(?P<value>"[^"]*"|'[^']*'|[^\s"'=<>`]+)?)?""",
    re.VERBOSE,
)
_ATTRIBUTE_NAME = re.compile(_NAME)
_INSTRUCTION = (("<?", "?>"),)
_INSTRUCTION_OPEN = re.compile(r"(<\?)(?=[A-Za-z])")
_SPACE = re.compile(r"\s*")
_REST_BLANK = re.compile(r"\s*/?\s*\Z")
_WORD = re.compile(r"\w")



@cache
def block_parser() -> MarkdownIt:
    """markdown-it with only the block structure: where fences and paragraphs are (code spans
    are found in each paragraph's lines here, with their exact offsets). Indented code stays
    enabled so that fences close as CommonMark says (an indented ``` closes nothing), but its
    lines are read as prose: in prompts, indentation is layout, not code. Made (and imported)
    at the first body that needs it: most have their code spans found line by line."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).disable(
        ["inline", "text_join", "html_block", "lheading", "reference"]
    )


@dataclass(frozen=True, slots=True)
class Tag:
    """One tag found in the text: `<name attrs>`, `<name/>` or `</name>`."""

    name: str
    start: int
    end: int
    closing: bool = False
    attrs: str = ""
    self_closing: bool = False


@dataclass(frozen=True, slots=True)
class AttributeProblem:
    """A malformed attribute of `tag`: what is wrong, where, and an edit that may mend it."""

    tag: Tag
    offset: int
    message: str
    quote: tuple[int, int] | None = None  # an unquoted value's span, to wrap in quotes


@dataclass(slots=True)
class Scan:
    """The tags of one body and how they nest. Offsets are into `text`."""

    text: str
    path: str
    first_line: int = 1  # the file line on which `text` starts
    base: int = 0  # the offset of `text` in its file, for fixes
    tags: list[Tag] = field(default_factory=list)
    unclosed: list[Tag] = field(default_factory=list)
    mismatched: list[tuple[Tag, Tag]] = field(default_factory=list)  # (closing, innermost open)
    stray: list[Tag] = field(default_factory=list)
    attributes: list[AttributeProblem] = field(default_factory=list)
    lines: LineIndex | None = None  # built on the first finding, once for all of them

    def where(self, offset: int) -> tuple[int, int]:
        if self.lines is None:
            self.lines = LineIndex(self.text)
        line, col = self.lines.line_col(offset)
        return line + self.first_line - 1, col

    def diagnostic(
        self, code: str, message: str, offset: int, fix: Fix | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        line, col = self.where(offset)
        return Diagnostic(code, message, self.path, line, col, severity, fix)

    @property
    def ok(self) -> bool:
        return not (self.unclosed or self.mismatched or self.stray or self.attributes)


def scan(
    text: str,
    path: str,
    *,
    first_line: int = 1,
    base: int = 0,
    skip: Sequence[tuple[int, int]] = (),
    void: frozenset[str] = VOID_ELEMENTS,
) -> Scan:
    """Scan `text` (a body starting on file line `first_line`); `skip` spans are not read."""
    result = Scan(text, path, first_line, base)
    if "<" not in text:
        return result
    masked = mask(text, skip)
    found: list[tuple[re.Match[str], str | None, bool]] = []
    closers: dict[str, list[int]] = {}
    for match in _MARKUP.finditer(masked):
        start = match.start()
        before = masked[start - 1] if start else " "
        if before == "\\":
            continue  # `\<tag>` is literal text
        close = match.group("close")
        if close is not None:
            if close not in SKIPPED:
                closers.setdefault(close, []).append(start)
                found.append((match, close, False))
        elif match.group("open") is not None and match.group("open") not in SKIPPED:
            found.append((match, None, bool(_WORD.match(before))))
    _nest(result, found, closers, void)
    return result


def _nest(
    result: Scan,
    found: list[tuple[re.Match[str], str | None, bool]],
    closers: dict[str, list[int]],
    void: frozenset[str],
) -> None:
    stack: list[Tag] = []
    on_stack: Counter[str] = Counter()  # how many of each name are open, so that a stray
    overlapped: dict[str, int] = {}  # closing tag costs no walk down the stack
    for match, close, after_word in found:
        start, end = match.span()
        if close is not None:
            tag = Tag(close, start, end, closing=True)
            result.tags.append(tag)
            _close(result, tag, stack, on_stack, overlapped, closers)
            continue
        name = match.group("open")
        attrs = match.group("attrs")
        bare = attrs.strip()
        if bare and "=" not in bare and '"' not in bare and "'" not in bare:
            continue  # `<file path>`, `<Esc to cancel>`: prose, not a tag
        if after_word and name not in closers:
            continue  # `List<String>`, `Vec<T>`: code in prose, unless closed later
        tag = Tag(name, start, end, attrs=attrs, self_closing=match.group("slash") is not None)
        result.tags.append(tag)
        is_void = name.lower() in void
        if bare and not is_void:  # HTML's own syntax (`<input checked>`) is fine in voids
            _check_attributes(result, tag, start + 1 + len(name))
        if not tag.self_closing and not is_void:
            stack.append(tag)
            on_stack[name] += 1
    result.unclosed.extend(stack)
    result.unclosed.sort(key=lambda t: t.start)


def _close(
    result: Scan, tag: Tag, stack: list[Tag], on_stack: Counter[str],
    overlapped: dict[str, int], closers: dict[str, list[int]],
) -> None:
    name = tag.name
    if stack and stack[-1].name == name:
        stack.pop()
        on_stack[name] -= 1
        return
    if not on_stack[name]:
        if overlapped.get(name):
            overlapped[name] -= 1  # already reported where the elements overlapped
        else:
            result.stray.append(tag)
        return
    # The walk down the stack stops at `name`, and every tag it passes is taken off: linear.
    depth = next(i for i in range(len(stack) - 1, -1, -1) if stack[i].name == name)
    ScanCounter.searched += len(stack) - depth
    inner = stack[depth + 1 :]
    for removed in stack[depth:]:
        on_stack[removed.name] -= 1
    del stack[depth:]
    reported = False
    for open_tag in inner:
        later = closers.get(open_tag.name, [])
        if bisect.bisect_right(later, tag.start) < len(later):
            # `<a><b></a></b>`: the elements overlap; one finding, at `</a>`.
            if not reported:
                result.mismatched.append((tag, open_tag))
                reported = True
            overlapped[open_tag.name] = overlapped.get(open_tag.name, 0) + 1
        else:
            result.unclosed.append(open_tag)


def _check_attributes(result: Scan, tag: Tag, offset: int) -> None:
    """Given the attribute text of `tag` starting at `offset`, record what is malformed."""
    attrs = tag.attrs
    pos = 0
    seen: set[str] = set()
    previous_quoted = False
    while pos < len(attrs):
        # Looked at from `pos`, never copied: a tag with many attributes stays linear.
        if _REST_BLANK.match(attrs, pos):
            return
        match = _ATTRIBUTE.match(attrs, pos)
        if match is None or match.end() == pos:
            bad = _SPACE.match(attrs, pos).end()  # type: ignore[union-attr]
            result.attributes.append(AttributeProblem(
                tag, offset + bad,
                f"malformed attributes in <{tag.name}>: unexpected {attrs[bad]!r}; "
                'write name="value" pairs',
            ))
            return
        name = match.group("name")
        at = offset + match.start("name")
        value = match.group("value")
        if previous_quoted and not match.group("space"):
            result.attributes.append(AttributeProblem(
                tag, at, f"attribute '{name}' of <{tag.name}> must be separated from the "
                "previous one by a space",
            ))
        elif not _ATTRIBUTE_NAME.fullmatch(name):
            result.attributes.append(AttributeProblem(
                tag, at, f"'{name}' is not a valid attribute name in <{tag.name}>",
            ))
        elif "=" not in match.group():
            result.attributes.append(AttributeProblem(
                tag, at, f"attribute '{name}' of <{tag.name}> has no value; "
                f'write {name}="..."',
            ))
        elif value is None:
            result.attributes.append(AttributeProblem(
                tag, at, f"attribute '{name}' of <{tag.name}> has an empty value; "
                f'write {name}=""',
            ))
        elif value[0] not in "\"'":
            start = offset + match.start("value")
            result.attributes.append(AttributeProblem(
                tag, start, f"the value of attribute '{name}' in <{tag.name}> is not quoted; "
                f'write {name}="{value}"', quote=(start, start + len(value)),
            ))
        elif name in seen:
            result.attributes.append(AttributeProblem(
                tag, at, f"attribute '{name}' is given twice in <{tag.name}>",
            ))
        seen.add(name)
        previous_quoted = value is not None and value[0] in "\"'"
        pos = match.end()


def mask(text: str, skip: Iterable[tuple[int, int]] = ()) -> str:
    """Return `text` with `skip` spans, comments, CDATA and code blanked; newlines are kept.

    Comments and CDATA go first, so that backticks inside them open no code span; processing
    instructions (`<?xml ...?>`) go last, outside code.
    """
    literal = literal_spans(text) if "<!" in text else []
    first = _blank(text, [*skip, *literal])
    masked = _blank(first, code_spans(first))
    if "<?" not in masked:
        return masked
    return _blank(masked, literal_spans(masked, kinds=_INSTRUCTION, opener=_INSTRUCTION_OPEN))


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if start >= end:
            continue
        out.append(text[pos:start])
        chunk = text[start:end]
        # Line by line: one regular-expression substitution per character costs 15 times more.
        out.append("\n".join(" " * len(line) for line in chunk.split("\n")))
        pos = end
    out.append(text[pos:])
    return "".join(out)


def code_spans(text: str) -> list[tuple[int, int]]:
    """Spans of `text` that are code: fenced blocks (whole lines) and inline code spans."""
    if "`" not in text and "~~~" not in text:
        return []
    found = line_code_spans(text)
    return found if found is not None else markdown_code_spans(text)


# markdown-it stops reading blocks nested 20 levels deep (its `maxNesting`). Each container
# adds at most two levels (a list and its item) and takes at least as many columns of the
# line that opens it: a quote's `>`, a list's marker (`-`, `*`, `+`, `1.`, `1)`) and the
# space after it, or the indentation that continues the containers around it. A container
# opens only on a line that carries its mark (a lazy line opens none). So a text none of
# whose lines starts with sixteen such characters, or with a tab among them (a tab may be
# four columns), with a mark among them, never nests so deep: indentation alone, however
# deep (nested XML), opens nothing.
_DEEP_PREFIX = re.compile(
    r"^(?=[ \t>*+\-0-9.)]*[>*+\-0-9.)])(?:[ \t>*+\-0-9.)]{16}|[ >*+\-0-9.)]*\t)", re.MULTILINE
)


# A fence that opens at column 0 is a fence at the top level, whatever came before it: it
# closes any open list or quote (a fence is no lazy continuation line), and HTML blocks and
# link definitions are not parsed here. It runs to its closing line or to the end.
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})(.*)")
# A line whose fence marker may stand after a container's marks or indentation: there the
# containers decide where the fence ends, so markdown-it does.
_FENCE_ANYWHERE = re.compile(r"[ \t>*+\-0-9.)]*(?:```|~~~)")
_FENCE_MARK = re.compile(r"`|~~~")


def line_code_spans(text: str) -> list[tuple[int, int]] | None:
    """The code spans of `text`, found line by line, where that gives what
    `markdown_code_spans` gives; None where it may not (then markdown-it decides).

    Only lines with a backtick or `~~~` matter, read in order. A fence that opens at column 0
    runs, as in CommonMark, to the first line of at most three spaces and a run of its marker
    as long, or to the end of the text. Any other line where a fence could open (a marker after
    indentation or a container's marks) is left to markdown-it. Outside fences, when every run
    of backticks opened on a line is closed on it, every such line is inside some paragraph,
    heading or indented block (blank lines and rules have none), and its spans are what a scan
    of the whole paragraph finds, since no run is left open to be closed on a later line.
    """
    if "\r" in text or _DEEP_PREFIX.search(text):
        return None  # lone CRs are lines to markdown-it; or nested deeper than it reads
    spans: list[tuple[int, int]] = []
    find, size = text.find, len(text)
    pos = 0
    while (mark := _FENCE_MARK.search(text, pos)) is not None:
        start = text.rfind("\n", 0, mark.start()) + 1
        end = find("\n", mark.start())
        if end == -1:
            end = size
        fence = _FENCE_OPEN.fullmatch(text, start, end)
        if fence is not None and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            closing = _closing_fence(fence.group(1)).search(text, end)
            stop = _unclosed_end(text) if closing is None else min(closing.end() + 1, size)
            spans.append((start, stop))
            pos = stop
            continue
        if _FENCE_ANYWHERE.match(text, start, end):
            return None  # a fence in a list item or quote, or indented
        found, closed = backtick_pairs(text, start, end)
        if not closed:
            return None
        spans.extend(found)
        pos = end
    return spans


def _unclosed_end(text: str) -> int:
    """Where a fence left open ends: the end of the text, or the start of its last line when
    that holds only spaces and tabs and no newline ends it (markdown-it counts no such line)."""
    last = text.rfind("\n") + 1
    return last if last < len(text) and not text[last:].strip(" \t") else len(text)


@cache
def _closing_fence(marker: str) -> re.Pattern[str]:
    """The line that closes a fence opened by `marker`: at most three spaces of indentation,
    a run of the marker's character at least as long, then only spaces and tabs."""
    return re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$", re.MULTILINE)


def markdown_code_spans(text: str) -> list[tuple[int, int]]:
    """`code_spans` by markdown-it's block parser: fences, and the code spans of each block."""
    starts = _line_starts(text)

    def offset(line: int) -> int:
        return starts[line] if line < len(starts) else len(text)

    spans: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for token in block_parser().parse(text):
        if token.map is None:
            continue
        first, last = token.map
        if token.type == "fence":
            spans.append((offset(first), offset(last)))
        elif token.type in ("inline", "code_block") and (first, last) not in seen:
            seen.add((first, last))
            spans.extend(inline_code(text, offset(first), offset(last)))
    return spans


def inline_code(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Code spans of `text[start:end]` (one paragraph), by the CommonMark backtick rules."""
    return backtick_spans(text, start, end)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    find = text.find
    pos = find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return starts
