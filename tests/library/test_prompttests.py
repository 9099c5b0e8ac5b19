"""Prompt tests: parsing with exact places for problems, and running every assertion type."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import WriteLibrary
from tests.helpers import count_calls

from tallinn.library import load_library, prompttests
from tallinn.library.prompttests import (
    Assertion,
    AssertionType,
    FailureKind,
    PromptSuite,
    check,
    estimate_tokens,
    find_test_files,
    load_tests,
    parse_tests,
    run_case,
    run_tests,
)

REVIEW = """
    ---
    description: Review a file for correctness and security
    argument-hint: "<path> [focus]"
    arguments:
      - {name: path, description: File to review, required: true}
      - name: focus
        description: What to look at hardest
        type: enum
        enum: [correctness, security]
        default: correctness
      - {name: depth, description: How many levels, type: integer, default: 1}
    examples:
      - {description: Review app.py, args: {path: app.py}}
    ---
    Review `{{path}}`, focusing on {{focus}} to depth {{depth}}.
    <include component="reporting/findings"/>
"""
FINDINGS = """
    ---
    description: How to report findings, most severe first
    ---
    List the most severe findings first.
"""
ECHO = """
    ---
    description: Repeat what the user typed, word for word
    argument-hint: "<text>"
    ---
    You said: $ARGUMENTS
"""


def parse(text: str, path: str = "tests/t.yaml"):  # type: ignore[no-untyped-def]
    return parse_tests(textwrap.dedent(text).lstrip("\n"), path)


@pytest.fixture
def lib_root(write_library: WriteLibrary) -> Path:
    return write_library({
        "commands/review/review.md": REVIEW,
        "commands/misc/echo.md": ECHO,
        "components/reporting/findings.md": FINDINGS,
    })


def test_parse_valid_file_keeps_places_and_defaults() -> None:
    """Cases take the file's default command unless they name their own."""
    tests, problems = parse("""
        command: review
        tests:
          - description: names the file
            vars: {path: app.py, depth: 2}
            assert:
              - type: contains
                value: app.py
              - {type: max-tokens, value: 500}
          - description: echoes
            command: /echo
            raw: hello there
    """)
    assert problems == []
    first, second = tests
    assert first.id == "tests/t.yaml::names the file"
    assert (first.command, first.line, first.col) == ("review", 3, 5)
    assert first.vars == {"path": "app.py", "depth": 2}
    assert first.assertions[0] == Assertion(AssertionType.CONTAINS, "app.py", 6, 9)
    assert first.assertions[1].value == 500
    assert (second.command, second.raw, second.assertions) == ("echo", "hello there", ())


def test_scalar_values_are_read_as_text() -> None:
    """A number or boolean given to a text assertion is the text YAML would print."""
    tests, problems = parse("""
        command: review
        tests:
          - description: numbers
            assert:
              - {type: contains, value: 2000}
              - {type: not-contains, value: true}
    """)
    assert problems == []
    assert [a.value for a in tests[0].assertions] == ["2000", "true"]


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        pytest.param("tests: [\n", 2, 1, "invalid YAML", id="yaml-syntax"),
        pytest.param("tests:\n\t- description: x\n", 2, 1, "tabs are not allowed", id="tabs"),
        pytest.param("- description: x\n", 1, 1, "a test file is a mapping", id="top-list"),
        pytest.param("", 1, 1, "a test file is a mapping", id="empty"),
        pytest.param("command: x\ntest: []\ntests: []\n", 2, 1,
                     "unknown key 'test' (did you mean 'tests'?)",
                     id="file-key"),
        pytest.param("command: x\n", 1, 1, "'tests' is required", id="no-tests"),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    asert: []\n", 4, 5,
            "tests[0]: unknown key 'asert' (did you mean 'assert'?)", id="case-key",
        ),
        pytest.param("command: x\ntests:\n  - vars: {}\n", 3, 5,
                     "tests[0]: 'description' is required", id="no-description"),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - {type: contians, "
            "value: b}\n", 5, 16, "tests[0].assert[0].type: unknown assertion type 'contians' "
            "(did you mean 'contains'?)", id="assertion-type",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - {type: max-tokens, "
            "value: many}\n", 5, 35, "max-tokens takes a positive whole number", id="max-tokens",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - type: regex\n"
            "        value: '(unclosed'\n", 6, 16, "invalid regular expression", id="regex",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - {type: equals, "
            "value: ../secrets.txt}\n", 5, 31, "snapshot file path inside tests/", id="snapshot",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - {type: error, value: x}"
            "\n      - {type: contains, value: y}\n", 5, 7, "cannot be combined", id="error-mix",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    vars: {path: [a, b]}\n", 4, 11,
            "the value of 'path' must be a string, number or boolean, not a list", id="vars",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - {type: contains}\n",
            5, 9, "'value' is required", id="no-value",
        ),
        pytest.param(
            "command: x\ntests:\n  - description: a\n    assert:\n      - {type: contains, "
            "value: {a: 1}}\n", 5, 33, "contains takes a string value, not a mapping",
            id="value-kind",
        ),
        pytest.param("command: x\ntests:\n  - just a string\n", 3, 5,
                     "tests[0]: a case is a mapping", id="case-kind"),
        pytest.param("tests:\n  - description: a\n", 2, 5,
                     "the case names no 'command' and the file has no default", id="no-command"),
        pytest.param("command: x\ntests:\n  - description: '  '\n", 3, 18,
                     "description must not be empty", id="blank-description"),
    ],
)
def test_problems_are_reported_at_their_place(text: str, line: int, col: int,
                                              message: str) -> None:
    """Every YAML or schema problem is one T101 diagnostic at a 1-based line and column."""
    tests, problems = parse_tests(text, "tests/t.yaml")
    assert tests == []
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.code, problem.path, problem.line, problem.col) == (
        "T101", "tests/t.yaml", line, col), str(problem)
    assert message in problem.message


def test_a_bad_case_does_not_hide_the_others() -> None:
    """Only the broken case is left out; the cases around it are kept."""
    tests, problems = parse("""
        command: review
        tests:
          - description: good one
          - description: bad one
            assert: [{type: nope, value: x}]
          - description: good two
    """)
    assert [t.description for t in tests] == ["good one", "good two"]
    assert [p.line for p in problems] == [5]


def test_duplicate_descriptions_get_distinct_ids() -> None:
    tests, _ = parse("""
        command: review
        tests:
          - description: same
          - description: same
    """)
    assert [t.id for t in tests] == ["tests/t.yaml::same", "tests/t.yaml::same [2]"]


def test_load_tests_reads_only_yaml_files_directly_in_tests(write_library: WriteLibrary) -> None:
    """Snapshots and other files in subfolders are not test files; bad bytes are reported."""
    root = write_library({
        "commands/misc/echo.md": ECHO,
        "tests/a.yaml": "command: echo\ntests:\n  - description: one\n",
        "tests/b.yml": "command: echo\ntests:\n  - description: two\n",
        "tests/snapshots/c.yaml": "not: a test file\n",
        "tests/notes.txt": "hello",
    })
    (root / "tests" / "bad.yaml").write_bytes(b"command: \xff\n")
    assert [p.name for p in find_test_files(root)] == ["a.yaml", "b.yml", "bad.yaml"]
    suite = load_tests(root)
    assert [t.description for t in suite.tests] == ["one", "two"]
    assert suite.files == ("tests/a.yaml", "tests/b.yml", "tests/bad.yaml")
    assert [str(d) for d in suite.diagnostics] == [
        "tests/bad.yaml:1:10: T101 file is not valid UTF-8"]
    assert load_tests(root / "nowhere").tests == ()
    assert suite.for_command("echo") == suite.tests


def run_one(root: Path, case: str, *, update: bool = False):  # type: ignore[no-untyped-def]
    (root / "tests").mkdir(exist_ok=True)
    (root / "tests" / "case.yaml").write_text(textwrap.dedent(case).lstrip("\n"), "utf-8")
    library = load_library(root)
    suite = load_tests(root)
    assert suite.diagnostics == (), suite.diagnostics
    (test,) = suite.tests
    return run_case(library, test, update_snapshots=update)


def test_every_assertion_type_passes_on_a_matching_render(lib_root: Path) -> None:
    result = run_one(lib_root, """
        command: review
        tests:
          - description: all kinds
            vars: {path: src/app.py, focus: security}
            assert:
              - {type: contains, value: "`src/app.py`"}
              - {type: icontains, value: FOCUSING ON SECURITY}
              - {type: not-contains, value: "{{"}
              - {type: regex, value: "depth [0-9]+"}
              - {type: max-tokens, value: 100}
    """)
    assert result.passed, result.failures
    assert result.output is not None
    assert result.output.startswith("Review `src/app.py`, focusing on security to depth 1.")
    assert "most severe findings first" in result.output


def test_failing_assertions_say_why_and_show_the_text(lib_root: Path) -> None:
    """Every failing assertion is reported, each with a snippet of the rendered text."""
    result = run_one(lib_root, """
        command: review
        tests:
          - description: all fail
            vars: {path: src/app.py}
            assert:
              - {type: contains, value: "src/app.js"}
              - {type: icontains, value: "zebra crossing"}
              - {type: not-contains, value: "severe"}
              - {type: regex, value: "^Summary"}
              - {type: max-tokens, value: 3}
    """)
    assert not result.passed
    kinds = [f.assertion.type.value for f in result.failures if f.assertion]
    assert kinds == ["contains", "icontains", "not-contains", "regex", "max-tokens"]
    contains, icontains, not_contains, regex, tokens = result.failures
    assert contains.message == "expected the text to contain 'src/app.js'"
    assert "closest text:" in contains.detail
    assert "   1 | Review `src/app.py`" in contains.detail
    assert "   1 | Review" in icontains.detail
    assert "List the most severe findings first." in not_contains.detail
    assert "expected the text to match /^Summary/" in regex.message
    assert "   1 | Review" in regex.detail
    assert tokens.message.startswith("about ")
    assert "over the budget of 3" in tokens.message
    assert {f.kind for f in result.failures} == {FailureKind.ASSERTION}


def test_error_assertions(lib_root: Path) -> None:
    """`error` passes when the render fails with a matching message, and only then."""
    ok = run_one(lib_root, """
        command: review
        tests:
          - description: path is required
            assert: [{type: error, value: "missing required argument 'path'"}]
    """)
    assert ok.passed
    assert ok.error == "missing required argument 'path'"
    wrong = run_one(lib_root, """
        command: review
        tests:
          - description: wrong message
            vars: {path: a, focus: speed}
            assert: [{type: error, value: "missing"}]
    """)
    assert not wrong.passed
    assert wrong.failures[0].message == "the render failed, but its error does not match 'missing'"
    assert "'speed' is not one of correctness, security" in wrong.failures[0].detail
    rendered = run_one(lib_root, """
        command: review
        tests:
          - description: renders after all
            vars: {path: a}
            assert: [{type: error, value: "missing"}]
    """)
    assert not rendered.passed
    assert "expected the render to fail with an error matching 'missing'" in (
        rendered.failures[0].message)


def test_unexpected_render_error_fails_the_case(lib_root: Path) -> None:
    result = run_one(lib_root, """
        command: review
        tests:
          - description: forgot the path
            assert: [{type: contains, value: Review}]
    """)
    assert [f.kind for f in result.failures] == [FailureKind.RENDER]
    assert result.failures[0].message == "render failed: missing required argument 'path'"


def test_unknown_and_broken_commands_fail_clearly(lib_root: Path) -> None:
    """A misspelt command gets suggestions; a command whose file has errors says so."""
    typo = run_one(lib_root, """
        command: reviw
        tests:
          - description: typo
    """)
    assert [f.kind for f in typo.failures] == [FailureKind.UNKNOWN_COMMAND]
    assert typo.failures[0].message == "unknown command 'reviw' (did you mean review?)"
    (lib_root / "commands" / "misc" / "broken.md").write_text("no front matter\n", "utf-8")
    broken = run_one(lib_root, """
        command: broken
        tests:
          - description: broken
    """)
    assert broken.failures[0].message == (
        "command 'broken' has errors and is not loaded (see commands/misc/broken.md)")


def test_raw_arguments_fill_dollar_arguments(lib_root: Path) -> None:
    result = run_one(lib_root, """
        command: echo
        tests:
          - description: raw text
            raw: "fix the {{bug}} now"
            assert: [{type: contains, value: "You said: fix the {{bug}} now"}]
    """)
    assert result.passed, result.failures


SNAPSHOT_CASE = """
    command: review
    tests:
      - description: snapshot
        vars: {path: a.py}
        assert: [{type: equals, value: snapshots/review.md}]
"""


def test_snapshots_are_written_on_request_then_compared(lib_root: Path) -> None:
    """A missing snapshot fails until --update-snapshots writes it; a change shows a diff."""
    missing = run_one(lib_root, SNAPSHOT_CASE)
    assert [f.kind for f in missing.failures] == [FailureKind.SNAPSHOT]
    assert "tests/snapshots/review.md does not exist" in missing.failures[0].message
    written = run_one(lib_root, SNAPSHOT_CASE, update=True)
    assert written.passed
    assert written.written == ("tests/snapshots/review.md",)
    snapshot = lib_root / "tests" / "snapshots" / "review.md"
    assert snapshot.read_text("utf-8") == written.output
    assert run_one(lib_root, SNAPSHOT_CASE).passed
    snapshot.write_text(snapshot.read_text("utf-8").replace("depth 1", "depth 9"), "utf-8")
    changed = run_one(lib_root, SNAPSHOT_CASE)
    assert [f.kind for f in changed.failures] == [FailureKind.ASSERTION]
    diff = changed.failures[0].detail
    assert "--- tests/snapshots/review.md (snapshot)" in diff
    assert "+++ rendered" in diff
    assert "-Review `a.py`, focusing on correctness to depth 9." in diff
    assert "+Review `a.py`, focusing on correctness to depth 1." in diff
    again = run_one(lib_root, SNAPSHOT_CASE, update=True)
    assert again.written == ("tests/snapshots/review.md",)
    assert run_one(lib_root, SNAPSHOT_CASE).passed


def test_run_tests_selects_with_keyword_and_reports_each_result(lib_root: Path) -> None:
    (lib_root / "tests").mkdir()
    (lib_root / "tests" / "all.yaml").write_text(textwrap.dedent("""
        tests:
          - description: review names the file
            command: review
            vars: {path: a.py}
            assert: [{type: contains, value: a.py}]
          - description: echo repeats
            command: echo
            raw: hi
            assert: [{type: contains, value: "said: hi"}]
          - description: echo fails
            command: echo
            assert: [{type: contains, value: nothing}]
          - {description: broken, command: echo, assert: [{type: nope, value: x}]}
    """), "utf-8")
    library = load_library(lib_root)
    seen: list[str] = []
    result = run_tests(library, on_result=lambda r: seen.append(r.test.description))
    assert seen == ["review names the file", "echo repeats", "echo fails"]
    assert (result.passed, result.failed, result.deselected) == (2, 1, 0)
    assert len(result.diagnostics) == 1
    assert not result.ok
    assert result.tested_commands() == {"review"}  # one of echo's cases fails
    selected = run_tests(library, keyword="ECHO")
    assert [r.test.description for r in selected.results] == ["echo repeats", "echo fails"]
    assert selected.deselected == 1
    by_file = run_tests(library, PromptSuite(), keyword="x")
    assert by_file.results == ()
    assert by_file.ok


def test_check_rejects_assertions_that_need_more_than_text() -> None:
    with pytest.raises(ValueError, match="does not handle equals"):
        check(Assertion(AssertionType.EQUALS, "a.md"), "text")


def test_snippets_handle_empty_and_unrelated_text() -> None:
    empty = check(Assertion(AssertionType.CONTAINS, "x"), "")
    assert empty is not None
    assert empty.detail == "(the rendered text is empty)"
    long_text = "\n".join(f"line {n}" for n in range(20))
    unrelated = check(Assertion(AssertionType.CONTAINS, "qqqq"), long_text)
    assert unrelated is not None
    assert unrelated.detail.startswith("   1 | line 0")
    assert unrelated.detail.endswith("... 14 more line(s)")


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("hello world", 2),
        ("internationalisation", 4),  # 20 letters: 1 + ceil(15 / 6)
        ("1234567", 3),
        ("a, b.", 4),
        ("line one\n\nline two", 5),
        ("日本語", 3),
        ("Привет", 4),
        ("```python", 4),
    ],
)
def test_estimate_tokens(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_estimate_tokens_grows_with_text() -> None:
    base = "Review the change for correctness. "
    assert estimate_tokens(base * 10) == 10 * estimate_tokens(base) - 0
    assert estimate_tokens(base + "x") > estimate_tokens(base)


def test_a_hundred_cases_are_each_rendered_once(
    lib_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner renders each case once, however many assertions the case has."""
    cases = "".join(
        f"  - description: case {n}\n    vars: {{path: f{n}.py}}\n"
        f"    assert: [{{type: contains, value: f{n}.py}}, {{type: max-tokens, value: 200}}]\n"
        for n in range(100)
    )
    (lib_root / "tests").mkdir()
    (lib_root / "tests" / "many.yaml").write_text(f"command: review\ntests:\n{cases}", "utf-8")
    library = load_library(lib_root)
    renders = count_calls(monkeypatch, prompttests, "render")
    result = run_tests(library)
    assert result.passed == 100
    assert renders() == 100


def _tokens_one_piece_at_a_time(text: str) -> int:
    """The token estimate as docs/testing.md states it, piece by piece: the oracle."""
    import math

    from tallinn.library.prompttests import _PIECE

    total = 0
    for match in _PIECE.finditer(text):
        kind, size = match.lastgroup, match.end() - match.start()
        if kind == "word":
            total += 1 + max(0, math.ceil((size - 5) / 6))
        elif kind in ("cjk", "newlines"):
            total += 1
        elif kind == "digits":
            total += math.ceil(size / 3)
        elif kind == "letters":
            total += 1 + size // 2
        else:
            total += math.ceil(size / 2)
    return total


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
       | st.text(alphabet="ab 1_\n.-äö中", max_size=300)
       | st.text(alphabet=st.characters(codec="ascii"), max_size=300)
       | st.text(alphabet="abcdefgXYZ 0123_\n\r\t\x1c\x7f.-!{}", max_size=300))
def test_the_token_estimate_is_the_documented_one(text: str) -> None:
    """The fast estimate (by runs of each kind of character for ASCII text, piece by piece
    for any other) gives what the documented rule gives, piece by piece."""
    assert estimate_tokens(text) == _tokens_one_piece_at_a_time(text)


def test_a_snapshot_that_is_a_fifo_is_a_failure_not_a_hang(lib_root: Path) -> None:
    """A FIFO as a snapshot is a failure naming it, and --update-snapshots leaves it alone."""
    import os

    (lib_root / "tests/snapshots").mkdir(parents=True)
    os.mkfifo(lib_root / "tests/snapshots/review.md")
    for update in (False, True):
        result = run_one(lib_root, SNAPSHOT_CASE, update=update)
        assert [f.kind for f in result.failures] == [FailureKind.SNAPSHOT]
        assert "FIFO" in result.failures[0].message
        assert result.written == ()


def test_a_snapshot_linked_outside_is_neither_read_nor_written(lib_root: Path,
                                                               tmp_path: Path) -> None:
    """A snapshot that is a link leading out of the library is refused, and not overwritten."""
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    (lib_root / "tests/snapshots").mkdir(parents=True)
    (lib_root / "tests/snapshots/review.md").symlink_to(outside)
    result = run_one(lib_root, SNAPSHOT_CASE, update=True)
    assert [f.kind for f in result.failures] == [FailureKind.SNAPSHOT]
    assert "outside the library" in result.failures[0].message
    assert outside.read_text() == "keep me\n"


def test_update_snapshots_does_not_write_through_a_folder_linked_outside(
    lib_root: Path, tmp_path: Path
) -> None:
    """`tests/snapshots -> elsewhere`: no snapshot is written outside the library."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (lib_root / "tests").mkdir()
    (lib_root / "tests/snapshots").symlink_to(elsewhere, target_is_directory=True)
    result = run_one(lib_root, SNAPSHOT_CASE, update=True)
    assert [f.kind for f in result.failures] == [FailureKind.SNAPSHOT]
    assert list(elsewhere.iterdir()) == []


def test_the_closest_text_hint_is_bounded() -> None:
    """A huge render and a huge expected value get the head of the text as the hint."""
    from tallinn.library.prompttests import _closest

    huge = "a" * 1_000_000
    assert _closest(huge, "a" * 100_000 + "b").startswith("   1 | aaaa")
    assert "closest text" in _closest("x\nneedle here\ny", "needle")


@pytest.mark.parametrize(
    ("kind", "pattern", "reason"),
    [
        ("regex", r"(\w+) \1", "invalid escape sequence: \\1"),
        ("regex", r"(?=Review)Review", "invalid perl operator: (?="),
        ("error", r"(?<!not )found", "invalid perl operator: (?<!"),
        ("regex", r"end\Z", "invalid escape sequence: \\Z"),
    ],
)
def test_a_pattern_re2_refuses_is_a_finding_at_its_line(
    kind: str, pattern: str, reason: str
) -> None:
    """A regex or error assertion RE2 cannot compile is a T101 finding at its value, with RE2's
    reason, and the other cases of the file are kept."""
    text = (
        "command: x\ntests:\n  - description: bad\n    assert:\n      - type: " + kind + "\n"
        f"        value: '{pattern}'\n  - description: good\n    assert:\n"
        "      - {type: contains, value: y}\n"
    )
    tests, problems = parse_tests(text, "tests/t.yaml")
    (problem,) = problems
    assert (problem.code, problem.line, problem.col) == ("T101", 6, 16)
    assert "invalid regular expression" in problem.message
    assert problem.message.endswith(f"RE2 cannot run it: {reason}")
    assert [t.description for t in tests] == ["good"]


_CATASTROPHIC_SUITE_COMMAND = """
    ---
    description: Say the text back
    arguments:
      - {name: text, description: what to say, required: true}
      - {name: word, description: a checked word, pattern: '(a|aa)*c'}
    ---
    {{text}}
"""


@pytest.mark.slow
def test_catastrophic_patterns_answer_promptly_in_prompt_tests(
    write_library: WriteLibrary,
) -> None:
    """`tallinn test` runs regex and error assertions with catastrophic patterns against texts
    that almost match, in a child whose CPU time is capped: each attacked case fails cleanly,
    each matching case passes."""
    from tests.bounded import CATASTROPHIC, run_bounded

    cases = []
    for index, (pattern, attack, match) in enumerate(CATASTROPHIC):
        quoted = pattern.replace("'", "''")
        cases.append(f"  - description: attack {index}\n    vars: {{text: '{attack}'}}\n"
                     f"    assert:\n      - {{type: regex, value: '{quoted}'}}\n")
        cases.append(f"  - description: match {index}\n    vars: {{text: '{match}'}}\n"
                     f"    assert:\n      - {{type: regex, value: '{quoted}'}}\n")
    # The render fails on the argument's own catastrophic pattern; the `error` assertion then
    # searches the message (which quotes the value) with another catastrophic pattern.
    cases.append("  - description: error\n    vars: {text: t, word: '" + "a" * 40 + "'}\n"
                 "    assert:\n      - {type: error, value: '(a+)+$'}\n"
                 "      - {type: error, value: 'does not match pattern'}\n")
    root = write_library({
        "commands/misc/say.md": _CATASTROPHIC_SUITE_COMMAND,
        "tests/attack.yaml": "command: say\ntests:\n" + "".join(cases),
    })
    done = run_bounded([sys.executable, "-m", "tallinn", "test", "--library", str(root), "--json"])
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["errors"] == []
    outcome = {case["description"]: case["outcome"] for case in report["cases"]}
    assert len(outcome) == 2 * len(CATASTROPHIC) + 1
    for index in range(len(CATASTROPHIC)):
        assert outcome[f"attack {index}"] == "failed"
        assert outcome[f"match {index}"] == "passed"
    # The message ends with a quote, so `(a+)+$` finds nothing there.
    (error_case,) = [c for c in report["cases"] if c["description"] == "error"]
    assert [f["assertion"]["value"] for f in error_case["failures"]] == ["(a+)+$"]
    assert "does not match pattern" in error_case["error"]


def test_each_pattern_of_a_suite_is_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a file of fifty cases that share one regular expression, and one with its own,
    compiles two patterns: checking a case and running it use the same compiled one."""
    prompttests.compiled.cache_clear()
    compiles = count_calls(monkeypatch, prompttests, "compile_pattern")
    cases = "".join(f"  - description: case {n}\n    assert: [{{type: regex, value: 'a+b'}}]\n"
                    for n in range(50))
    cases += "  - description: other\n    assert: [{type: regex, value: 'c+d'}]\n"
    tests, problems = prompttests.parse_tests(f"command: x\ntests:\n{cases}", "tests/a.yaml")
    assert not problems
    assert len(tests) == 51
    assert compiles() == 2
    assert tests[0].assertions[0].pattern is tests[49].assertions[0].pattern
