"""What a library looks like over MCP, computed once per load: prompts, resources, search.

A `Snapshot` is immutable and built off the event loop; handlers only read it, so no
request re-derives anything from the library.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import compress
from operator import is_not
from typing import Any
from urllib.parse import unquote

from tallinn.library import ArgType, Argument, Command, Component, Library, format_value
from tallinn.library.model import Document

SCHEME = "tallinn://"
MIME = "text/markdown"
_MAX_URI = 2048
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
# Per-term weights; a term that hits every field scores 1.0.
_W_NAME_EXACT, _W_NAME_PREFIX, _W_NAME_PART = 10.0, 6.0, 4.0
_W_TAG_EXACT, _W_TAG_PREFIX = 3.0, 2.0
_W_DESC_WORD, _W_DESC_PART = 2.0, 1.0
_W_CATEGORY = 1.0
_W_MAX = _W_NAME_EXACT + _W_TAG_EXACT + _W_DESC_WORD + _W_CATEGORY


class UriError(ValueError):
    """A resource URI that names nothing; `traversal` is set when it tries to leave the library."""

    def __init__(self, message: str, *, traversal: bool = False) -> None:
        super().__init__(message)
        self.traversal = traversal


@dataclass(frozen=True, slots=True)
class SearchEntry:
    name: str
    category: str
    description: str
    tags: tuple[str, ...]
    # The description's distinct words, lowercased. A tuple of interned strings: a few
    # words each, so a scan is as quick as a set, at a fraction of the memory.
    words: tuple[str, ...]
    lowered: str  # the description, lowercased


@dataclass(frozen=True, slots=True)
class Hit:
    command: Command
    score: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One loaded library and its MCP views. Handlers take one and use only it."""

    library: Library
    loaded_at: float
    # prompts/list and resources/list entries in their wire form, built once per load: plain
    # JSON data takes a third of the memory of the SDK's models, and the SDK checks results
    # against the protocol on the way out either way.
    prompts: tuple[dict[str, Any], ...]
    resources: tuple[dict[str, Any], ...]
    texts: Mapping[str, str]  # resource URI -> text
    index: tuple[SearchEntry, ...]
    # What each command and component gave, by `commands/<name>` or `components/<name>`, and
    # where its views are in the tuples above: for the next build to copy.
    parts: Mapping[str, _Parts] = field(default_factory=dict, compare=False, repr=False)
    positions: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def search(self, query: str, limit: int) -> list[Hit]:
        """Rank commands for `query` by name, tags, description and category; best first."""
        terms = _WORD.findall(query.lower())
        if not terms:
            return []
        hits: list[Hit] = []
        phrase = " ".join(terms)
        for entry in self.index:
            total = sum(_term_score(entry, term) for term in terms)
            if total <= 0:
                continue
            score = total / (_W_MAX * len(terms))
            if len(terms) > 1 and phrase in entry.lowered:
                score = min(1.0, score + 0.1)
            hits.append(Hit(self.library.commands[entry.name], round(score, 4)))
        hits.sort(key=lambda h: (-h.score, h.command.name))
        return hits[:limit]


def _term_score(entry: SearchEntry, term: str) -> float:
    score = 0.0
    if term == entry.name:
        score += _W_NAME_EXACT
    elif entry.name.startswith(term):
        score += _W_NAME_PREFIX
    elif term in entry.name:
        score += _W_NAME_PART
    if term in entry.tags:
        score += _W_TAG_EXACT
    elif any(tag.startswith(term) for tag in entry.tags):
        score += _W_TAG_PREFIX
    if term in entry.words:
        score += _W_DESC_WORD
    elif term in entry.lowered:
        score += _W_DESC_PART
    if term in entry.category.split("/"):
        score += _W_CATEGORY
    return score


@dataclass(frozen=True, slots=True)
class _Parts:
    """The views of one command or component, and the record they were made from."""

    document: Document
    uri: str
    resource: dict[str, Any]
    prompt: dict[str, Any] | None = None
    entry: SearchEntry | None = None


def build_snapshot(library: Library, previous: Snapshot | None = None) -> Snapshot:
    """Given a loaded library, compute every MCP view of it.

    With `previous`, and the same command and component names in both, only the views of
    the records that are not the very records `previous` has (a rebuild keeps the records of
    unchanged files) are made again; the rest is copied, in C, from `previous`.
    """
    before = previous.library if previous is not None else None
    if (previous is None or before is None
            or library.commands.keys() != before.commands.keys()
            or library.components.keys() != before.components.keys()):
        return _build_all(library)
    # Both dicts are sorted by name, so equal keys come in the same order.
    commands = list(compress(library.commands.values(),
                             map(is_not, library.commands.values(), before.commands.values())))
    components = list(compress(
        library.components.values(),
        map(is_not, library.components.values(), before.components.values())))
    if not commands and not components:
        return replace(previous, library=library, loaded_at=time.time())
    parts = dict(previous.parts)
    prompts = list(previous.prompts)
    resources = list(previous.resources)
    texts = dict(previous.texts)
    index = list(previous.index)
    offset = len(library.components)
    for component in components:
        made = parts[f"components/{component.name}"] = _component(component)
        resources[previous.positions[f"components/{component.name}"]] = made.resource
        texts[made.uri] = component.source
    for command in commands:
        key = f"commands/{command.name}"
        made = parts[key] = _command(command)
        at = previous.positions[key]
        prompts[at], resources[offset + at], index[at] = _views(made)
        texts[made.uri] = command.source
    return Snapshot(library, time.time(), tuple(prompts), tuple(resources), texts,
                    tuple(index), parts, previous.positions)


def _views(made: _Parts) -> tuple[dict[str, Any], dict[str, Any], SearchEntry]:
    """A command's prompt, resource and search entry (a command's parts have all three)."""
    if made.prompt is None or made.entry is None:
        raise TypeError(f"{made.uri} is not a command")
    return made.prompt, made.resource, made.entry


def _build_all(library: Library) -> Snapshot:
    parts: dict[str, _Parts] = {}
    positions: dict[str, int] = {}
    for at, component in enumerate(library.components.values()):
        key = f"components/{component.name}"
        parts[key] = _component(component)
        positions[key] = at
    for at, command in enumerate(library.commands.values()):
        key = f"commands/{command.name}"
        parts[key] = _command(command)
        positions[key] = at
    commands = [p for p in parts.values() if p.prompt is not None]
    return Snapshot(
        library, time.time(),
        prompts=tuple(p.prompt for p in commands if p.prompt is not None),
        resources=tuple(p.resource for p in parts.values()),
        texts={p.uri: p.document.source for p in parts.values()},
        index=tuple(p.entry for p in commands if p.entry is not None),
        parts=parts,
        positions=positions,
    )


def _component(component: Component) -> _Parts:
    uri = f"{SCHEME}components/{component.name}"
    return _Parts(component, uri, _resource(
        uri, f"components/{component.name}", component.name, component.description,
        component.source,
    ))


def _command(command: Command) -> _Parts:
    uri = f"{SCHEME}commands/{command.name}"
    resource = _resource(
        uri, f"commands/{command.name}", f"/{command.name}",
        f"Source of /{command.name}: {command.description}", command.source,
    )
    lowered = command.description.lower()
    entry = SearchEntry(
        name=command.name,
        category=command.category,
        description=command.description,
        tags=tuple(t.lower() for t in command.tags),
        words=tuple(dict.fromkeys(map(sys.intern, _WORD.findall(lowered)))),
        lowered=lowered,
    )
    return _Parts(command, uri, resource, _prompt(command), entry)


def _prompt(command: Command) -> dict[str, Any]:
    """A `types.Prompt` in its wire form."""
    return {
        "name": command.name,
        "description": command.description,
        "arguments": [
            {"name": a.name, "description": describe_argument(a), "required": a.required}
            for a in command.arguments
        ],
    }


def _resource(uri: str, name: str, title: str, description: str, text: str) -> dict[str, Any]:
    """A `types.Resource` in its wire form."""
    return {
        "uri": uri, "name": name, "title": title, "description": description,
        "mimeType": MIME, "size": len(text.encode("utf-8")),
    }


def describe_argument(argument: Argument) -> str:
    """Given an enum argument, return `Focus (one of: a, b; default a)`: MCP has no types."""
    notes: list[str] = []
    if argument.type is ArgType.ENUM:
        notes.append(f"one of: {', '.join(argument.enum)}")
    elif argument.type is not ArgType.STRING:
        notes.append(argument.type.value)
    if argument.pattern:
        notes.append(f"matching {argument.pattern}")
    if argument.default is not None:
        notes.append(f"default {format_value(argument.default)}")
    text = argument.description or argument.name
    return f"{text} ({'; '.join(notes)})" if notes else text


def parse_uri(uri: str) -> tuple[str, str]:
    """Given `tallinn://components/a/b`, return `("components", "a/b")`.

    Raises `UriError`; with `traversal=True` for `..`, `%2e%2e`, absolute paths and the like.
    """
    if len(uri) > _MAX_URI:
        raise UriError("resource URI is too long")
    decoded = uri
    for _ in range(3):  # %252e%252e decodes twice to ..
        step = unquote(decoded)
        if step == decoded:
            break
        decoded = step
    if "\x00" in decoded or "\\" in decoded:
        raise UriError("invalid resource URI", traversal=True)
    if (
        decoded.startswith(("/", "~"))
        or decoded.lower().startswith("file:")
        or _DRIVE.match(decoded)
    ):
        raise UriError("invalid resource URI", traversal=True)
    if not decoded.startswith(SCHEME):
        raise UriError(f"unknown resource {_clip(uri)}: Tallinn resources start with {SCHEME}")
    kind, _, path = decoded[len(SCHEME) :].partition("/")
    segments = path.split("/")
    if any(s in ("..", ".") for s in segments) or "" in segments[:-1] or path.startswith("/"):
        raise UriError("invalid resource URI", traversal=True)
    if kind not in ("components", "commands") or not path or path.endswith("/"):
        raise UriError(f"unknown resource {_clip(uri)}")
    return kind, path


def _clip(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:117] + "...")


def command_summary(command: Command) -> dict[str, Any]:
    """The `list_commands` record of a command."""
    return {
        "name": command.name,
        "category": command.category,
        "description": command.description,
        "argument_hint": command.argument_hint,
        "arguments": [
            {
                "name": a.name,
                "description": a.description,
                "type": a.type.value,
                "required": a.required,
                **({"enum": list(a.enum)} if a.enum else {}),
                **({"default": a.default} if a.default is not None else {}),
            }
            for a in command.arguments
        ],
        "tags": list(command.tags),
        "critical": command.critical,
        "examples": [
            {"description": e.description, "args": dict(e.args)} for e in command.examples
        ],
    }
