"""The rendering rules are security properties; the properties are checked with hypothesis."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tallinn.library import (
    ArgumentError,
    Library,
    NotFoundError,
    RenderError,
    TallinnError,
    bind_positional,
    load_library,
    render,
    render_command,
)

COMMAND = """\
---
description: Render test command
arguments:
  - {name: text, description: free text, required: true}
  - {name: other, description: another value}
  - {name: count, description: a number, type: integer, default: 3}
  - {name: ratio, description: a ratio, type: number}
  - {name: flag, description: a switch, type: boolean, default: false}
  - {name: tone, description: tone, type: enum, enum: [calm, dry], default: calm}
  - {name: ticket, description: ticket id, pattern: "[A-Z]+-[0-9]+"}
---
<<{{text}}>> other=[{{other}}] count={{count}} ratio={{ratio}} flag={{flag}} tone={{tone}}
ticket={{ticket}} all=($ARGUMENTS)
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root: Path = tmp_path_factory.mktemp("lib")
    (root / "commands/t").mkdir(parents=True)
    (root / "commands/t/probe.md").write_text(COMMAND, encoding="utf-8")
    (root / "commands/t/plain.md").write_text(
        "---\ndescription: no arguments\n---\nrun: $ARGUMENTS\n", encoding="utf-8")
    lib = load_library(root)
    assert lib.diagnostics == ()
    return lib


def probe(library: Library, **args: object) -> str:
    return render_command(library, "probe", args)


def first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def test_defaults_apply(library: Library) -> None:
    assert first_line(probe(library, text="hi")) == (
        "<<hi>> other=[] count=3 ratio= flag=false tone=calm")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, "missing required argument 'text'"),
        ({"text": "x", "colour": "red"}, "unknown argument 'colour'"),
        ({"text": "x", "count": "three"}, "argument 'count': expected an integer, got 'three'"),
        ({"text": "x", "count": True}, "argument 'count': expected an integer"),
        ({"text": "x", "count": 1.5}, "argument 'count': expected an integer"),
        ({"text": "x", "ratio": "nan"}, "argument 'ratio': expected a finite number"),
        ({"text": "x", "ratio": "half"}, "argument 'ratio': expected a number"),
        ({"text": "x", "ratio": [1]}, "argument 'ratio': expected a number"),
        ({"text": "x", "flag": "maybe"}, "argument 'flag': expected true or false"),
        ({"text": "x", "tone": "loud"}, "argument 'tone': 'loud' is not one of calm, dry"),
        ({"text": "x", "ticket": "abc"}, "argument 'ticket': does not match pattern"),
        ({"text": ["x"]}, "argument 'text': expected a string"),
    ],
)
def test_strict_errors_name_the_argument(
    library: Library, args: dict[str, object], message: str
) -> None:
    with pytest.raises(ArgumentError) as caught:
        probe(library, **args)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"count": "-12"}, "count=-12"),
        ({"count": 7}, "count=7"),
        ({"ratio": "0.25"}, "ratio=0.25"),
        ({"ratio": 2}, "ratio=2"),
        ({"flag": "YES"}, "flag=true"),
        ({"flag": True}, "flag=true"),
        ({"flag": "off"}, "flag=false"),
        ({"tone": "dry"}, "tone=dry"),
        ({"ticket": "OPS-12"}, "ticket=OPS-12"),
    ],
)
def test_values_are_coerced(library: Library, args: dict[str, object], expected: str) -> None:
    assert expected in probe(library, text="t", **args)


def test_arguments_string(library: Library) -> None:
    assert "all=(t dry)" in probe(library, text="t", tone="dry")
    raw = render(library, library.commands["plain"], {}, raw_arguments="fix the $HOME bug")
    assert raw == "run: fix the $HOME bug\n"
    assert render(library, library.commands["plain"], {}) == "run: \n"


def test_unknown_command_suggests(library: Library) -> None:
    with pytest.raises(NotFoundError, match="did you mean probe"):
        render_command(library, "prob")


def test_positional_binding(library: Library) -> None:
    command = library.commands["probe"]
    assert bind_positional(command, ["a", "b"]) == {"text": "a", "other": "b"}
    with pytest.raises(ArgumentError, match="at most 7 positional"):
        bind_positional(command, ["x"] * 8)
    assert bind_positional(library.commands["plain"], ["any", "words"]) == {}


def test_uncomposed_command_is_refused(library: Library) -> None:
    empty = Library(library.root, library.commands, {}, {}, (), library.config, "")
    with pytest.raises(RenderError, match="was not composed"):
        render(empty, library.commands["probe"], {"text": "x"})


# -- properties -------------------------------------------------------------------------

TOKENS = st.sampled_from(
    ["{{other}}", "{{ text }}", "$ARGUMENTS", '<include component="g/c"/>', "\\{{", "{{", "}}"])
VALUES = st.lists(st.one_of(st.text(max_size=20), TOKENS), max_size=6).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=VALUES, other=VALUES)
@example(text="", other="0\x00O")  # a value holding what a replace-based oracle would use
def test_values_are_inserted_literally_once(library: Library, text: str, other: str) -> None:
    """Whatever a value contains, it appears once, verbatim, and nothing in it is expanded."""
    out = probe(library, text=text, other=other)
    assert first_line(out).startswith(first_line(f"<<{text}>> other=[{other}]"))
    assert out.count(f"<<{text}>>") >= 1
    # One pass over the template: a value may hold anything, a sentinel included.
    filled = {"{{text}}": text, "{{other}}": other, "{{count}}": "3", "{{ratio}}": "",
              "{{flag}}": "false", "{{tone}}": "calm", "{{ticket}}": "",
              "$ARGUMENTS": f"{text} {other}"}
    expected = re.sub("|".join(map(re.escape, filled)), lambda m: filled[m.group(0)],
                      COMMAND.split("---\n", 2)[2])
    assert out == expected


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    args=st.dictionaries(
        st.sampled_from(["text", "other", "count", "ratio", "flag", "tone", "ticket", "zzz"]),
        st.one_of(st.text(max_size=10), st.integers(), st.floats(), st.booleans(), st.none(),
                  st.lists(st.integers(), max_size=2)),
    )
)
def test_renderer_raises_only_tallinn_errors(library: Library, args: dict[str, object]) -> None:
    """Any input either renders or raises a TallinnError that names an argument."""
    error: TallinnError | None = None
    try:
        out = probe(library, **args)
    except TallinnError as exc:
        error = exc
    if error is None:
        assert out.startswith("<<")
    else:
        assert isinstance(error, ArgumentError)
        assert f"'{error.argument}'" in str(error)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=12))
def test_enum_accepts_exactly_its_values(library: Library, value: str) -> None:
    if value in ("calm", "dry"):
        assert f"tone={value}" in probe(library, text="t", tone=value)
    else:
        with pytest.raises(ArgumentError, match="is not one of calm, dry"):
            probe(library, text="t", tone=value)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(number=st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_round_trip_from_strings(library: Library, number: int) -> None:
    assert f"count={number}" in probe(library, text="t", count=str(number))
