"""The YAML loader composes in C and then measures the graph: the same data, the same limits
(expanded nodes, aliases, depth) and the same errors as composing event by event."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import count_calls
from yaml.constructor import SafeConstructor

from tallinn.library import yamlsafe
from tallinn.library.files import Limits
from tallinn.library.yamlsafe import LimitedLoader, load, within

DOCUMENTS = [
    "a: 1\n",
    "a: &a [1, 2, 3]\nb: *a\nc: [*a, *a]\n",
    "base: &b {x: 1, y: [1, 2]}\nmore:\n  <<: *b\n  z: 3\n",
    "- - - - [a, b, {c: [d, e]}]\n",
    "k: &s text\nl: [*s, *s, *s]\nm: {*s : v}\n",
    "tests:\n" + "".join(f"  - {{description: case {n}, vars: {{a: {n}}}}}\n"
                         for n in range(50)),
    "l0: &l0 [lol, lol, lol]\nl1: &l1 [*l0, *l0, *l0]\nl2: &l2 [*l1, *l1, *l1]\n",
]
BIG = Limits(max_yaml_nodes=10**9, max_yaml_aliases=10**9, max_yaml_depth=10**6)


def counted(text: str) -> tuple[int, int, int]:
    """(expanded nodes, aliases, deepest nesting) as the event-by-event composer counts."""
    loader = LimitedLoader(text, BIG)
    try:
        loader.get_single_node()
        nodes, aliases = loader.nodes, loader.aliases
    finally:
        loader.dispose()
    depth = 0
    while True:  # the least depth limit the document passes
        try:
            ok = LimitedLoader(text, Limits(max_yaml_depth=depth))
            ok.get_single_node()
            ok.dispose()
            return nodes, aliases, depth
        except yamlsafe.YamlLimitError:
            depth += 1


def composed(text: str) -> Any:
    fast = yaml.CSafeLoader(text)
    try:
        return fast.get_single_node()
    finally:
        fast.dispose()


@pytest.mark.parametrize("text", DOCUMENTS)
def test_the_measured_graph_is_within_exactly_the_limits_the_composer_allows(text: str) -> None:
    """A graph composed in C is within the node, alias and depth limits exactly when the
    event-by-event composer stays within them: at each count it passes, one below it fails."""
    nodes, aliases, depth = counted(text)
    node = composed(text)
    assert within(node, Limits(max_yaml_nodes=nodes, max_yaml_aliases=aliases,
                               max_yaml_depth=depth))
    assert not within(node, Limits(max_yaml_nodes=nodes - 1, max_yaml_aliases=aliases,
                                   max_yaml_depth=depth))
    if aliases:
        assert not within(node, Limits(max_yaml_nodes=nodes, max_yaml_aliases=aliases - 1,
                                       max_yaml_depth=depth))
    if depth:
        assert not within(node, Limits(max_yaml_nodes=nodes, max_yaml_aliases=aliases,
                                       max_yaml_depth=depth - 1))


@pytest.mark.parametrize("text", DOCUMENTS)
def test_a_document_within_the_limits_is_composed_in_c_alone(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document within the limits is composed once, in C, into the data PyYAML's safe
    loader gives; the event-by-event composer is not run."""
    slow = count_calls(monkeypatch, LimitedLoader, "get_single_node")
    node, data = load(text, Limits())
    assert slow() == 0
    assert node is not None
    assert data == yaml.safe_load(text)


@pytest.mark.parametrize(("text", "limits", "message"), [
    ("l0: &l0 [" + ", ".join(["lol"] * 9) + "]\n"
     + "".join(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]\n" for n in range(1, 6)),
     Limits(max_yaml_nodes=1_000, max_yaml_aliases=10_000), "max_yaml_nodes"),
    ("a: &a x\nb: [" + ", ".join(["*a"] * 50) + "]\n", Limits(max_yaml_aliases=20),
     "max_yaml_aliases"),
    ("[" * 60 + "]" * 60, Limits(), "max_yaml_depth"),
    ("[" * 20_000 + "]" * 20_000, Limits(), "depth"),
    ("a: &x [1, *x]\n", Limits(), "undefined alias"),
    ("a: &x 1\nb: &x 2\n", Limits(), "duplicate anchor"),
    ("a: 1\n---\nb: 2\n", Limits(), "single document"),
    ("a: [1, 2\n", Limits(), "flow sequence"),
])
def test_a_document_past_a_limit_fails_where_the_composer_stops(
    text: str, limits: Limits, message: str
) -> None:
    """Past a limit, or with an error, `load` raises what composing event by event raises,
    at the same place."""
    with pytest.raises(yaml.YAMLError, match=message) as raised:
        load(text, limits)
    loader = LimitedLoader(text, limits)
    with pytest.raises(yaml.YAMLError) as expected:
        loader.get_single_node()
    loader.dispose()
    assert str(raised.value) == str(expected.value)
    assert type(raised.value) is type(expected.value)


_SCALARS = st.sampled_from(["a", "1", "x y", "true", "~", "'q'", "2.5"])


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Flow-style YAML with anchors and aliases to earlier anchors."""
    anchors: list[str] = []

    def value(depth: int) -> str:
        kind = draw(st.integers(0, 4 if depth < 4 else 1))
        if kind == 0:
            return draw(_SCALARS)
        if kind == 1 and anchors:
            return "*" + draw(st.sampled_from(anchors))
        items = [value(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        text = ("[" + ", ".join(items) + "]" if kind in (2, 3)
                else "{" + ", ".join(f"k{n}: {v}" for n, v in enumerate(items)) + "}")
        if draw(st.booleans()):
            anchors.append(f"a{len(anchors)}")
            return f"&{anchors[-1]} {text}"
        return text

    return "root: " + value(0) + "\n"


@settings(max_examples=200, deadline=None)
@given(documents(), st.integers(1, 60), st.integers(0, 20), st.integers(1, 6))
def test_either_way_the_same_data_or_the_same_error(
    text: str, nodes: int, aliases: int, depth: int
) -> None:
    """For any document and limits, `load` gives what composing event by event gives: the
    same data, or the same error."""
    limits = Limits(max_yaml_nodes=nodes, max_yaml_aliases=aliases, max_yaml_depth=depth)
    loader = LimitedLoader(text, limits)
    try:
        node = loader.get_single_node()
        expected: Any = loader.construct_document(node)
    except yaml.YAMLError as exc:
        expected = str(exc)
    finally:
        loader.dispose()
    try:
        got: Any = load(text, limits)[1]
    except yaml.YAMLError as exc:
        got = str(exc)
    assert got == expected


TREES = [
    "description: x\narguments:\n  - {name: a, required: true, default: 3}\ntags: [a, b]\n",
    "a: [1, -2, 0x1f, 0o17, 1_000, 0b101, 190:20:30, 2.5, -.inf, .NaN, 1e3, ~, null, Yes, off]\n",
    "a: 1\na: [2]\nb: {c: {d: [[], {}]}}\n",
    "1: int key\ntrue: bool key\n~: null key\n2.5: float key\n",
    "'': empty key\n? plain\n",
    "when: 2001-12-14\n",
    "data: !!binary aGVsbG8=\n",
    "<<: {x: 1}\ny: 2\n",
    "= : value key\n",
    "s: !!set {a, b}\n",
    "o: !!omap [a: 1]\n",
    "t: !!str 123\nn: !!int '7'\n",
    "x: !custom 1\n",
    "p: !!python/name:os.system\n",
    "? [a, b]\n: unhashable\n",
    "a: 0b_\nb: [0x_]\n",
    "plain scalar at the top\n",
    "- [a, [b, [c]]]\n",
]


def _safe_load(text: str) -> Any:
    """What PyYAML's own safe loader (libyaml's) gives: the data, or the text of its error."""
    try:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _fast_load(text: str, limits: Limits | None = None) -> tuple[Any, bool | None]:
    try:
        _node, data, plain = yamlsafe.load_plain(text, limits or Limits())
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        return f"{type(exc).__name__}: {exc}", None
    return data, plain


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (PyYAML's `.nan` is never equal to itself)."""
    return repr(a) == repr(b) and type(a) is type(b)


@pytest.mark.parametrize("text", TREES)
def test_a_tree_gives_the_data_or_the_error_pyyaml_gives(text: str) -> None:
    """A text without anchors gives the data PyYAML's safe loader builds, or raises its error,
    whether its nodes are built in one pass or left to PyYAML's constructor."""
    data, plain = _fast_load(text)
    assert _same(data, _safe_load(text))
    if plain:
        from tallinn.library.cache import _plain

        assert _plain(data)


@pytest.mark.parametrize(("text", "plain"), [
    ("description: x\ntags: [a, b]\nn: 1\nf: 2.5\nb: true\nz: ~\n", True),
    ("a: .nan\n", False),
    ("a: [.inf]\n", False),
    ("1: x\n", False),
])
def test_a_tree_of_json_types_is_built_without_pyyaml_s_constructor(
    text: str, plain: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tree of strings, numbers, booleans, nulls, lists and mappings is built without
    running PyYAML's constructor once, and is marked plain exactly when JSON carries it."""
    constructed = count_calls(monkeypatch, SafeConstructor, "construct_object")
    _node, data, found = yamlsafe.load_plain(text, Limits())
    assert constructed() == 0
    assert _same(data, yaml.safe_load(text))
    assert found is plain


def test_a_tree_with_a_date_is_left_to_pyyaml_s_constructor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tag outside the JSON types (here a date) hands the whole document to PyYAML's
    constructor, and the data is not called plain."""
    constructed = count_calls(monkeypatch, SafeConstructor, "construct_object")
    _node, data, plain = yamlsafe.load_plain("a: [x, 2001-12-14]\n", Limits())
    assert constructed() > 0
    assert data == yaml.safe_load("a: [x, 2001-12-14]\n")
    assert plain is False


@pytest.mark.parametrize(("limits", "message"), [
    (Limits(max_yaml_nodes=8), "max_yaml_nodes"),
    (Limits(max_yaml_depth=2), "max_yaml_depth"),
])
def test_a_tree_past_a_limit_fails_as_the_composer_fails(limits: Limits, message: str) -> None:
    """A tree one node or one level past a limit raises the event-by-event composer's error;
    at the limit it loads."""
    text = "a: [b, [c, d]]\ne: f\n"  # 9 nodes, 3 levels
    with pytest.raises(yamlsafe.YamlLimitError, match=message):
        load(text, limits)
    assert load(text, Limits(max_yaml_nodes=9, max_yaml_depth=3))[1] == yaml.safe_load(text)


_TREE_SCALARS = st.sampled_from(["a", "1", "-0x1F", "0b_", "1:30", "x y", "true", "Off", "~",
                                 "''", "'q'", "2.5", ".inf", "1e5", "2001-12-14", "!!str 3",
                                 "!!binary aGk=", "<<", "="])


@st.composite
def trees(draw: st.DrawFn) -> str:
    """Flow-style YAML without anchors, of every scalar type and a few tags."""

    def value(depth: int) -> str:
        kind = draw(st.integers(0, 3 if depth < 4 else 0))
        if kind == 0:
            return draw(_TREE_SCALARS)
        items = [value(depth + 1) for _ in range(draw(st.integers(0, 3)))]
        if kind == 1:
            return "[" + ", ".join(items) + "]"
        keys = [draw(_TREE_SCALARS) for _ in items]
        return "{" + ", ".join(f"{k}: {v}" for k, v in zip(keys, items, strict=True)) + "}"

    return "root: " + value(0) + "\n"


@settings(max_examples=300, deadline=None)
@given(trees(), st.integers(1, 40), st.integers(1, 6))
def test_any_tree_gives_what_the_event_by_event_loader_gives(
    text: str, nodes: int, depth: int
) -> None:
    """For any text without anchors and any limits, `load` gives what composing event by
    event and PyYAML's constructor give: the same data, or the same error."""
    limits = Limits(max_yaml_nodes=nodes, max_yaml_depth=depth)
    loader = LimitedLoader(text, limits)
    try:
        node = loader.get_single_node()
        expected: Any = loader.construct_document(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        expected = f"{type(exc).__name__}: {exc}"
    finally:
        loader.dispose()
    assert _same(_fast_load(text, limits)[0], expected)
