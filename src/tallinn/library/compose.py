"""Compose commands from components into render-ready templates.

A body is tokenised once into literal text, placeholders (`{{name}}`), `$ARGUMENTS`
and includes (`<include component="group/name"/>`). Includes are expanded recursively;
each component is expanded once and shared. The result of composing a command is a
`Template`: literal strings interleaved with slots, so rendering is a join.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tallinn.library.diagnostics import Diagnostic, LineIndex, Severity
from tallinn.library.files import Limits
from tallinn.library.model import Command, Component, Document
from tallinn.library.scanning import ScanCounter

ALL_ARGUMENTS = "$ARGUMENTS"
INCLUDE_FORM = '<include component="group/name"/>'

_TOKEN = re.compile(
    r"""
    (?=[\\{$<])    # every token starts with one of these: the scan skips other text at C speed
    (?:\\(?P<escaped>\{\{|\$ARGUMENTS|<include\b)      # a backslash makes a token literal
    |(?P<placeholder>\{\{\s*(?P<name>[A-Za-z_][A-Za-z0-9_-]*)\s*\}\})
    |(?P<open>\{\{)                                     # a '{{' that opens no placeholder
    |(?P<arguments>\$ARGUMENTS)
    |(?P<include><include\b[^>]*>?))
    """,
    re.VERBOSE,
)
# A whole native include; group 1 or 2 holds the component name, as written.
INCLUDE = re.compile(r"""<include\s+component\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)')\s*/>""")


@dataclass(frozen=True, slots=True)
class Slot:
    """Where a value goes: an argument name, or `$ARGUMENTS` for the whole argument string."""

    name: str


Part = str | Slot


@dataclass(frozen=True, slots=True)
class IncludeNode:
    """One include in a command's include tree."""

    component: str
    children: tuple[IncludeNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Template:
    """A composed command: its text in pieces, with an empty piece where each slot goes.

    The pieces are kept as composed, not joined: the text of a component is one string shared
    by every command that includes it, so a library holds each component's text once.
    """

    pieces: tuple[str, ...]
    slots: tuple[str, ...]  # the argument name (or `$ARGUMENTS`) of each slot, in order
    slot_at: tuple[int, ...]  # the index in `pieces` of each slot
    placeholders: frozenset[str]
    uses_all_arguments: bool
    includes: tuple[IncludeNode, ...] = ()

    def fill(self, values: Mapping[str, str]) -> str:
        """Join the pieces with values; `values` holds a string for every slot name."""
        out = list(self.pieces)
        for index, slot in zip(self.slot_at, self.slots, strict=True):
            out[index] = values[slot]
        return "".join(out)

    @property
    def text(self) -> str:
        """The composed source, with placeholders written back as `{{name}}`."""
        return self.fill({s: ALL_ARGUMENTS if s == ALL_ARGUMENTS else f"{{{{{s}}}}}"
                          for s in self.slots})


@dataclass(frozen=True, slots=True)
class _Include:
    component: str
    offset: int  # where in the body it is written


@dataclass(slots=True)
class _Expanded:
    parts: list[Part]
    needs: set[str]  # argument names used by placeholders, here or in included components
    uses_all: bool
    tree: tuple[IncludeNode, ...]
    ok: bool = True


@dataclass(slots=True)
class _Tokens:
    body: str
    body_line: int  # the file line on which the body starts
    parts: list[Part | _Include] = field(default_factory=list)
    placeholders: dict[str, int] = field(default_factory=dict)  # name -> offset of first use
    uses_all: bool = False
    failed: bool = False  # past a limit: the body cannot be composed
    lines: LineIndex | None = None

    def where(self, offset: int) -> tuple[int, int]:
        """The file line and column of a body offset. The body's lines are indexed on the
        first call, which only a finding makes: a clean body is never indexed."""
        if self.lines is None:
            self.lines = LineIndex(self.body)
        line, col = self.lines.line_col(offset)
        return line + self.body_line - 1, col


def tokenize(
    doc: Document, diagnostics: list[Diagnostic], limits: Limits | None = None
) -> _Tokens:
    """Split a body into literal text, slots and includes; report malformed tokens.

    One pass over the body: positions come from a `LineIndex` built once, and tokenising stops
    past `limits.max_placeholders` slots and includes (V304).
    """
    body = doc.body
    ScanCounter.searched += len(body)  # one pass of the pattern over the body
    tokens = _Tokens(body, doc.body_line)
    where = tokens.where
    pos = 0
    most = (limits or Limits()).max_placeholders
    slots = 0

    def literal(text: str) -> None:
        if text:
            tokens.parts.append(text)

    for match in _TOKEN.finditer(body):
        kind = match.lastgroup
        if kind in ("placeholder", "arguments", "include"):
            slots += 1
            if slots > most:
                line, col = where(match.start())
                diagnostics.append(Diagnostic(
                    "V304",
                    f"more than {most:,} placeholders and includes in one body "
                    "([limits] max_placeholders in tallinn.toml)",
                    doc.path, line, col,
                ))
                tokens.failed = True
                return tokens
        literal(body[pos : match.start()])
        pos = match.end()
        if kind == "escaped":
            literal(match.group("escaped"))
        elif kind == "placeholder":
            name = match.group("name")
            tokens.parts.append(Slot(name))
            if name not in tokens.placeholders:
                tokens.placeholders[name] = match.start()
        elif kind == "arguments":
            tokens.parts.append(Slot(ALL_ARGUMENTS))
            tokens.uses_all = True
        elif kind == "open":
            line, col = where(match.start())
            diagnostics.append(Diagnostic(
                "V303",
                "'{{' does not open a valid placeholder such as {{name}}; "
                "write '\\{{' for a literal '{{'",
                doc.path, line, col,
            ))
            literal(match.group())
        else:
            tag = match.group("include")
            full = INCLUDE.match(body, match.start())
            if full is None:
                line, col = where(match.start())
                diagnostics.append(Diagnostic(
                    "V202",
                    f"malformed include {tag.strip()[:60]!r}: write {INCLUDE_FORM} "
                    "(or '\\<include' for literal text)",
                    doc.path, line, col,
                ))
                literal(tag)
                continue
            pos = full.end()
            name = (full.group(1) if full.group(1) is not None else full.group(2)).strip()
            tokens.parts.append(_Include(name.removesuffix(".md"), match.start()))
    literal(body[pos:])
    return tokens


class Composer:
    """Expands includes for a set of components; each component is expanded once."""

    def __init__(
        self,
        components: Mapping[str, Component],
        known_missing: Mapping[str, str],
        limits: Limits | None = None,
    ) -> None:
        self.components = components
        self.known_missing = known_missing  # component name -> path of a file that failed
        self.limits = limits or Limits()
        self.diagnostics: list[Diagnostic] = []
        # library path -> the components its body includes, found or not: what a rebuild
        # composes again when one of them changes
        self.includes: dict[str, frozenset[str]] = {}
        self._tokens: dict[str, _Tokens] = {}
        # A missing component is often included by many commands: its "did you mean" is
        # worked out once a build (difflib compares it with every component's name).
        self._suggestions: dict[str, str] = {}
        self._expanded: dict[str, _Expanded] = {}
        self._heights: dict[str, int] = {}
        self._reported_cycles: set[frozenset[str]] = set()

    def _component_tokens(self, name: str) -> _Tokens:
        if name not in self._tokens:
            component = self.components[name]
            tokens = tokenize(component, self.diagnostics, self.limits)
            # A file ends with a newline, and so does the include line that names it:
            # drop the component's own, so an include on a line of its own adds no blank line.
            if tokens.parts and isinstance(tokens.parts[-1], str):
                tokens.parts[-1] = tokens.parts[-1].removesuffix("\n")
            self._check_declared(component, tokens)
            self._tokens[name] = tokens
            self.includes[component.path] = _included(tokens)
        return self._tokens[name]

    def _check_declared(self, doc: Document, tokens: _Tokens) -> None:
        declared = {a.name for a in doc.arguments}
        for name, offset in tokens.placeholders.items():
            if name not in declared:
                line, col = tokens.where(offset)
                kind = "command" if isinstance(doc, Command) else "component"
                self.diagnostics.append(Diagnostic(
                    "V301",
                    f"placeholder '{{{{{name}}}}}' is not a declared argument of {kind} "
                    f"'{doc.name}'; declare it under 'arguments' "
                    "or write '\\{{' for literal text",
                    doc.path, line, col,
                ))

    def expand_component(self, name: str, stack: tuple[str, ...] = ()) -> _Expanded:
        if name in self._expanded:
            return self._expanded[name]
        component = self.components[name]
        result = self._expand(component, self._component_tokens(name), (*stack, name))
        self._expanded[name] = result
        self._check_unused(component, result)
        return result

    def height(self, name: str) -> int:
        """How many levels of includes `name` is, itself included: 1 for a component that
        includes nothing. Found without recursion, so any depth of includes is safe to measure;
        an include that closes a cycle is not followed (the cycle is reported as V204)."""
        if name in self._heights:
            return self._heights[name]
        on_path: set[str] = {name}
        stack: list[tuple[str, list[str]]] = [(name, self._children(name))]
        while stack:
            current, pending = stack[-1]
            while pending:
                child = pending.pop()
                if child in self._heights or child in on_path:
                    continue
                on_path.add(child)
                stack.append((child, self._children(child)))
                break
            else:
                stack.pop()
                on_path.discard(current)
                below = [self._heights[c] for c in set(self._children(current))
                         if c in self._heights]
                self._heights[current] = 1 + max(below, default=0)
        return self._heights[name]

    def _children(self, name: str) -> list[str]:
        """The components `name` includes that exist, in reverse order of writing."""
        tokens = self._component_tokens(name)
        return [p.component for p in reversed(tokens.parts)
                if isinstance(p, _Include) and p.component in self.components]

    def _expand(self, doc: Document, tokens: _Tokens, stack: tuple[str, ...]) -> _Expanded:
        result = _Expanded([], set(tokens.placeholders), tokens.uses_all, (), not tokens.failed)
        tree: list[IncludeNode] = []
        for part in tokens.parts:
            if not isinstance(part, _Include):
                result.parts.append(part)
                continue
            target = part.component
            if target in stack:
                cycle = (*stack[stack.index(target):], target)
                key = frozenset(cycle)
                if key not in self._reported_cycles:
                    self._reported_cycles.add(key)
                    self.diagnostics.append(Diagnostic(
                        "V204", "include cycle: " + " → ".join(cycle),
                        doc.path, *tokens.where(part.offset),
                    ))
                result.ok = False
                continue
            if target not in self.components:
                if target in self.known_missing:
                    message = (f"component '{target}' could not be loaded; "
                               f"see the errors in {self.known_missing[target]}")
                else:
                    message = f"component '{target}' not found" + self.suggestion(target)
                self.diagnostics.append(Diagnostic("V201", message, doc.path,
                                                   *tokens.where(part.offset)))
                result.ok = False
                continue
            most = self.limits.max_include_depth
            if len(stack) + self.height(target) > most:
                # Checked before expanding, so composing never goes deeper than the limit.
                self.diagnostics.append(Diagnostic(
                    "V206",
                    f"including '{target}' makes a chain of includes more than {most} deep "
                    "([limits] max_include_depth in tallinn.toml)",
                    doc.path, *tokens.where(part.offset),
                ))
                result.ok = False
                continue
            child = self.expand_component(target, stack)
            if not child.ok:
                # The cause is reported in the component's own file; a command also says
                # why it is left out, so that nothing disappears without a word.
                if isinstance(doc, Command):
                    self.diagnostics.append(Diagnostic(
                        "V205",
                        f"component '{target}' has errors, so command '{doc.name}' "
                        "cannot be composed",
                        doc.path, *tokens.where(part.offset),
                    ))
                result.ok = False
                continue
            result.parts.extend(child.parts)
            result.needs |= child.needs
            result.uses_all = result.uses_all or child.uses_all
            tree.append(IncludeNode(target, child.tree))
            if isinstance(doc, Command):
                declared = {a.name for a in doc.arguments}
                for needed in sorted(child.needs - declared):
                    self.diagnostics.append(Diagnostic(
                        "V203",
                        f"component '{target}' needs argument '{needed}', which command "
                        f"'{doc.name}' does not declare",
                        doc.path, *tokens.where(part.offset),
                    ))
                    result.ok = False
        result.tree = tuple(tree)
        return result

    def _check_unused(self, doc: Document, expanded: _Expanded) -> None:
        if expanded.uses_all or not expanded.ok:
            return
        front: list[str] | None = None  # the front matter's lines, split once per file
        for arg in doc.arguments:
            if arg.name not in expanded.needs:
                if front is None:
                    front = doc.source.split("\n", doc.body_line)[: doc.body_line]
                line, col = _argument_mark(front, arg.name)
                self.diagnostics.append(Diagnostic(
                    "V302",
                    f"argument '{arg.name}' is declared but never used",
                    doc.path, line, col, Severity.WARNING,
                ))

    def compose(self, command: Command) -> Template | None:
        """Compose one command; `None` when it cannot be (the reasons are in diagnostics)."""
        before = len(self.diagnostics)
        tokens = tokenize(command, self.diagnostics, self.limits)
        self.includes[command.path] = _included(tokens)
        self._check_declared(command, tokens)
        expanded = self._expand(command, tokens, ())
        # The command's own errors only: a component's are reported once, while composing the
        # first command that reaches it, and must not fail that command alone.
        failed = any(d.is_error and d.path == command.path for d in self.diagnostics[before:])
        if not expanded.ok or failed:
            return None
        self._check_unused(command, expanded)
        return _template(expanded)

    def suggestion(self, name: str) -> str:
        """` (did you mean 'a' or 'b'?)` for a component name not found, or empty."""
        found = self._suggestions.get(name)
        if found is None:
            found = self._suggestions[name] = suggest(name, self.components)
        return found

    def check_all_components(self) -> None:
        """Expand every component, so that unused ones are checked too."""
        for name in sorted(self.components):
            self.expand_component(name)


def _included(tokens: _Tokens) -> frozenset[str]:
    return frozenset(p.component for p in tokens.parts if isinstance(p, _Include))


def _template(expanded: _Expanded) -> Template:
    pieces: list[str] = []
    slots: list[str] = []
    slot_at: list[int] = []
    for part in expanded.parts:
        if isinstance(part, Slot):
            slot_at.append(len(pieces))
            slots.append(part.name)
            pieces.append("")
        else:
            pieces.append(part)
    return Template(
        tuple(pieces), tuple(slots), tuple(slot_at), frozenset(expanded.needs),
        expanded.uses_all, expanded.tree,
    )


def _argument_mark(front: list[str], name: str) -> tuple[int, int]:
    """Find the line declaring argument `name` in the front matter, for a precise warning."""
    pattern = re.compile(r"^(\s*-?\s*name:\s*['\"]?)" + re.escape(name) + r"['\"]?\s*$")
    for number, line in enumerate(front, 1):
        found = pattern.match(line)
        if found:
            return number, len(found.group(1)) + 1
    return 1, 1


def suggest(name: str, names: Mapping[str, object]) -> str:
    from tallinn.wording import close_matches

    close = close_matches(name, list(names), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def walk(nodes: tuple[IncludeNode, ...]) -> Iterator[tuple[int, IncludeNode]]:
    """Yield (depth, node) for an include tree, depth first."""
    stack = [(0, node) for node in reversed(nodes)]
    while stack:
        depth, node = stack.pop()
        yield depth, node
        stack.extend((depth + 1, child) for child in reversed(node.children))
