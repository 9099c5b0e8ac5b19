"""Parse YAML within limits: front matter and test files are written by people, and hostile.

A few hundred bytes of YAML with aliases stand for millions of nodes ("billion laughs"), and
a deep enough nesting exhausts the stack. PyYAML builds its node graph first and expands
aliases only when the data is constructed (or, worse, written out by the front-matter
cache), so the limits are checked here, while the graph is composed, event by event:

- every node counts, and an alias counts as the whole node it names, so the total is the
  size of the data once expanded; past `max_yaml_nodes` composing stops;
- past `max_yaml_aliases` aliases composing stops, however small each is;
- nesting deeper than `max_yaml_depth` stops it too; the composer keeps its own stack, so no
  depth, allowed or not, can reach Python's recursion limit.

An anchor names its node once the node is complete, so an alias inside the node it names (a
recursive structure, which JSON cannot carry) is an undefined alias. Events come from
libyaml when PyYAML has it, so scanning and parsing stay at C speed.

Most front matter has no anchors, so its graph is a tree of strings, numbers, booleans and
nulls: such a tree is measured and built into data in one loop (`_construct_tree`), which
gives what PyYAML's constructor gives for a fraction of its calls; any other tag is left to
PyYAML's constructor.

>>> node, data = load("a: &x [1, 2]\\nb: *x\\n", Limits())
>>> data
{'a': [1, 2], 'b': [1, 2]}
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from tallinn.library.files import Limits

_Parser: Any
try:  # libyaml is an order of magnitude faster; PyYAML ships it in its wheels.
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - only on builds without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)


class YamlLimitError(yaml.MarkedYAMLError):
    """The YAML goes past one of the `[limits]`: `problem` says which, `problem_mark` where."""


class _Frame:
    """A collection being composed: its node, expanded size, anchor and a key awaiting its
    value (for a mapping)."""

    __slots__ = ("anchor", "key", "node", "size")

    def __init__(self, node: SequenceNode | MappingNode, anchor: str | None) -> None:
        self.node = node
        self.size = 1
        self.anchor = anchor
        self.key: Node | None = None


class LimitedLoader(_Parser, SafeConstructor, Resolver):  # type: ignore[misc]
    """PyYAML's safe loader, composing with the limits of the module docstring."""

    def __init__(self, stream: str, limits: Limits) -> None:
        _Parser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.limits = limits
        self.nodes = 0  # expanded nodes composed so far: what the tests count
        self.aliases = 0

    def get_single_node(self) -> Node | None:
        self.get_event()  # stream start
        document = None
        if not self.check_event(StreamEndEvent):
            document = self._compose_document()
        if not self.check_event(StreamEndEvent):
            event = self.get_event()
            raise ComposerError("expected a single document in the stream",
                                document.start_mark if document is not None else None,
                                "but found another document", event.start_mark)
        self.get_event()  # stream end
        return document

    def _count(self, size: int, mark: Any) -> None:
        self.nodes += size
        if self.nodes > self.limits.max_yaml_nodes:
            raise YamlLimitError(
                None, None,
                f"more than {self.limits.max_yaml_nodes:,} YAML nodes, aliases counted "
                "expanded ([limits] max_yaml_nodes in tallinn.toml)",
                mark,
            )

    def _compose_document(self) -> Node:
        self.get_event()  # document start
        anchors: dict[str, tuple[Node, int]] = {}
        stack: list[_Frame] = []
        root: Node | None = None

        def attach(node: Node, size: int) -> None:
            nonlocal root
            if not stack:
                root = node
                return
            parent = stack[-1]
            parent.size += size
            if isinstance(parent.node, SequenceNode):
                parent.node.value.append(node)
            elif parent.key is None:
                parent.key = node
            else:
                parent.node.value.append((parent.key, node))
                parent.key = None

        def name(anchor: str | None, node: Node, size: int, mark: Any) -> None:
            if anchor is None:
                return
            if anchor in anchors:
                raise ComposerError(f"found duplicate anchor {anchor!r}; first occurrence",
                                    anchors[anchor][0].start_mark, "second occurrence", mark)
            anchors[anchor] = (node, size)

        while root is None:
            event = self.get_event()
            # The stubs type marks of PyYAML and of libyaml apart; both carry an `index`.
            start: Any = event.start_mark
            end: Any = event.end_mark
            if isinstance(event, AliasEvent):
                self.aliases += 1
                if self.aliases > self.limits.max_yaml_aliases:
                    raise YamlLimitError(
                        None, None,
                        f"more than {self.limits.max_yaml_aliases:,} YAML aliases "
                        "([limits] max_yaml_aliases in tallinn.toml)",
                        start,
                    )
                if event.anchor not in anchors:
                    raise ComposerError(None, None, f"found undefined alias {event.anchor!r}",
                                        start)
                target, size = anchors[event.anchor]
                self._count(size, start)
                attach(target, size)
            elif isinstance(event, ScalarEvent):
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolve(ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
                node: Node = ScalarNode(tag, event.value, start, end,
                                        style=event.style)
                self._count(1, start)
                name(event.anchor, node, 1, start)
                attach(node, 1)
            elif isinstance(event, SequenceStartEvent | MappingStartEvent):
                if len(stack) >= self.limits.max_yaml_depth:
                    raise YamlLimitError(
                        None, None,
                        f"YAML nested more than {self.limits.max_yaml_depth} levels deep "
                        "([limits] max_yaml_depth in tallinn.toml)",
                        start,
                    )
                kind = SequenceNode if isinstance(event, SequenceStartEvent) else MappingNode
                tag = event.tag
                if tag is None or tag == "!":
                    tag = self.resolve(kind, None, event.implicit)  # type: ignore[no-untyped-call]
                collection = kind(tag, [], start, None, flow_style=event.flow_style)
                self._count(1, start)
                stack.append(_Frame(collection, event.anchor))
            elif isinstance(event, SequenceEndEvent | MappingEndEvent):
                frame = stack.pop()
                frame.node.end_mark = end
                name(frame.anchor, frame.node, frame.size, frame.node.start_mark)
                attach(frame.node, frame.size)
        self.get_event()  # document end
        return root


def load(text: str, limits: Limits) -> tuple[Node | None, Any]:
    """Given YAML text, return its node graph and its data; raises `yaml.YAMLError`.

    With a libyaml that bounds nesting, the graph is composed in C and then measured (see
    `within`); a graph past a limit, or any error, is composed again event by event, which
    stops where the limit is passed and says so there, or raises the very error it raised.
    """
    node, data, _plain = load_plain(text, limits)
    return node, data


def load_plain(text: str, limits: Limits) -> tuple[Node | None, Any, bool]:
    """`load`, and whether the data is plain: only the types JSON and YAML share (str, int,
    bool, None, finite floats, lists, mappings with str keys), so that JSON gives it back
    exactly. False when that was not worked out (the text has anchors, or rarer types)."""
    if _FAST is not None:
        fast = _FAST(text)
        try:
            node = fast.get_single_node()
            if node is None:
                return None, None, True
            anchored = "&" in text
            if not anchored:
                built = _construct_tree(fast, node, limits)
                if built is not None:
                    return node, built[0], built[1]
            if within(node, limits, anchored=anchored):
                return node, fast.construct_document(node), False
        except yaml.YAMLError:
            pass  # composed again below, for the very error and place
        finally:
            fast.dispose()
    loader = LimitedLoader(text, limits)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data, False


_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
# The scalar tags whose constructors are plain functions of the node; every other tag (dates,
# binary, sets, merge keys, unknown tags) is left to PyYAML's own constructor.
_SCALAR_TAGS = frozenset({
    "tag:yaml.org,2002:null", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
})


def _construct_tree(
    loader: SafeConstructor, root: Node, limits: Limits
) -> tuple[Any, bool] | None:
    """Given the graph of a text without anchors (a tree), return its data as PyYAML's safe
    constructor builds it, and whether it is plain (see `load_plain`), in one pass that also
    measures it as `_tree_within` does; None when it is past a limit, or holds a tag other
    than str, int, float, bool, null, seq and map (PyYAML's constructor then decides).

    PyYAML's constructor runs a generator per collection and several calls per node; this is
    one loop over the nodes, with an explicit stack, so no depth reaches the recursion limit.
    """
    constructors = loader.yaml_constructors
    plain = True

    def scalar(node: ScalarNode) -> Any:
        nonlocal plain
        tag = node.tag
        if tag == _STR:
            return node.value
        if tag not in _SCALAR_TAGS:
            raise _Unusual
        try:
            value = constructors[tag](loader, node)
        except (ValueError, TypeError, OverflowError):
            raise _Unusual from None  # PyYAML's constructor raises it, in its own order
        if isinstance(value, float) and (value != value or value in _INFINITE):
            plain = False
        return value

    def collection(node: Node) -> list[Any] | dict[Any, Any]:
        if node.tag == _SEQ and isinstance(node, SequenceNode):
            return []
        if node.tag == _MAP and isinstance(node, MappingNode):
            return {}
        raise _Unusual

    count = 1
    most = limits.max_yaml_nodes
    deepest = limits.max_yaml_depth
    try:
        if isinstance(root, ScalarNode):
            return scalar(root), plain
        data = collection(root)
        stack: list[tuple[Node, Any, int]] = [(root, data, 1)]
        while stack:
            node, out, depth = stack.pop()
            if depth > deepest:
                return None
            if isinstance(out, list):
                count += len(node.value)
                for child in node.value:
                    if isinstance(child, ScalarNode):
                        out.append(scalar(child))
                    else:
                        inner = collection(child)
                        out.append(inner)
                        stack.append((child, inner, depth + 1))
            else:
                count += 2 * len(node.value)
                for key_node, value_node in node.value:
                    if not isinstance(key_node, ScalarNode):
                        raise _Unusual  # a collection as a key: PyYAML's error
                    key = scalar(key_node)
                    if not isinstance(key, str):
                        plain = False
                    if isinstance(value_node, ScalarNode):
                        out[key] = scalar(value_node)
                    else:
                        inner = collection(value_node)
                        out[key] = inner
                        stack.append((value_node, inner, depth + 1))
            if count > most:
                return None
    except _Unusual:
        return None
    return data, plain


class _Unusual(Exception):
    """A node `_construct_tree` leaves to PyYAML's constructor."""


_INFINITE = (float("inf"), float("-inf"))


def within(root: Node, limits: Limits, *, anchored: bool = True) -> bool:
    """Whether a composed graph is within the limits as `LimitedLoader` counts them, in one
    pass over its distinct nodes (aliases are shared nodes, so nothing is expanded).
    `anchored=False` says the text has no `&`, so no anchor and no alias: the graph is a
    tree, and a plain count of its nodes and depth is enough.

    - expanded size: a node counts 1 plus the expanded size of each child, alias or not;
    - aliases: every reference to a node already composed (each node is composed once, at
      its first place in document order; every later reference is an alias);
    - depth: collections nested at a node's first place, as the composer's stack holds them;
    - a node inside itself (an alias of an anchor not yet complete) is refused, as the
      composer refuses it: the anchor names its node only once the node is complete.
    """
    if not anchored:
        return _tree_within(root, limits)
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    aliases = 0
    # (node, collection depth, children visited): an explicit stack, no recursion.
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limits.max_yaml_nodes:
                return False
            continue
        if key in sizes or key in open_:
            if key in open_:
                return False  # an alias inside what it names
            aliases += 1
            if aliases > limits.max_yaml_aliases:
                return False
            continue
        if isinstance(node, ScalarNode):
            sizes[key] = 1
            continue
        if depth > limits.max_yaml_depth:
            return False
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in reversed(_children(node)))
    return True


def _tree_within(root: Node, limits: Limits) -> bool:
    """`within` for a tree: every node counts once; collections nest no deeper than allowed."""
    count = 0
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if isinstance(node, ScalarNode):
            continue
        if depth > limits.max_yaml_depth:
            return False
        if isinstance(node, SequenceNode):
            stack.extend((child, depth + 1) for child in node.value)
        else:
            for key, value in node.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))
    return count <= limits.max_yaml_nodes


def _children(node: Node) -> list[Node]:
    """The children of a node in document order: a mapping's keys and values, interleaved."""
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


# The safe loader's implicit resolvers by first character, as `Resolver.resolve` finds them.
_IMPLICIT: dict[str, tuple[tuple[str, Any], ...]] = {
    first: tuple(found) for first, found in Resolver.yaml_implicit_resolvers.items()
    if first is not None
}
_DEFAULT_TAGS: dict[type[Node], str] = {
    ScalarNode: Resolver.DEFAULT_SCALAR_TAG, SequenceNode: Resolver.DEFAULT_SEQUENCE_TAG,
    MappingNode: Resolver.DEFAULT_MAPPING_TAG,
}


def _resolve(self: Any, kind: type[Node], value: str | None, implicit: Any) -> str:
    """`Resolver.resolve` for a loader without path resolvers or wildcard implicit ones (the
    safe loader's): the same tag, with a fraction of the work. libyaml's composer calls it
    back for every node, so it is a good part of what composing costs."""
    if kind is ScalarNode and implicit[0]:
        assert value is not None
        for tag, regexp in _IMPLICIT.get(value[:1], ()):
            if regexp.match(value):
                return tag
    return _DEFAULT_TAGS[kind]


def _nesting_bounded() -> bool:
    """Whether libyaml refuses deep nesting itself (the libyaml PyYAML's wheels bundle stops
    at 1,000 levels), so that its composer, which recurses in C, cannot exhaust the stack."""
    deep = 10_000
    probe = _CLoader("[" * deep + "]" * deep)
    try:
        probe.get_single_node()
    except yaml.YAMLError:
        return True
    finally:
        probe.dispose()
    return False  # pragma: no cover - a libyaml without the bound


_FAST: Any = None
try:
    from yaml.cyaml import CSafeLoader as _CLoader
except ImportError:  # pragma: no cover - only on builds without libyaml
    pass
else:
    if _nesting_bounded():
        _FAST = _CLoader
        if None not in _CLoader.yaml_implicit_resolvers and not _CLoader.yaml_path_resolvers:
            _FAST = type("_FastLoader", (_CLoader,), {"resolve": _resolve})


def mark_index(exc: yaml.YAMLError) -> int | None:
    """The character offset a YAML error points at, when it points anywhere."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        return None if mark is None else int(mark.index)
    if isinstance(exc, yaml.reader.ReaderError):
        return int(exc.position)
    return None


def problem(exc: yaml.YAMLError) -> str:
    """What a YAML error says is wrong, without its own (differently counted) position."""
    if isinstance(exc, yaml.MarkedYAMLError):
        return exc.problem or exc.context or "invalid YAML"
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character
        if isinstance(character, str) and len(character) == 1:
            character = ord(character)
        if isinstance(character, int):
            return (f"the control character U+{character:04X} is not allowed in YAML; "
                    "remove it or write it as an escape in a double-quoted string")
        return f"the bytes cannot be read as text: {exc.reason}"
    return str(exc)  # pragma: no cover - every PyYAML error is one of the above
