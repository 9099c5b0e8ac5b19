"""Front matter parsed once within `parsed_once()`, and parsed again outside it."""

from __future__ import annotations

import pytest
from tests.helpers import count_calls

from tallinn.library import frontmatter, yamlsafe
from tallinn.library.files import Limits

TEXT = "---\ndescription: Review a file\ntags: [review]\n---\nBody\n"


def test_within_parsed_once_the_same_front_matter_is_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Within `parsed_once()` (and a block nested in it) a second parse of the same front
    matter, even of another file, returns the same data and positions without parsing."""
    parses = count_calls(monkeypatch, yamlsafe, "load_plain")
    with frontmatter.parsed_once():
        first = frontmatter.parse(TEXT, "commands/a.md")
        with frontmatter.parsed_once():
            again = frontmatter.parse(TEXT + "more\n", "commands/b.md")
    assert parses() == 1
    assert isinstance(first, frontmatter.Parsed)
    assert isinstance(again, frontmatter.Parsed)
    assert (again.data, again.key_marks, again.value_marks) == (
        first.data, first.key_marks, first.value_marks)
    assert again.body == "Body\nmore\n"


def test_outside_parsed_once_and_under_other_limits_it_is_parsed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is kept once the block ends, and within it other limits parse afresh, so a
    lower limit is never bypassed."""
    parses = count_calls(monkeypatch, yamlsafe, "load_plain")
    with frontmatter.parsed_once():
        frontmatter.parse(TEXT, "commands/a.md")
        low = frontmatter.parse(TEXT, "commands/a.md", limits=Limits(max_yaml_nodes=2))
    frontmatter.parse(TEXT, "commands/a.md")
    assert parses() == 3
    assert isinstance(low, frontmatter.Diagnostic)
    assert low.code == "V113"
