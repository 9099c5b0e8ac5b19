"""Quality commands: `tallinn test`, `tallinn docs-coverage` and `tallinn bench`.

Each runs one gate's core and prints it. `test` exits 1 when a case fails, a test file is
invalid or the code coverage given is under its minimum; `docs-coverage` and `bench` exit 1
when their gate is not PASSED. Configuration errors exit 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    command_app,
    err,
    fail,
    load,
    load_driver,
    out,
    print_diagnostics,
    rule,
    write_raw,
)
from tallinn.gates import docs as docs_gate
from tallinn.gates import perf as perf_gate
from tallinn.gates import tests as tests_gate
from tallinn.gates.base import GateResult, Metric, Status, gate_settings
from tallinn.gates.runner import figure
from tallinn.library import Diagnostic, Library
from tallinn.library.prompttests import CaseResult, case_json, load_tests, run_tests
from tallinn.wording import plural

ModelT = TypeVar("ModelT", bound=BaseModel)
STYLES = {Status.PASSED: "green", Status.PARTIAL: "yellow", Status.FAILED: "red",
          Status.SKIPPED: "dim"}


app = command_app()


def _settings(library: Library, gate: str, model: type[ModelT]) -> ModelT:
    return gate_settings(library, gate, model)


def metric_json(metric: Metric) -> dict[str, Any]:
    return {"name": metric.name, "value": metric.value, "threshold": metric.threshold,
            "floor": metric.floor, "unit": metric.unit, "comparison": metric.comparison,
            "status": metric.status.value}


def diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {"code": diagnostic.code, "severity": diagnostic.severity.value,
            "path": diagnostic.path, "line": diagnostic.line, "col": diagnostic.col,
            "message": diagnostic.message}


def result_json(result: GateResult) -> dict[str, Any]:
    """A gate result as plain data."""
    return {
        "gate": result.gate,
        "title": result.title,
        "status": result.status.value,
        "metrics": [metric_json(m) for m in result.metrics],
        "findings": [diagnostic_json(f) for f in result.findings],
        "details": list(result.details),
        "duration_s": result.duration,
        "data": dict(result.data),
    }


def print_metrics(result: GateResult, console: Any = out) -> None:
    table = Table(title=f"{result.title}: {result.status.value}", title_justify="left",
                  title_style=f"bold {STYLES[result.status]}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("status")
    for m in result.metrics:
        limit = f"{m.comparison} {figure(m.threshold, m.unit)}"
        if m.floor is not None:
            limit += f" (floor {figure(m.floor, m.unit)})"
        style = STYLES[m.status]
        table.add_row(m.name, figure(m.value, m.unit), limit, f"[{style}]{m.status.value}[/]")
    console.print(table)
    for detail in result.details:
        console.print(f"  {escape(detail)}")


# --- tallinn test -----------------------------------------------------------------------


def _print_case(result: CaseResult) -> None:
    test = result.test
    outcome = "[green]PASSED[/]" if result.passed else "[red]FAILED[/]"
    written = f" [cyan](wrote {', '.join(result.written)})[/]" if result.written else ""
    err.print(f"{escape(test.id)} [dim]\\[{escape(test.command)}][/] {outcome}{written}",
              highlight=False, soft_wrap=True)


def _print_failure(result: CaseResult) -> None:
    test = result.test
    rule(f"[red]{escape(test.id)}[/]", style="red")
    for failure in result.failures:
        where = failure.assertion
        line, col = (where.line, where.col) if where is not None else (test.line, test.col)
        prefix = f"{test.path}:{line}:{col}:"
        label = f" {escape(str(where))}:" if where is not None else ""
        err.print(f"[bold]{escape(prefix)}[/]{label} {escape(failure.message)}")
        for text in failure.detail.splitlines():
            style = ("green" if text.startswith("+") else "red" if text.startswith("-")
                     else "cyan" if text.startswith("@@") else "dim")
            err.print(f"    [{style}]{escape(text)}[/]", highlight=False, soft_wrap=True)


@app.command("test")
def prompt_tests(
    library: LibraryOption = None,
    as_json: JsonOption = False,
    keyword: Annotated[
        str | None,
        typer.Option("-k", "--keyword", metavar="TEXT",
                     help="Only cases whose id (file::description) or command contains this."),
    ] = None,
    update_snapshots: Annotated[
        bool, typer.Option("--update-snapshots",
                           help="Write the snapshots of 'equals' assertions from the renders.")
    ] = False,
    coverage_xml: Annotated[
        Path | None,
        typer.Option("--coverage-xml", metavar="FILE",
                     help="A Cobertura coverage report (coverage.py) to grade as well."),
    ] = None,
) -> None:
    """Run the library's prompt tests (tests/*.yaml)."""
    lib = load(library)
    settings = _settings(lib, tests_gate.NAME, tests_gate.PromptTestSettings)
    suite = load_tests(lib.source)
    if not as_json:
        for problem in suite.diagnostics:
            err.print(f"[bold]{escape(str(problem))}[/]", highlight=False)
    if keyword is not None and suite.tests and not any(t.matches(keyword) for t in suite.tests):
        fail(f"no prompt test matches -k {keyword!r} ({plural(len(suite.tests), 'test')} in "
             "all; a case matches when its id, file::description, or its command contains "
             "the text)")
    started = time.perf_counter()
    result = run_tests(lib, suite, keyword=keyword, update_snapshots=update_snapshots,
                       on_result=None if as_json else _print_case)
    coverage = tests_gate.coverage_path(lib.root, coverage_xml, settings)
    gate = tests_gate.evaluate(lib, result, settings, coverage,
                               duration=time.perf_counter() - started)
    coverage_metric = next((m for m in gate.metrics if m.name == "code line coverage"), None)
    coverage_problem = any(f.code == tests_gate.UNREADABLE_COVERAGE for f in gate.findings)
    coverage_low = coverage_metric is not None and not coverage_metric.meets(
        coverage_metric.threshold)
    failed = bool(result.failed or result.diagnostics or coverage_problem or coverage_low)
    if as_json:
        write_raw(json.dumps({
            "library": lib.label,
            "passed": result.passed,
            "failed": result.failed,
            "deselected": result.deselected,
            "duration_s": result.duration_ns / 1e9,
            "errors": [diagnostic_json(d) for d in result.diagnostics],
            "cases": [case_json(r) for r in result.results],
            "status": gate.status.value,
            "metrics": [metric_json(m) for m in gate.metrics],
            "findings": [diagnostic_json(f) for f in gate.findings],
        }, indent=2))
    else:
        for case in result.results:
            if not case.passed:
                _print_failure(case)
        for finding in gate.findings:
            if finding.code == tests_gate.UNREADABLE_COVERAGE:
                err.print(f"[red]error:[/] {escape(finding.message)}")
        _print_test_summary(lib, gate, list(result.results), result.deselected,
                            len(result.diagnostics), result.duration_ns / 1e9, coverage_metric)
    if failed:
        raise typer.Exit(int(ExitCode.PROBLEMS))


def _print_test_summary(lib: Library, gate: GateResult, results: list[CaseResult],
                        deselected: int, invalid: int, seconds: float,
                        coverage: Metric | None) -> None:
    failed = sum(not r.passed for r in results)
    passed = len(results) - failed
    parts = []
    if failed:
        parts.append(f"[red]{failed} failed[/]")
    parts.append(f"[green]{passed} passed[/]")
    if deselected:
        parts.append(f"{deselected} deselected")
    if invalid:
        parts.append(f"[red]{plural(invalid, 'error')} in test files[/]")
    style = "red" if failed or invalid else "green"
    rule(f"{', '.join(parts)} [{style}]in {seconds:.2f}s[/]", style=style)
    share = gate.metrics[0]
    total = len(lib.commands)
    passing = len(gate.data.get("tested_commands", ()))
    percent = 100.0 * passing / total if total else 100.0
    line = (f"commands whose cases all pass: {passing} of {total} "
            f"({figure(percent, '%')}, threshold {figure(share.threshold, '%')})")
    if failed:
        line += f"; {plural(failed, 'case')} failed"
    err.print(line, markup=False)
    untested = gate.data.get("untested_commands", [])
    if untested and not deselected:
        err.print(f"[yellow]untested:[/] {escape(', '.join(untested))}")
    if coverage is not None:
        colour = STYLES[coverage.status]
        err.print(f"code line coverage: [{colour}]{figure(coverage.value, '%')}[/] "
                  f"(minimum {figure(coverage.threshold, '%')})")


# --- tallinn docs-coverage --------------------------------------------------------------


@app.command("docs-coverage")
def docs_coverage(library: LibraryOption = None, as_json: JsonOption = False) -> None:
    """Measure documentation coverage: descriptions, argument docs, examples, hints."""
    lib = load(library)
    settings = _settings(lib, docs_gate.NAME, docs_gate.SETTINGS)
    started = time.perf_counter()
    found = docs_gate.requirements(lib, settings)
    result = docs_gate.evaluate(found, settings, duration=time.perf_counter() - started)
    if as_json:
        write_raw(json.dumps(result_json(result), indent=2))
    else:
        print_diagnostics(list(result.findings))
        print_metrics(result, err)
    if result.status not in (Status.PASSED, Status.SKIPPED):
        raise typer.Exit(int(ExitCode.PROBLEMS))


# --- tallinn bench ----------------------------------------------------------------------


@app.command()
def bench(
    library: LibraryOption = None,
    as_json: JsonOption = False,
    load_test: Annotated[
        bool, typer.Option("--load", help="Also drive a live MCP server with concurrent clients.")
    ] = False,
    clients: Annotated[
        int | None, typer.Option(min=1, help="Concurrent clients for --load.", metavar="N")
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(min=0.1, help="Seconds the --load test runs.", metavar="SECONDS")
    ] = None,
) -> None:
    """Measure load time, render latency and memory (the performance gate)."""
    lib = load(library)
    settings = _settings(lib, perf_gate.NAME, perf_gate.PerfSettings)
    started = time.perf_counter()
    columns = (TextColumn("[bold]bench[/]"), BarColumn(), TextColumn("{task.description}"),
               TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("starting", total=None)

        def step(message: str, done: int, total: int) -> None:
            bar.update(task, description=escape(message), completed=done, total=total)

        measured = perf_gate.measure(lib, lib.root, settings, step)
        load_result = None
        if load_test:
            bar.update(task, description="load test")
            options = {"load": True, "clients": clients, "duration": duration,
                       "load_driver": load_driver()}
            load_result = perf_gate.load_test(lib, settings, options)
    result = perf_gate.evaluate(lib, measured, settings, load_result,
                                duration=time.perf_counter() - started)
    if as_json:
        write_raw(json.dumps(result_json(result), indent=2))
    else:
        print_diagnostics(list(result.findings))
        print_metrics(result)
    if result.status is not Status.PASSED:
        raise typer.Exit(int(ExitCode.PROBLEMS))
