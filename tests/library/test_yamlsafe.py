"""The YAML loader composes in C and then measures the graph: the same data, the same limits
(expanded nodes, aliases, depth) and the same errors as composing event by event."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import count_calls

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
