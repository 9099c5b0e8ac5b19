"""`tallinn validate`: gate 1 alone, XML and structure validation, with safe fixes."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from tallinn.cli import common
from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    command_app,
    err,
    fail,
    library_path,
    print_diagnostics,
    write_raw,
)
from tallinn.gates.base import gate_settings
from tallinn.gates.fix import FixReport, fix_files
from tallinn.gates.xml import NAME, XmlSettings, check
from tallinn.library import Diagnostic, load_library
from tallinn.library.loader import collections_paused
from tallinn.wording import plural

app = command_app()


@app.command()
def validate(
    library: LibraryOption = None,
    fix: Annotated[bool, typer.Option("--fix", help="Apply the safe fixes.")] = False,
    unsafe_fixes: Annotated[
        bool, typer.Option("--unsafe-fixes", help="With --fix, apply fixes that change the "
                                                  "rendered prompt too.")
    ] = False,
    as_json: JsonOption = False,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Exit 0 even when there are findings.")
    ] = False,
) -> None:
    """Check XML tags and library structure (gate 1); print findings as path:line:col: CODE.

    Exit 0 when there is no finding, 1 when there are findings.

    Examples:

      tallinn validate --library my-library
      tallinn validate --fix
    """
    workers = common.workers()
    with collections_paused():  # the XML check of a large library too: see there
        lib = common.load(library, quiet=True)
        settings = gate_settings(lib, NAME, XmlSettings)
        void = settings.void_elements
        outcome = check(lib, void=void, workers=workers)
    findings = list(outcome.findings)
    report: FixReport | None = None
    if fix:
        path = library_path(library)

        def recheck() -> list[Diagnostic]:
            return list(check(load_library(path, workers=workers), void=void,
                              workers=workers).findings)

        if lib.root is None:  # pragma: no cover - the command loads a folder
            fail(f"--fix writes fixes into the library's files; {lib.label} is not a folder")
        report = fix_files(lib.root, recheck, unsafe=unsafe_fixes, findings=findings,
                           rounds=settings.fix_rounds)
        findings = list(report.remaining)
    if as_json:
        write_raw(json.dumps(_json(lib.label, len(outcome.files), findings, report),
                             indent=2))
    else:
        _print(findings, report, len(outcome.files), unsafe_fixes, settings.fix_rounds)
    if findings and not exit_zero:
        raise typer.Exit(int(ExitCode.PROBLEMS))


def _print(findings: list[Diagnostic], report: FixReport | None, files: int,
           unsafe: bool, rounds: int) -> None:
    if report is not None:
        for applied in report.applied:
            err.print(f"fixed {applied}", markup=False, highlight=False)
        for rejected in report.rejected:
            err.print(f"[yellow]undone[/] {escape(str(rejected.fix))}: {escape(rejected.reason)}; "
                      "the file is left as it was before this fix", highlight=False)
        for path, reason in report.skipped:
            err.print(f"[yellow]not fixed[/] {escape(path)}: {escape(reason)}", highlight=False)
        if report.uncovered:
            where = sorted({f.path for f in report.uncovered})
            err.print(f"{plural(len(report.uncovered), 'finding')} in {', '.join(where)} "
                      "could be checked only once the fixes let the front matter parse",
                      markup=False, highlight=False)
        if report.unfinished:
            err.print(f"[yellow]stopped[/] after {plural(rounds, 'round')} of fixes with fixes "
                      "still to try (\\[gates.xml] fix_rounds): run 'tallinn validate --fix' "
                      "again", highlight=False, markup=True)
    print_diagnostics(findings)
    errors = sum(f.is_error for f in findings)
    safe = sum(f.fix is not None and f.fix.safe for f in findings)
    more = sum(f.fix is not None and not f.fix.safe for f in findings)
    paths = len({f.path for f in findings})
    summary = (f"{plural(files, 'file')} checked: {plural(len(findings), 'finding')} in "
               f"{plural(paths, 'file')}, {plural(errors, 'error')}")
    if report is not None:
        summary += (f"; {plural(len(report.applied), 'fix', 'fixes')} applied in "
                    f"{plural(len(report.changed), 'file')}")
        if report.rejected:
            summary += f", {len(report.rejected)} undone"
    if report is not None:
        # Fixes tried and undone, or in files --fix would not touch, are not worth a rerun.
        tried = {(r.fix.path, r.fix.code, r.fix.line) for r in report.rejected}
        untouched = {path for path, _ in report.skipped}
        safe -= sum(f.fix is not None and f.fix.safe and (
            (f.path, f.code, f.line) in tried or f.path in untouched) for f in findings)
    if safe:
        summary += f"; {safe} fixable with --fix"
    if more and not unsafe:
        summary += f"; {more} more with --fix --unsafe-fixes"
    style = "red" if errors else ("yellow" if findings else "green")
    err.print(f"[{style}]{summary}[/]")


def _json(root: str, files: int, findings: list[Diagnostic],
          report: FixReport | None) -> dict[str, Any]:
    return {
        "library": root,
        "files": files,
        "errors": sum(f.is_error for f in findings),
        "warnings": sum(not f.is_error for f in findings),
        "findings": [
            {"code": f.code, "severity": f.severity.value, "path": f.path, "line": f.line,
             "col": f.col, "message": f.message,
             "fix": None if f.fix is None else {"description": f.fix.description,
                                                "safe": f.fix.safe}}
            for f in findings
        ],
        "fixed": [] if report is None else [
            {"path": a.path, "line": a.line, "col": a.col, "code": a.code,
             "description": a.description}
            for a in report.applied
        ],
        "restored": [] if report is None else list(report.restored),
        "undone": [] if report is None else [
            {"path": r.fix.path, "line": r.fix.line, "col": r.fix.col, "code": r.fix.code,
             "description": r.fix.description, "reason": r.reason}
            for r in report.rejected
        ],
        "unfinished": False if report is None else report.unfinished,
        "skipped": [] if report is None else [
            {"path": path, "reason": reason} for path, reason in report.skipped
        ],
    }
