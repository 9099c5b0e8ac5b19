"""Argument patterns run on RE2: no pattern a library holds can make a render hang, and a
pattern RE2 refuses is a load-time finding at its `pattern` key."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.bounded import CATASTROPHIC, python_bounded, run_bounded
from tests.helpers import write_files

from tallinn.library import ArgumentError, Severity, load_library, render_command
from tallinn.library.patterns import MAX_PROGRAM_MEMORY, PatternError, compile_pattern


def catastrophic_library(root: Path) -> Path:
    """One command per catastrophic pattern: `p0` ... `p9`, argument `value`."""
    files = {
        f"commands/patterns/p{index}.md": (
            "---\n"
            f"description: Pattern {index}\n"
            "arguments:\n"
            f"  - {{name: value, description: checked, required: true, pattern: '{pattern}'}}\n"
            "---\n"
            "got [{{value}}]\n"
        )
        for index, (pattern, _, _) in enumerate(CATASTROPHIC)
    }
    return write_files(root, files)


_RENDER_ALL = """
import json, sys
from tallinn.library import ArgumentError, load_library, render_command
from tests.bounded import CATASTROPHIC

library = load_library(sys.argv[1])
results = []
for index, (_, attack, match) in enumerate(CATASTROPHIC):
    try:
        render_command(library, f"p{index}", {"value": attack})
        attacked = "rendered"
    except ArgumentError as exc:
        attacked = str(exc)
    results.append([attacked, render_command(library, f"p{index}", {"value": match})])
print(json.dumps({"errors": [str(d) for d in library.errors], "results": results}))
"""


@pytest.mark.slow
def test_catastrophic_patterns_answer_promptly_in_render(tmp_path: Path) -> None:
    """Each classic catastrophic pattern against its almost-matching value is a prompt no-match,
    and a matching value renders, in a child whose CPU time is capped."""
    root = catastrophic_library(tmp_path / "lib")
    done = python_bounded(_RENDER_ALL, str(root))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == []
    for (pattern, _, match), (attacked, rendered) in zip(
        CATASTROPHIC, report["results"], strict=True
    ):
        assert attacked.startswith("argument 'value': does not match pattern"), pattern
        assert pattern in attacked
        assert rendered == f"got [{match}]\n"


@pytest.mark.slow
def test_catastrophic_patterns_answer_promptly_in_tallinn_render(tmp_path: Path) -> None:
    """`tallinn render` refuses a catastrophic pattern's almost-matching value with exit 2 and
    renders a matching one, in a child whose CPU time is capped."""
    root = catastrophic_library(tmp_path / "lib")
    for index, (pattern, attack, match) in enumerate(CATASTROPHIC):
        command = [sys.executable, "-m", "tallinn", "render", f"p{index}", "--library", str(root)]
        refused = run_bounded([*command, "--arg", f"value={attack}"])
        assert refused.returncode == 2, (pattern, refused.stderr)
        assert "does not match pattern" in refused.stderr
        rendered = run_bounded([*command, "--arg", f"value={match}"])
        assert rendered.returncode == 0, (pattern, rendered.stderr)
        assert rendered.stdout.strip() == f"got [{match}]"


@pytest.mark.parametrize(
    ("pattern", "attack", "match"), CATASTROPHIC, ids=[p for p, _, _ in CATASTROPHIC]
)
def test_the_engine_gives_the_same_answers_as_full_matching(
    pattern: str, attack: str, match: str
) -> None:
    """RE2 full-matches as `re.fullmatch` does: the matching value matches, the other not at all."""
    compiled = compile_pattern(pattern)
    assert compiled.fullmatch(match)
    assert not compiled.fullmatch(attack)
    assert not compiled.search(attack)


@pytest.mark.parametrize(
    ("pattern", "value", "full"),
    [
        (r"[A-Z]+-[0-9]+", "ABC-12", True),
        (r"[A-Z]+-[0-9]+", "ABC-12\n", False),  # `re` would not match either, with fullmatch
        (r"[A-Z]+-[0-9]+", "x ABC-12", False),
        (r"[a-z]+$", "abc\n", False),  # RE2's `$` never matches before a final newline
        (r"é+", "éé", True),
        (r"\pL+", "Tallinn", True),
        (r"(?i)tallinn", "TALLINN", True),
        (r"a|ab", "ab", True),  # a full match, not the leftmost-first prefix
    ],
)
def test_full_match_semantics(pattern: str, value: str, full: bool) -> None:
    """A value passes exactly when the whole of it matches the pattern."""
    assert compile_pattern(pattern).fullmatch(value) is full


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(\w+)-\1", "invalid escape sequence: \\1"),
        (r"(?=a)a", "invalid perl operator: (?="),
        (r"(?<!a)b", "invalid perl operator: (?<!"),
        (r"a\Z", "invalid escape sequence: \\Z"),
        (r"a++", "bad repetition operator: ++"),
        (r"(?x) a", "invalid perl operator: (?x"),
        (r"a{1001}", "invalid repetition size: {1001}"),
        ("".join(f"(.*{c}){{1000}}" for c in "abcdefgh"), "pattern too large - compile failed"),
        ("(", "missing ): ("),
    ],
)
def test_a_pattern_re2_refuses_is_a_finding_at_its_key(
    write_library, pattern: str, reason: str
) -> None:  # type: ignore[no-untyped-def]
    """A pattern RE2 cannot compile is a V115 error at its `pattern` key with RE2's reason, and
    the command is left out while the rest of the library loads."""
    text = (
        "---\ndescription: d\narguments:\n"
        "  - name: word\n"
        "    description: w\n"
        f"    pattern: '{pattern}'\n"
        "---\n{{word}}\n"
    )
    root = write_library({
        "commands/a/bad.md": text,
        "commands/a/good.md": "---\ndescription: fine\n---\nok\n",
    })
    library = load_library(root)
    (problem,) = library.diagnostics
    assert (problem.code, problem.severity) == ("V115", Severity.ERROR)
    assert (problem.path, problem.line, problem.col) == ("commands/a/bad.md", 6, 5)
    assert problem.message.startswith("argument 'word': invalid pattern ")
    assert problem.message.endswith(f"RE2 cannot run it: {reason}")
    assert list(library.commands) == ["good"]


def test_a_long_refused_pattern_is_shown_shortened(write_library) -> None:  # type: ignore[no-untyped-def]
    """The finding quotes at most 80 characters of a refused pattern."""
    pattern = "(a)\\1" + "b" * 500
    text = (f"---\ndescription: d\narguments:\n  - {{name: w, pattern: '{pattern}'}}\n"
            "---\n{{w}}\n")
    (problem,) = load_library(write_library({"commands/a/x.md": text})).diagnostics
    assert (problem.code, problem.line, problem.col) == ("V115", 4, 15)
    shown = problem.message.split("invalid pattern ", 1)[1].split(": RE2", 1)[0]
    assert len(shown) == 80
    assert shown.endswith("...'")


def test_a_component_with_a_refused_pattern_is_left_out(write_library) -> None:  # type: ignore[no-untyped-def]
    """A component whose pattern RE2 refuses is reported (V115) and not loaded, and the
    command including it is reported as including a broken component."""
    root = write_library({
        "components/x/c.md": "---\ndescription: c\narguments:\n"
                             "  - {name: v, pattern: '(?=x)x'}\n---\n{{v}}\n",
        "commands/a/x.md": "---\ndescription: d\narguments:\n  - {name: v}\n---\n"
                           '<include component="x/c"/>\n',
    })
    library = load_library(root)
    assert "x/c" not in library.components
    assert "x" not in library.commands
    (finding,) = [d for d in library.diagnostics if d.code == "V115"]
    assert (finding.path, finding.line, finding.col) == ("components/x/c.md", 4, 15)


def test_the_position_survives_the_front_matter_cache(write_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A refused pattern is reported at the same place on a load served by the cache."""
    text = "---\ndescription: d\narguments:\n  - name: w\n    pattern: '(a)\\1'\n---\n{{w}}\n"
    root = write_library({"commands/a/x.md": text})
    cache = tmp_path / "cache"
    first = load_library(root, cache_dir=cache).diagnostics
    second = load_library(root, cache_dir=cache).diagnostics
    assert [(d.code, d.line, d.col) for d in first] == [("V115", 5, 5)]
    assert second == first


def test_compile_errors_carry_re2s_reason() -> None:
    """`compile_pattern` raises `PatternError` with RE2's reason as text."""
    with pytest.raises(PatternError, match=r"^invalid perl operator: \(\?<=$"):
        compile_pattern("(?<=a)b")


def test_the_program_budget_bounds_the_program() -> None:
    """The largest pattern that compiles stays within the memory budget: its program has at
    most a budget's worth of instructions (RE2 takes about 16 bytes an instruction)."""
    sizes = []
    for count in range(1, 9):
        try:
            sizes.append(compile_pattern("(.*a){1000}" * count).program_size)
        except PatternError:
            break
    assert sizes
    assert sizes[-1] <= MAX_PROGRAM_MEMORY // 16
    assert len(sizes) < 8  # the budget was reached


def test_a_value_with_a_lone_surrogate_is_checked_not_crashed(write_library) -> None:  # type: ignore[no-untyped-def]
    """A value with a lone surrogate (JSON allows one) gets a clean answer, not an exception
    other than ArgumentError."""
    text = "---\ndescription: d\narguments:\n  - {name: w, pattern: '[a-z]+'}\n---\n{{w}}\n"
    library = load_library(write_library({"commands/a/x.md": text}))
    with pytest.raises(ArgumentError, match="does not match pattern"):
        render_command(library, "x", {"w": "ab\ud800"})


@pytest.mark.parametrize(
    ("pattern", "text", "found"),
    [
        (r"done\.$", "all done.\n", True),  # as `re.search`: `$` before a final newline
        (r"done\.$", "all done.", True),
        (r"done\.$", "all done.\n\n", False),  # as `re.search`: one final newline only
        (r"^$", "\n", True),
        (r"(?m)^b$", "a\nb\nc", True),
        (r"a\n$", "a\n", True),
        (r"^Summary", "Review\nSummary", False),
    ],
)
def test_search_reads_dollar_as_python_does(pattern: str, text: str, found: bool) -> None:
    """A search finds exactly what Python's `re.search` finds for these anchored patterns."""
    import re

    assert (re.search(pattern, text) is not None) is found
    assert compile_pattern(pattern).search(text) is found
