"""The calls a Python code block makes, for the Python rules.

A block is parsed with `ast`, so only real calls count: `eval` in a comment, a string or a
method name (`model.eval()`) is not a call of the builtin. Names are resolved through the
block's imports (`import subprocess as sp; sp.run` is `subprocess.run`,
`from re import compile` makes `compile` mean `re.compile`).

Prompts often hold fragments that do not parse (`...` lines, placeholders, a lone `else:`).
Such a block is read token by token instead (comments and strings are still not code),
without import resolution, and `error` says why it did not parse.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field

from tallinn.gates.rules.security._source import Snippet


@dataclass(frozen=True, slots=True)
class Call:
    """A call in a block: dotted `name`, the source text of its arguments, where it is.

    `offset` is the offset of the call in the snippet text.
    """

    name: str
    offset: int
    args: tuple[str, ...] = ()
    keywords: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reference:
    """A dotted name used in the block (`ssl.CERT_NONE`), resolved through imports."""

    name: str
    offset: int


@dataclass(frozen=True, slots=True)
class PythonCode:
    """What a Python block does that the rules look at."""

    calls: tuple[Call, ...]
    references: tuple[Reference, ...]
    error: str | None = None  # why the block did not parse; then it was read by tokens


def analyse(snippet: Snippet) -> PythonCode:
    """The calls and names of a Python snippet; cached on the snippet."""
    cached = snippet.cache.get("python")
    if isinstance(cached, PythonCode):
        return cached
    try:
        tree = ast.parse(snippet.text)
        code = _from_tree(tree, snippet.text)
    except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
        line = getattr(exc, "lineno", None)
        message = getattr(exc, "msg", str(exc))
        code = _from_tokens(snippet.text, f"line {line}: {message}" if line else message)
    except (RecursionError, MemoryError):
        # `a+a+...+a` a hundred thousand times: Python's own parser (or `ast.unparse`)
        # gives up; the tokens are still read, without recursion.
        code = _from_tokens(snippet.text, "nested too deeply for Python's parser")
    snippet.cache["python"] = code
    return code


def _from_tree(tree: ast.Module, text: str) -> PythonCode:
    # One walk: imports are read, and the nodes the rules look at kept in order, to be named
    # once every import (even one after its use) is known.
    aliases: dict[str, str] = {}
    used: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call | ast.Attribute | ast.Name):
            used.append(node)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    offsets = _Offsets(text)
    calls: list[Call] = []
    references: list[Reference] = []
    for node in used:
        if isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name is None:
                continue
            calls.append(Call(
                name,
                offsets.of(node.lineno, node.col_offset),
                tuple(ast.unparse(a) for a in node.args),
                {k.arg: ast.unparse(k.value) for k in node.keywords if k.arg is not None},
            ))
        elif isinstance(node, ast.Attribute | ast.Name) and isinstance(node.ctx, ast.Load):
            name = _dotted(node, aliases)
            if name is not None and "." in name:
                references.append(
                    Reference(name, offsets.of(node.lineno, node.col_offset))
                )
    return PythonCode(tuple(calls), tuple(references))


def _dotted(node: ast.expr, aliases: Mapping[str, str]) -> str | None:
    """Given the node of `sp.run`, return `subprocess.run` (None when not a plain name)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return ("?." + ".".join(reversed(parts))) if parts else None
    parts.append(aliases.get(node.id, node.id))
    return ".".join(reversed(parts))


def _line_offsets(text: str) -> list[int]:
    offsets = [0]
    for line in text.split("\n")[:-1]:
        offsets.append(offsets[-1] + len(line) + 1)
    return offsets


class _Offsets:
    """Text offsets of `ast` positions (1-based line, UTF-8 byte column), each line encoded
    once however many nodes it holds."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = _line_offsets(text)
        self._encoded: dict[int, tuple[bytes, bool]] = {}

    def of(self, line: int, byte_col: int) -> int:
        start = self.starts[min(line, len(self.starts)) - 1]
        if line not in self._encoded:
            end = self.text.find("\n", start)
            row = self.text[start:] if end < 0 else self.text[start:end]
            encoded = row.encode("utf-8")
            self._encoded[line] = (encoded, len(encoded) == len(row))
        encoded, ascii_only = self._encoded[line]
        if ascii_only:
            return start + min(byte_col, len(encoded))
        return start + len(encoded[:byte_col].decode("utf-8", "ignore"))


def _from_tokens(text: str, error: str) -> PythonCode:
    """Calls found token by token in code that does not parse: `NAME(.NAME)* (`."""
    tokens: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            tokens.append(token)
    except (tokenize.TokenError, SyntaxError):
        pass  # keep the tokens read so far
    significant = [t for t in tokens if t.type not in _IGNORED]
    offsets = _line_offsets(text)
    calls: list[Call] = []
    index = 0
    while index < len(significant):
        token = significant[index]
        if token.type != tokenize.NAME:
            index += 1
            continue
        end = index
        while (end + 2 < len(significant) and significant[end + 1].string == "."
               and significant[end + 2].type == tokenize.NAME):
            end += 2
        after = significant[end + 1] if end + 1 < len(significant) else None
        before = significant[index - 1].string if index else ""
        if after is not None and after.string == "(" and before not in ("def", "class"):
            # After a `.` the name is an attribute of an expression: `x().eval(...)`.
            prefix = "?." if before == "." else ""
            name = prefix + "".join(t.string for t in significant[index:end + 1])
            args, keywords = _arguments(significant, end + 1)
            line, col = token.start
            calls.append(Call(name, offsets[min(line, len(offsets)) - 1] + col, args, keywords))
        index = end + 1
    return PythonCode(tuple(calls), (), error)


# Line ends stay: in a fragment with an unclosed bracket every later line end is an NL, and a
# name after one is not an attribute of what came before.
_IGNORED = frozenset({tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING,
                      tokenize.ENDMARKER})
_LINE_ENDS = frozenset({tokenize.NL, tokenize.NEWLINE})


def _arguments(
    tokens: list[tokenize.TokenInfo], open_index: int
) -> tuple[tuple[str, ...], dict[str, str]]:
    """The arguments of the call whose `(` is `tokens[open_index]`, as source text."""
    depth = 0
    current: list[str] = []
    parts: list[list[str]] = []
    for token in tokens[open_index:]:
        if token.type in _LINE_ENDS:
            continue
        if token.string in ("(", "[", "{") and token.type == tokenize.OP:
            depth += 1
            if depth == 1:
                continue
        elif token.string in (")", "]", "}") and token.type == tokenize.OP:
            depth -= 1
            if depth == 0:
                break
        if depth == 1 and token.string == ",":
            parts.append(current)
            current = []
            continue
        current.append(token.string)
    if current:
        parts.append(current)
    args: list[str] = []
    keywords: dict[str, str] = {}
    for part in parts:
        if len(part) > 2 and part[1] == "=":
            keywords[part[0]] = "".join(part[2:])
        else:
            args.append("".join(part))
    return tuple(args), keywords
