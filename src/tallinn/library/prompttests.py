"""Prompt tests: cases in a library's `tests/*.yaml` that render a command and check the text.

    command: code-review                 # the default command of the file's cases
    tests:
      - description: names the file under review
        vars: {path: src/app.py}
        assert:
          - type: contains
            value: src/app.py

Loading never raises on a bad file: YAML and schema problems become `Diagnostic`s (code
`T101`) at the file's line and column, and every other case still runs. Running renders each
case once and checks every assertion against the text; a case passes when all of them hold.
The format is described in `docs/testing.md`.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tallinn.library import yamlsafe
from tallinn.library.diagnostics import Diagnostic, LineIndex
from tallinn.library.errors import RenderError
from tallinn.library.files import FileReader, Limits, normalise
from tallinn.library.model import ArgValue, Library
from tallinn.library.patterns import Pattern, PatternError, compile_pattern
from tallinn.library.render import render
from tallinn.library.source import LibrarySource, as_source
from tallinn.wording import close_matches

PathInput = str | os.PathLike[str]
TESTS_DIR = "tests"
INVALID_TEST = "T101"


class AssertionType(StrEnum):
    CONTAINS = "contains"
    ICONTAINS = "icontains"
    NOT_CONTAINS = "not-contains"
    REGEX = "regex"
    EQUALS = "equals"
    MAX_TOKENS = "max-tokens"
    ERROR = "error"


_KINDS = {t.value: t for t in AssertionType}  # as written in a test file
_TEXT_TYPES = frozenset({AssertionType.CONTAINS, AssertionType.ICONTAINS,
                         AssertionType.NOT_CONTAINS})
_PATTERN_TYPES = frozenset({AssertionType.REGEX, AssertionType.ERROR})


class FailureKind(StrEnum):
    """Why a case failed: the tests gate reports each kind under its own rule code."""

    ASSERTION = "assertion"  # an assertion did not hold
    RENDER = "render"  # the render failed and no `error` assertion expected it
    UNKNOWN_COMMAND = "unknown-command"  # the case names a command the library lacks
    SNAPSHOT = "snapshot"  # an `equals` snapshot file is missing


# --- the model ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assertion:
    """One check on a rendered prompt, e.g. `Assertion(CONTAINS, "src/app.py", 7, 11)`."""

    type: AssertionType
    value: str | int  # text, a pattern, a snapshot path (relative to tests/) or a token budget
    line: int = 1
    col: int = 1
    pattern: Pattern | None = field(default=None, compare=False, repr=False)  # RE2: linear time

    def __str__(self) -> str:
        return f"{self.type.value} {self.value!r}"


@dataclass(frozen=True, slots=True)
class PromptTest:
    """One case: render `command` with `vars` (and `raw` as `$ARGUMENTS`), then assert."""

    id: str  # "tests/review.yaml::names the file", unique within a suite
    path: str  # the test file, relative to the library root
    description: str
    command: str
    vars: Mapping[str, ArgValue]
    raw: str | None
    assertions: tuple[Assertion, ...]
    line: int = 1
    col: int = 1

    @property
    def expects_error(self) -> bool:
        return any(a.type is AssertionType.ERROR for a in self.assertions)

    def matches(self, keyword: str) -> bool:
        """`-k` selection: a case-insensitive substring of the id or the command name."""
        needle = keyword.casefold()
        return needle in self.id.casefold() or needle in self.command.casefold()


@dataclass(frozen=True, slots=True)
class PromptSuite:
    """Every case found under `tests/`, and the problems of the files that could not be read."""

    tests: tuple[PromptTest, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()
    files: tuple[str, ...] = ()

    def for_command(self, name: str) -> tuple[PromptTest, ...]:
        return tuple(t for t in self.tests if t.command == name)


# --- loading ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def compiled(pattern: str) -> Pattern:
    """`compile_pattern`, once per pattern: checking a case compiles its pattern, running it
    needs it compiled, and a suite repeats the same patterns case after case."""
    return compile_pattern(pattern)


class _AssertionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    value: Any

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in _KINDS:
            kinds = list(_KINDS)
            close = close_matches(value, kinds, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"unknown assertion type '{value}'{hint}; "
                             f"expected one of {', '.join(kinds)}")
        return value

    @field_validator("value")
    @classmethod
    def _value_fits_type(cls, value: Any, info: Any) -> Any:
        kind = info.data.get("type")
        if kind is None:  # the type itself is wrong and reported
            return value
        if kind == AssertionType.MAX_TOKENS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError("max-tokens takes a positive whole number of tokens")
            return value
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, int | float):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(f"{kind} takes a string value, not {_yaml_kind(value)}")
        if kind == AssertionType.EQUALS:
            snapshot = PurePosixPath(value.replace("\\", "/"))
            if not value.strip() or snapshot.is_absolute() or ".." in snapshot.parts:
                raise ValueError("equals takes a snapshot file path inside tests/, such as "
                                 "snapshots/review.md")
        if kind in _PATTERN_TYPES:
            try:
                compiled(value)
            except PatternError as exc:
                shown = repr(value) if len(value) <= 78 else repr(value[:72]) + "..."
                raise ValueError(f"invalid regular expression {shown}: RE2 cannot run it: "
                                 f"{exc}") from None
        if not value and kind in _TEXT_TYPES:
            raise ValueError(f"{kind} takes a non-empty string")
        return value


class _CaseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    description: str
    command: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    raw: str | None = None
    assertions: list[_AssertionSpec] = Field(default_factory=list, alias="assert")

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description must not be empty")
        return value.strip()

    @field_validator("vars")
    @classmethod
    def _scalar_values(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, item in value.items():
            if not isinstance(item, str | int | float | bool):
                raise ValueError(f"the value of '{name}' must be a string, number or boolean, "
                                 f"not {_yaml_kind(item)}")
        return value

    @field_validator("assertions")
    @classmethod
    def _error_alone(cls, value: list[_AssertionSpec]) -> list[_AssertionSpec]:
        kinds = {a.type for a in value}
        if AssertionType.ERROR in kinds and kinds != {AssertionType.ERROR}:
            raise ValueError("an 'error' assertion expects the render to fail, so it cannot be "
                             "combined with assertions on the rendered text")
        return value


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str | None = None
    description: str | None = None
    tests: list[Any]


def _yaml_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _is_test_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and not name.startswith(".")


def find_test_files(root: PathInput) -> list[Path]:
    """The YAML files directly in `root/tests/`, sorted (snapshots may live in subfolders).

    Whatever their type: `load_tests` reports one that is not a regular file.
    """
    folder = Path(root) / TESTS_DIR
    if not folder.is_dir():
        return []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    return sorted(folder / e.name for e in entries
                  if _is_test_file(e.name) and not _is_folder(e))


def _test_paths(reader: FileReader) -> list[str]:
    """The library paths of the test files, as `find_test_files` finds them in a folder."""
    if reader.root is not None:
        return [p.relative_to(reader.root).as_posix() for p in find_test_files(reader.root)]
    paths, _ = reader.walk(TESTS_DIR, _is_test_file)
    return [rel for rel in paths if rel.count("/") == 1]


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def load_tests(root: LibrarySource | PathInput, limits: Limits | None = None) -> PromptSuite:
    """Read every test file of the library `root` (a source, or a folder); problems become
    diagnostics.

    Files are read through `tallinn.library.files`, within `limits` (by default those of the
    library's tallinn.toml); one that cannot be read is a T101 finding.
    """
    source = as_source(root)
    if limits is None:
        from tallinn.library.loader import load_config

        limits = load_config(source, [], hashlib.sha256()).limits
    reader = source.files(limits)
    tests: list[PromptTest] = []
    diagnostics: list[Diagnostic] = []
    files: list[str] = []
    for rel in _test_paths(reader):
        files.append(rel)
        text = reader.read_text(rel)
        if isinstance(text, Diagnostic):
            diagnostics.append(replace(text, code=INVALID_TEST))
            continue
        found, problems = parse_tests(text, rel, limits)
        tests.extend(found)
        diagnostics.extend(problems)
    return PromptSuite(tuple(tests), tuple(diagnostics), tuple(files))


def parse_tests(
    text: str, path: str, limits: Limits | None = None
) -> tuple[list[PromptTest], list[Diagnostic]]:
    """Parse one test file. A bad case is reported and left out; the others are kept.

    YAML is parsed within `limits` (see `tallinn.library.yamlsafe`).
    """
    text = normalise(text)
    try:
        node, data = yamlsafe.load(text, limits or Limits())
    except yaml.YAMLError as exc:
        index = yamlsafe.mark_index(exc)
        lines = LineIndex(text)
        line, col = lines.line_col(min(index, len(text))) if index is not None else (1, 1)
        problem = yamlsafe.problem(exc)
        start = lines.offset(line)
        if "\t" in text[start : start + col]:
            problem = "tabs are not allowed in YAML: indent with spaces"
        return [], [Diagnostic(INVALID_TEST, f"invalid YAML: {problem}", path, line, col)]
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor: `2001-13-45`
        return [], [Diagnostic(INVALID_TEST, f"invalid YAML value: {exc}", path)]
    if node is None or not isinstance(data, dict):
        line, col = _start(node)
        return [], [Diagnostic(
            INVALID_TEST,
            "a test file is a mapping with a 'tests:' list (and optionally a default 'command:')",
            path, line, col,
        )]
    diagnostics: list[Diagnostic] = []
    try:
        spec = _FileSpec.model_validate(data)
    except ValidationError as exc:
        diagnostics.extend(_schema_diagnostics(exc, node, (), path))
        return [], diagnostics
    tests_node = _child(node, "tests")
    tests: list[PromptTest] = []
    seen: dict[str, int] = {}
    for index, raw_case in enumerate(spec.tests):
        case_node = (tests_node.value[index]
                     if isinstance(tests_node, yaml.SequenceNode) else tests_node)
        where: tuple[str | int, ...] = ("tests", index)
        if not isinstance(raw_case, dict):
            line, col = _start(case_node)
            diagnostics.append(Diagnostic(
                INVALID_TEST, f"{_dotted(where)}: a case is a mapping with 'description', "
                f"'vars' and 'assert', not {_yaml_kind(raw_case)}", path, line, col))
            continue
        try:
            case = _CaseSpec.model_validate(raw_case)
        except ValidationError as exc:
            assert case_node is not None  # the case was read from this node
            diagnostics.extend(_schema_diagnostics(exc, case_node, where, path))
            continue
        command = case.command or spec.command
        line, col = _start(case_node)
        if not command:
            diagnostics.append(Diagnostic(
                INVALID_TEST, f"{_dotted(where)}: the case names no 'command' and the file has "
                "no default 'command:'", path, line, col))
            continue
        test_id = f"{path}::{case.description}"
        seen[test_id] = seen.get(test_id, 0) + 1
        if seen[test_id] > 1:
            test_id += f" [{seen[test_id]}]"
        assertions_node = _child(case_node, "assert")
        assertions = []
        for number, assertion in enumerate(case.assertions):
            a_line, a_col = _start(assertions_node.value[number]
                                   if isinstance(assertions_node, yaml.SequenceNode) else None)
            kind = AssertionType(assertion.type)
            pattern = compiled(assertion.value) if kind in _PATTERN_TYPES else None
            assertions.append(Assertion(kind, assertion.value, a_line, a_col, pattern))
        tests.append(PromptTest(
            id=test_id, path=path, description=case.description, command=command.lstrip("/"),
            vars=dict(case.vars), raw=case.raw, assertions=tuple(assertions), line=line, col=col,
        ))
    return tests, diagnostics


def _start(node: yaml.Node | None) -> tuple[int, int]:
    if node is None:
        return 1, 1
    return node.start_mark.line + 1, node.start_mark.column + 1


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if key_node.value == key:
                return value_node  # type: ignore[no-any-return]
    return None


def _locate(node: yaml.Node, loc: Sequence[str | int]) -> tuple[yaml.Node, yaml.Node | None]:
    """Follow a pydantic error location through YAML nodes; return (deepest node, its key).

    A location that leaves the document (a missing key) stops at the mapping that lacks it.
    """
    key: yaml.Node | None = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if str(key_node.value) == str(part):
                    key, node = key_node, value_node
                    break
            else:
                return node, None
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                return node, None
            key, node = None, node.value[part]
        else:
            break
    return node, key


def _dotted(loc: Sequence[str | int]) -> str:
    """Given ("tests", 2, "assert", 0, "type"), return `tests[2].assert[0].type`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _schema_diagnostics(
    exc: ValidationError, node: yaml.Node, prefix: tuple[str | int, ...], path: str
) -> list[Diagnostic]:
    diagnostics = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        target, key = _locate(node, loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            line, col = _start(key or target)
            name = str(loc[-1]) if loc else "?"
            allowed = _allowed_keys(prefix, loc)
            close = close_matches(name, allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(allowed)}"
            message = f"unknown key '{name}' ({hint})"
            loc = loc[:-1]
        elif kind == "missing":
            line, col = _start(target)
            message = f"'{loc[-1]}' is required" if loc else "a required key is missing"
            loc = loc[:-1]
        else:
            line, col = _start(target)
            message = str(error["msg"]).removeprefix("Value error, ")
        where = _dotted((*prefix, *loc))
        diagnostics.append(Diagnostic(
            INVALID_TEST, f"{where}: {message}" if where else message, path, line, col,
        ))
    return diagnostics


def _allowed_keys(prefix: tuple[str | int, ...], loc: tuple[str | int, ...]) -> list[str]:
    depth = len([p for p in (*prefix, *loc[:-1]) if isinstance(p, str)])
    if depth == 0:
        return ["command", "description", "tests"]
    if depth == 1:
        return ["description", "command", "vars", "raw", "assert"]
    return ["type", "value"]


# --- running ------------------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """Estimate how many tokens a model reads for `text`, erring on the high side.

    Claude's current tokenizer is not published, so this counts the pieces a BPE tokenizer
    splits text into: a run of ASCII letters is one token, plus one per started 6 letters
    past its fifth; a run of letters of other scripts one, plus one per 2 letters; a CJK
    character one; a run of digits one per 3 digits; a run of punctuation one per 2
    characters; a line break one. It was calibrated against the last tokenizer Anthropic
    published; `docs/testing.md` gives the figures.
    """
    if text.isascii():
        return _estimate_ascii(text.encode("ascii"))
    total = 0
    # One tuple per piece, the piece in its kind's place: no match objects to ask, which
    # makes this the fastest exact form in pure Python. 1 + ceil((n - 5) / 6) for n > 5, and 1
    # below, is 1 + n // 6; ceil(n / 3) is (n + 2) // 3; ceil(n / 2) is (n + 1) // 2.
    for cjk, word, digits, newlines, letters, other in _PIECE.findall(text):
        if word:
            total += 1 + len(word) // 6
        elif cjk or newlines:
            total += 1
        elif digits:
            total += (len(digits) + 2) // 3
        elif letters:  # other scripts tokenise less well than English
            total += 1 + len(letters) // 2
        else:  # punctuation and symbols
            total += (len(other) + 1) // 2
    return total


_PIECE = re.compile(
    r"(?P<cjk>[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])"
    r"|(?P<word>[A-Za-z]+)"
    r"|(?P<digits>\d+)"
    r"|(?P<newlines>\n+)"
    r"|(?P<letters>[^\W\d_]+)"
    r"|(?P<other>[^\s\w]+|_+)"
)


def _ascii_runs() -> dict[str, bytes]:
    """For each kind of piece an ASCII character can be, a `bytes.translate` table that keeps
    the characters of that kind and blanks the others, so that `split()` cuts the pieces of
    that kind. The kinds come from `_PIECE` itself, character by character."""
    kinds: dict[int, str] = {}
    for code in range(128):
        match = _PIECE.match(chr(code))
        if match is not None and match.lastgroup is not None:
            kind = match.lastgroup
            kinds[code] = "underscores" if chr(code) == "_" else kind
    return {kind: bytes(b"x"[0] if kinds.get(code) == kind else b" "[0] for code in range(256))
            for kind in ("word", "digits", "newlines", "other", "underscores")}


_ASCII_RUNS = _ascii_runs()


def _estimate_ascii(data: bytes) -> int:
    """`estimate_tokens` of ASCII text, where pieces are runs of one kind of character: each
    kind's runs are cut in one pass in C instead of piece by piece."""
    runs = _ASCII_RUNS
    words = data.translate(runs["word"]).split()
    total = len(words) + sum([len(w) // 6 for w in words])
    total += sum([(len(d) + 2) // 3 for d in data.translate(runs["digits"]).split()])
    total += len(data.translate(runs["newlines"]).split())
    total += sum([(len(o) + 1) // 2 for o in data.translate(runs["other"]).split()])
    total += sum([(len(u) + 1) // 2 for u in data.translate(runs["underscores"]).split()])
    return total


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a case failed: a message, and a diff or a snippet of the rendered text."""

    kind: FailureKind
    message: str
    assertion: Assertion | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case."""

    test: PromptTest
    failures: tuple[Failure, ...] = ()
    output: str | None = None  # the rendered text, when the render succeeded
    error: str | None = None  # the render error, when it failed
    duration_ns: int = 0
    written: tuple[str, ...] = ()  # snapshot files written by --update-snapshots

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The outcome of a run: one result per selected case, and the test-file problems."""

    results: tuple[CaseResult, ...]
    diagnostics: tuple[Diagnostic, ...] = ()
    duration_ns: int = 0
    deselected: int = 0

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.diagnostics

    def tested_commands(self) -> set[str]:
        """Commands with at least one case, every one of which passed: a command with a
        failing case is not tested, however many others pass."""
        tried = {r.test.command for r in self.results}
        return tried - {r.test.command for r in self.results if not r.passed}


def run_tests(
    library: Library,
    suite: PromptSuite | None = None,
    *,
    keyword: str | None = None,
    update_snapshots: bool = False,
    on_result: Callable[[CaseResult], None] | None = None,
) -> SuiteResult:
    """Run the library's prompt tests (or `suite`); `keyword` selects cases as `-k` does."""
    started = time.perf_counter_ns()
    if suite is None:
        suite = load_tests(library.source, library.config.limits)
    selected = [t for t in suite.tests if keyword is None or t.matches(keyword)]
    results = []
    for test in selected:
        result = run_case(library, test, update_snapshots=update_snapshots)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return SuiteResult(
        tuple(results), suite.diagnostics, time.perf_counter_ns() - started,
        len(suite.tests) - len(selected),
    )


def run_case(library: Library, test: PromptTest, *, update_snapshots: bool = False) -> CaseResult:
    """Render one case and check each of its assertions."""
    started = time.perf_counter_ns()
    command = library.commands.get(test.command)
    if command is None:
        unknown = Failure(FailureKind.UNKNOWN_COMMAND, _unknown_command(library, test.command))
        return CaseResult(test, (unknown,), duration_ns=time.perf_counter_ns() - started)
    try:
        output = render(library, command, test.vars, test.raw)
    except RenderError as exc:
        return _check_error(test, str(exc), started)
    if test.expects_error:
        patterns = ", ".join(repr(a.value) for a in test.assertions)
        rendered = Failure(
            FailureKind.ASSERTION,
            f"expected the render to fail with an error matching {patterns}, but it rendered "
            f"{len(output)} characters",
            test.assertions[0], _head(output),
        )
        return CaseResult(test, (rendered,), output,
                          duration_ns=time.perf_counter_ns() - started)
    failures: list[Failure] = []
    written: list[str] = []
    files = library.files()
    for assertion in test.assertions:
        failure: Failure | None
        if assertion.type is AssertionType.EQUALS:
            failure, wrote = _check_snapshot(assertion, output, files, update_snapshots)
            if wrote:
                written.append(wrote)
        else:
            failure = check(assertion, output)
        if failure is not None:
            failures.append(failure)
    return CaseResult(test, tuple(failures), output, duration_ns=time.perf_counter_ns() - started,
                      written=tuple(written))


def _check_error(test: PromptTest, message: str, started: int) -> CaseResult:
    elapsed = time.perf_counter_ns() - started
    if not test.expects_error:
        failure = Failure(FailureKind.RENDER, f"render failed: {message}")
        return CaseResult(test, (failure,), error=message, duration_ns=elapsed)
    failures = tuple(
        Failure(FailureKind.ASSERTION,
                f"the render failed, but its error does not match {a.value!r}", a,
                f"error: {message}")
        for a in test.assertions
        if a.pattern is not None and not a.pattern.search(message)
    )
    return CaseResult(test, failures, error=message, duration_ns=elapsed)


def _unknown_command(library: Library, name: str) -> str:
    broken = [d for d in library.errors if d.path.rsplit("/", 1)[-1] == f"{name}.md"]
    if broken:
        return f"command '{name}' has errors and is not loaded (see {broken[0].path})"
    close = close_matches(name, list(library.commands), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown command '{name}'{hint}"


def check(assertion: Assertion, output: str) -> Failure | None:
    """Check one assertion on rendered text (not `equals` or `error`, which need more)."""
    kind = assertion.type
    value = assertion.value
    if kind is AssertionType.MAX_TOKENS:
        assert isinstance(value, int)
        tokens = estimate_tokens(output)
        if tokens <= value:
            return None
        return Failure(FailureKind.ASSERTION,
                       f"about {tokens} tokens, over the budget of {value} "
                       f"({len(output)} characters)", assertion)
    assert isinstance(value, str)
    if kind is AssertionType.CONTAINS:
        if value in output:
            return None
        return Failure(FailureKind.ASSERTION, f"expected the text to contain {value!r}",
                       assertion, _closest(output, value))
    if kind is AssertionType.ICONTAINS:
        if value.casefold() in output.casefold():
            return None
        return Failure(FailureKind.ASSERTION,
                       f"expected the text to contain {value!r} (ignoring case)", assertion,
                       _closest(output.casefold(), value.casefold(), output))
    if kind is AssertionType.NOT_CONTAINS:
        at = output.find(value)
        if at < 0:
            return None
        return Failure(FailureKind.ASSERTION, f"expected the text not to contain {value!r}",
                       assertion, _around(output, at, len(value)))
    if kind is AssertionType.REGEX:
        assert assertion.pattern is not None
        if assertion.pattern.search(output):
            return None
        return Failure(FailureKind.ASSERTION, f"expected the text to match /{value}/",
                       assertion, _head(output))
    raise ValueError(f"check() does not handle {kind.value} assertions")


def _check_snapshot(
    assertion: Assertion, output: str, files: FileReader, update: bool
) -> tuple[Failure | None, str | None]:
    """Compare with the snapshot, read (and written) only as a regular file in the library:
    never a FIFO, a device or a link leading out, which `--update-snapshots` would write
    through."""
    rel = str(assertion.value)
    shown = f"{TESTS_DIR}/{rel}"
    expected: str | None = None
    if files.exists(shown):
        read = files.read_text(shown)
        if isinstance(read, Diagnostic):
            return Failure(FailureKind.SNAPSHOT, f"snapshot {shown} {read.message}",
                           assertion), None
        expected = read
    if expected == output:
        return None, None
    if update:
        if files.root is None:
            return Failure(FailureKind.SNAPSHOT, f"snapshot {shown} not written: the library "
                           "is not a folder", assertion), None
        path = files.root / TESTS_DIR / rel
        if not files.stays_inside(shown):  # `tests/snapshots -> /elsewhere`
            return Failure(FailureKind.SNAPSHOT, f"snapshot {shown} not written: a symbolic "
                           "link on its way leads outside the library", assertion), None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(output, encoding="utf-8", newline="\n")
        return None, shown
    if expected is None:
        return Failure(FailureKind.SNAPSHOT,
                       f"snapshot {shown} does not exist; write it with "
                       "'tallinn test --update-snapshots'", assertion), None
    diff = "".join(difflib.unified_diff(
        expected.splitlines(keepends=True), output.splitlines(keepends=True),
        fromfile=f"{shown} (snapshot)", tofile="rendered", n=2,
    ))
    return Failure(FailureKind.ASSERTION,
                   f"the rendered text differs from snapshot {shown} (update it with "
                   "'tallinn test --update-snapshots' if the change is intended)",
                   assertion, diff), None


_CLOSEST_NEEDLE = 200  # characters of an expected value looked for in the render
_CLOSEST_WORK = 4_000_000  # most haystack x needle characters compared for the hint


def _closest(haystack: str, needle: str, shown: str | None = None) -> str:
    """A snippet of the rendered text around its longest stretch in common with `needle`."""
    text = shown if shown is not None else haystack
    if not haystack:
        return "(the rendered text is empty)"
    needle = needle[:_CLOSEST_NEEDLE]
    if len(haystack) * len(needle) > _CLOSEST_WORK:
        # The longest common stretch costs up to len(haystack) * len(needle) steps: beyond
        # the bound the hint is the text's head, so a hostile case cannot stall the run.
        return _head(text)
    matcher = difflib.SequenceMatcher(None, haystack, needle, autojunk=False)
    match = matcher.find_longest_match(0, len(haystack), 0, len(needle))
    if match.size < min(4, len(needle)):
        return _head(text)
    return "closest text:\n" + _around(text, match.a, match.size)


def _around(text: str, at: int, size: int, context: int = 1) -> str:
    """The lines holding `text[at:at+size]`, with `context` lines either side, numbered."""
    lines = text.split("\n")
    first = text.count("\n", 0, at)
    last = text.count("\n", 0, at + size)
    start, end = max(0, first - context), min(len(lines), last + context + 1)
    return "\n".join(f"{n + 1:>4} | {lines[n]}" for n in range(start, end))


def _head(text: str, count: int = 6) -> str:
    lines = text.split("\n")
    shown = "\n".join(f"{n + 1:>4} | {line}" for n, line in enumerate(lines[:count]))
    more = len(lines) - count
    return shown + (f"\n     | ... {more} more line(s)" if more > 0 else "")


def case_json(result: CaseResult) -> dict[str, Any]:
    """A case result as plain data, for `--json` and the gate's report."""
    test = result.test
    return {
        "id": test.id,
        "path": test.path,
        "line": test.line,
        "description": test.description,
        "command": test.command,
        "outcome": "passed" if result.passed else "failed",
        "duration_ms": round(result.duration_ns / 1e6, 4),
        "failures": [
            {"kind": f.kind.value, "message": f.message, "detail": f.detail,
             "assertion": None if f.assertion is None else {
                 "type": f.assertion.type.value, "value": f.assertion.value,
                 "line": f.assertion.line}}
            for f in result.failures
        ],
        "error": result.error,
        "written": list(result.written),
    }
