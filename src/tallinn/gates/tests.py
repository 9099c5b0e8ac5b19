"""Gate 2, prompt tests: every command has tests, all of them pass, and no test fails.

Figures, from `[gates.tests]` in `tallinn.toml`:

    commands whose prompt tests all pass  share >= min_tested_commands (1.0; PARTIAL >= 0.8)
    failing prompt tests                  count <= 0
    code line coverage                    line-rate >= min_line_coverage (0.85), only when a
                                          Cobertura report is given (`--coverage-xml FILE`)

A test file that cannot be read is a blocking finding (T101), and so is every failing case.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, overload

from pydantic import Field

from tallinn.gates.base import (
    RENDERS,
    GateContext,
    GateResult,
    GateSettings,
    Metric,
    Status,
    describe,
    gate_settings,
    grade,
)
from tallinn.library import Diagnostic, Library, Severity, TallinnError
from tallinn.library.files import FileReader
from tallinn.library.prompttests import (
    INVALID_TEST,
    CaseResult,
    FailureKind,
    SuiteResult,
    case_json,
    run_tests,
)
from tallinn.wording import plural

NAME = "tests"
TITLE = "Prompt tests"

FAILING_TEST = "T102"
UNKNOWN_COMMAND = "T103"
UNTESTED_COMMAND = "T104"
MISSING_SNAPSHOT = "T105"
UNREADABLE_COVERAGE = "T106"

describe(INVALID_TEST, "A prompt-test file has invalid YAML or does not fit the test schema",
         NAME, Severity.ERROR, "invalid-test-file", doc="""
    ## What it does
    Reports a file in `tests/` that is not valid YAML, or a case that does not fit the
    prompt-test schema (an unknown key, a missing `description`, an unknown assertion type,
    a regular expression that does not compile), at its line and column.

    ## Why is this bad?
    A case that cannot be read does not run, so what it was meant to protect is unchecked.

    ## Example
    ```yaml
    tests:
      - description: names the file
        asert:
          - {type: contains, value: src/app.py}
    ```

    ## Use instead
    ```yaml
    tests:
      - description: names the file
        assert:
          - {type: contains, value: src/app.py}
    ```
    """)
describe(FAILING_TEST, "A prompt test fails: an assertion does not hold or the render fails",
         NAME, Severity.ERROR, "failing-prompt-test", doc="""
    ## What it does
    Reports a prompt test whose render fails unexpectedly, or one of whose assertions does
    not hold on the rendered text. `tallinn test` shows a diff or a snippet.

    ## Why is this bad?
    The command no longer renders what its tests say it should: a changed component, a
    renamed argument or an edited body changed the prompt users get.
    """)
describe(UNKNOWN_COMMAND, "A prompt test names a command the library does not have",
         NAME, Severity.ERROR, "unknown-test-command", doc="""
    ## What it does
    Reports a case whose `command` (or the file's default `command`) is not a loaded command
    of the library: a typo, a renamed command, or a command whose file has errors.

    ## Why is this bad?
    The case tests nothing, and the command it meant to test may be untested.
    """)
describe(UNTESTED_COMMAND, "A command has no prompt test, or one of its tests fails",
         NAME, Severity.WARNING, "untested-command", doc="""
    ## What it does
    Reports a command with no case in `tests/*.yaml`, or with a case that fails. The share of
    the other commands is a figure of the tests gate (`min_tested_commands`).

    ## Why is this bad?
    Nothing notices when an edit to the command or to a component it includes changes what
    it renders.

    ## Use instead
    ```yaml
    command: review-file
    tests:
      - description: names the file under review
        vars: {path: src/app.py}
        assert:
          - {type: contains, value: src/app.py}
    ```
    """)
describe(MISSING_SNAPSHOT, "An equals assertion names a snapshot file that does not exist",
         NAME, Severity.ERROR, "missing-snapshot", doc="""
    ## What it does
    Reports an `equals` assertion whose snapshot file (relative to `tests/`) does not exist.

    ## Why is this bad?
    The case fails on every run, and the render it was meant to pin down is compared with
    nothing, so a change to the command's output goes unnoticed. A missing snapshot is
    usually one that was never written or not committed, or a file that was renamed.

    ## Use instead
    Write the snapshots from the current renders with `tallinn test --update-snapshots`,
    review them and commit them.
    """)
describe(UNREADABLE_COVERAGE, "The code coverage report cannot be read",
         NAME, Severity.ERROR, "unreadable-coverage-report", doc="""
    ## What it does
    Reports a coverage report (`--coverage-xml FILE` or `[gates.tests] coverage_xml`) that
    is missing, is not XML or is not a Cobertura report with a `line-rate`.

    ## Why is this bad?
    The code coverage figure cannot be graded, so the gate cannot vouch for it.
    """)

_CODES = {
    FailureKind.ASSERTION: FAILING_TEST,
    FailureKind.RENDER: FAILING_TEST,
    FailureKind.UNKNOWN_COMMAND: UNKNOWN_COMMAND,
    FailureKind.SNAPSHOT: MISSING_SNAPSHOT,
}


class PromptTestSettings(GateSettings):
    """`[gates.tests]`."""

    min_tested_commands: float = Field(1.0, ge=0, le=1)
    tested_commands_floor: float | None = Field(0.8, ge=0, le=1)
    max_failures: int = Field(0, ge=0)
    min_line_coverage: float = Field(0.85, ge=0, le=1)
    line_coverage_floor: float | None = Field(None, ge=0, le=1)
    coverage_xml: str | None = None  # a Cobertura report, relative to the library folder


SETTINGS = PromptTestSettings


class CoverageError(TallinnError):
    """The coverage report cannot be read: `CoverageError("coverage.xml: no line-rate")`."""


def read_line_rate(path: Path, files: FileReader | None = None) -> float:
    """The overall line rate (0..1) of a Cobertura XML report, as coverage.py writes it;
    with `files`, the report at `path` among them (a stored release's), not on disk."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring, parse

    try:
        if files is None:
            root = parse(path).getroot()
        else:
            data = files.read_bytes(path.as_posix())
            if isinstance(data, Diagnostic):
                raise CoverageError(f"cannot read coverage report {path}: {data.message}")
            root = fromstring(data)
    except OSError as exc:
        raise CoverageError(f"cannot read coverage report {path}: {exc.strerror or exc}") from None
    except (ParseError, DefusedXmlException) as exc:
        raise CoverageError(f"coverage report {path} is not valid XML: {exc}") from None
    rate = root.get("line-rate") if root.tag == "coverage" else None
    if rate is None:
        raise CoverageError(
            f"{path} is not a Cobertura coverage report (expected <coverage line-rate=...>)"
        )
    try:
        value = float(rate)
    except ValueError:
        raise CoverageError(f"{path}: line-rate {rate!r} is not a number") from None
    if not 0 <= value <= 1:
        raise CoverageError(f"{path}: line-rate {value} is outside 0..1")
    return value


def run(ctx: GateContext) -> GateResult:
    """Run every prompt test of the library and grade the result."""
    started = time.perf_counter()
    settings = gate_settings(ctx.library, NAME, PromptTestSettings)
    ctx.progress("reading prompt tests")
    suite = ctx.prompt_tests()
    ctx.progress(f"running {len(suite.tests)} prompt test(s)")
    result = run_tests(ctx.library, suite)
    # The perf gate renders each command with its first test's arguments: these very texts.
    ctx.shared[RENDERS] = {case.test.id: case.output for case in result.results
                            if case.output is not None}
    option = ctx.options.get("coverage_xml")
    coverage = coverage_path(ctx.root, option, settings)
    files = None
    if coverage is None and not option and settings.coverage_xml and ctx.root is None:
        # A stored release has no folder: the setting names one of its own files, if any.
        coverage, files = Path(settings.coverage_xml), ctx.library.files()
    if coverage is not None:
        ctx.progress(f"reading coverage report {coverage}")
    return evaluate(ctx.library, result, settings, coverage, files=files,
                    duration=time.perf_counter() - started)


def coverage_path(
    root: Path | None, option: object, settings: PromptTestSettings
) -> Path | None:
    """The report to read: `--coverage-xml` as given, else the setting, from the library
    folder (a library held in memory has none)."""
    if option:
        return Path(str(option))
    if settings.coverage_xml and root is not None:
        return root / settings.coverage_xml
    return None


def evaluate(
    library: Library,
    result: SuiteResult,
    settings: PromptTestSettings,
    coverage_xml: Path | None = None,
    *,
    files: FileReader | None = None,
    duration: float = 0.0,
) -> GateResult:
    """Grade a test run: figures, findings and details; `coverage_xml` is read from `files`
    when given (see `read_line_rate`)."""
    findings: list[Diagnostic] = list(result.diagnostics)
    for case in result.results:
        findings.extend(_case_findings(case))
    tested = result.tested_commands()
    untested = [c for c in library.commands.values() if c.name not in tested]
    for command in untested:
        findings.append(Diagnostic(
            UNTESTED_COMMAND,
            f"command '{command.name}' has no prompt test, or one of its tests fails",
            command.path, severity=Severity.WARNING,
        ))
    total = len(library.commands)
    share = 100 * (total - len(untested)) / total if total else 100.0
    metrics = [
        Metric("commands whose prompt tests all pass", share,
               _percent(settings.min_tested_commands), "%",
               floor=_percent(settings.tested_commands_floor)),
        Metric("failing prompt tests", float(result.failed), float(settings.max_failures),
               higher_is_better=False),
    ]
    details = [
        f"{result.passed} passed, {result.failed} failed "
        f"({plural(len(result.results), 'case')} in {result.duration_ns / 1e6:.1f} ms)",
        f"{total - len(untested)} of {plural(total, 'command')} pass all their prompt tests",
    ]
    if result.diagnostics:
        details.append(f"{plural(len(result.diagnostics), 'problem')} in test files: those "
                       "cases did not run")
    data: dict[str, Any] = {
        "passed": result.passed,
        "failed": result.failed,
        "commands": total,
        "tested_commands": sorted(tested & set(library.commands)),
        "untested_commands": [c.name for c in untested],
        "cases": [case_json(case) for case in result.results],
    }
    if coverage_xml is not None:
        try:
            rate = read_line_rate(coverage_xml, files)
        except CoverageError as exc:
            findings.append(Diagnostic(UNREADABLE_COVERAGE, str(exc), str(coverage_xml)))
        else:
            metrics.append(Metric("code line coverage", round(rate * 100, 9),
                                  _percent(settings.min_line_coverage), "%",
                                  floor=_percent(settings.line_coverage_floor)))
            details.append(f"code line coverage {rate:.1%} from {coverage_xml}")
            data["line_coverage"] = rate
    blocking = any(f.severity is Severity.ERROR for f in findings)
    status = grade(metrics, blocking=blocking)
    if not library.commands and not result.results:
        status = Status.SKIPPED if not result.diagnostics else status
        details.append("the library has no commands and no prompt tests")
    return GateResult(NAME, TITLE, status, tuple(metrics), tuple(findings), tuple(details),
                      duration=duration, data=data)


@overload
def _percent(share: float) -> float: ...
@overload
def _percent(share: None) -> None: ...
def _percent(share: float | None) -> float | None:
    """Given a share such as 0.85 from the settings, return 85.0 (no float noise)."""
    return None if share is None else round(share * 100, 9)


def _case_findings(case: CaseResult) -> list[Diagnostic]:
    test = case.test
    found = []
    for failure in case.failures:
        where = failure.assertion
        line, col = (where.line, where.col) if where is not None else (test.line, test.col)
        found.append(Diagnostic(
            _CODES[failure.kind], f"{test.description}: {failure.message}", test.path, line, col,
        ))
    return found
