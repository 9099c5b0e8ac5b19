"""`tallinn gates`: run the quality gates, print a summary, write the readiness report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from tallinn.cli.common import (
    ExitCode,
    LibraryOption,
    StoreOption,
    command_app,
    err,
    fail,
    load,
    load_driver,
    write_raw,
)
from tallinn.gates import runner
from tallinn.gates.base import GateResult, Status
from tallinn.gates.report import Format, render
from tallinn.gates.runner import (
    Readiness,
    check_settings,
    figure,
    run_gates,
    select,
    unaccepted_blocking,
)
from tallinn.library import FilesSource, Library, LibrarySource, TallinnError, build_library
from tallinn.library.frontmatter import parsed_once
from tallinn.wording import plural

STYLES = {Status.PASSED: "green", Status.PARTIAL: "yellow", Status.FAILED: "red",
          Status.SKIPPED: "dim"}
SUFFIXES = {".json": Format.JSON, ".md": Format.MARKDOWN, ".markdown": Format.MARKDOWN,
            ".sarif": Format.SARIF, ".txt": Format.TEXT}
SHOWN_FINDINGS = 5

app = command_app()


class ProgressDisplay:
    """The runner's observer as a Rich progress display: a task per gate, its latest message."""

    def __init__(self, bar: Progress, names: list[str]) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {
            name: bar.add_task(f"[dim]{name}[/]", total=1, note="waiting", start=False)
            for name in names
        }

    def started(self, gate: str, title: str) -> None:
        task = self.tasks[gate]
        self.bar.start_task(task)
        name = f"[bold]{gate}[/]" + (f" {escape(title)}" if title != gate else "")
        self.bar.update(task, description=name, note="running")

    def progress(self, gate: str, message: str) -> None:
        self.bar.update(self.tasks[gate], note=escape(message))

    def finished(self, gate: str, result: GateResult) -> None:
        style = STYLES[result.status]
        self.bar.update(
            self.tasks[gate],
            completed=1,
            note=f"[{style}]{result.status.value}[/] in {result.duration:.2f} s",
        )


@app.command()
def gates(
    library: LibraryOption = None,
    only: Annotated[
        str | None,
        typer.Option(help="Comma-separated gates to run: xml,tests,perf,security,docs.",
                     metavar="GATE[,GATE]"),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", "-f", metavar="FORMAT",
                     help="Report format: text, json, markdown, sarif or github (workflow "
                     "annotations). Default: each --report file's suffix (.md, .json, "
                     ".sarif, else text).", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    report: Annotated[
        list[Path] | None,
        typer.Option(help="Write the report to this file; repeat for several formats. "
                     "Without it, json, markdown and sarif go to stdout.",
                     metavar="PATH", dir_okay=False, show_default=False),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Baseline of accepted findings (security gate).", exists=True,
                     dir_okay=False, show_default=False, metavar="FILE"),
    ] = None,
    coverage_xml: Annotated[
        Path | None,
        typer.Option("--coverage-xml", help="Cobertura coverage.xml of the code (tests gate).",
                     exists=True, dir_okay=False, show_default=False, metavar="FILE"),
    ] = None,
    load_test: Annotated[
        bool, typer.Option("--load", help="Also run the load test (perf gate).")
    ] = False,
    write_baseline: Annotated[
        Path | None,
        typer.Option("--write-baseline", help="Write every finding to this baseline file "
                     "(reasons kept from --baseline, else 'TODO: justify').",
                     dir_okay=False, show_default=False, metavar="FILE"),
    ] = None,
    exit_zero: Annotated[
        bool, typer.Option("--exit-zero", help="Exit 0 on NO-GO too (advisory runs).")
    ] = False,
    release: Annotated[
        str | None,
        typer.Option("--release", help="Gate a stored release exactly as it was released "
                     "(its version or id prefix), not the library folder.", metavar="ID",
                     show_default=False),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Run the quality gates and write the production readiness report (exit 1 on NO-GO).

    Examples:

      tallinn gates --report readiness.md --report readiness.sarif
      tallinn gates --only xml,security --json
    """
    chosen = Format.JSON if as_json else fmt
    names = known_gates(only)
    source = release_source(release, store, library) if release is not None else None
    readiness = _run(library, source, names, baseline, coverage_xml, load_test)
    _finish(readiness, chosen, report, write_baseline, baseline, exit_zero)


def release_source(release: str, store: str | None, library: Path | None) -> FilesSource:
    """The files of the stored `release`, straight from the store (each blob checked against
    its hash), as a library source named `release 3 (ab12cd34ef56)`; nothing is written to
    disk. An unknown release or a store that cannot be read is one line and exit 2."""
    from tallinn.cli.release import translated
    from tallinn.cli.token import note, opened

    with opened(store, library) as state, translated():
        found = state.releases.get(release)
        files = state.releases.files(found.id)
    note(f"reading release {found.label} from the store")
    return FilesSource(files, label=f"release {found.label}")


def load_source(library: Path | None, source: LibrarySource | None) -> Library:
    """The library of `source` when given (a stored release), else of the folder."""
    if source is None:
        return load(library, quiet=True)
    return build_library(source)


def _run(library: Path | None, source: LibrarySource | None, only: str | None,
         baseline: Path | None, coverage_xml: Path | None, load_test: bool) -> Readiness:
    try:
        # One parse of each front matter for the load and all the gates (audit, docs).
        with parsed_once():
            names = select(only)
            lib = load_source(library, source)
            check_settings(lib, names)
            options: dict[str, object] = {"baseline": baseline,
                                          "coverage_xml": coverage_xml, "load": load_test}
            if load_test and (driver := load_driver()) is not None:
                options["load_driver"] = driver
            return run_with_progress(lib, names, options)
    except TallinnError as exc:
        # One line, however many problems the error lists (settings errors list each key).
        err.print(f"[red]error:[/red] {escape(str(exc)).replace(chr(10), '; ')}", soft_wrap=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None


def _finish(readiness: Readiness, chosen: Format | None, report: list[Path] | None,
            write_baseline: Path | None, baseline: Path | None, exit_zero: bool) -> None:
    summarise(readiness, reports=report or [])
    for path in report or []:
        kind = chosen or SUFFIXES.get(path.suffix.lower(), Format.TEXT)
        try:
            write_whole(path, render(readiness, kind))
        except OSError as exc:  # a full disk, a read-only folder: one line, the old file kept
            err.print(f"[red]error:[/red] cannot write the report {escape(str(path))}: "
                      f"{escape(exc.strerror or str(exc))}", soft_wrap=True)
            raise typer.Exit(int(ExitCode.USAGE)) from None
        err.print(f"{kind.value} report written to {path}", markup=False, soft_wrap=True)
    if not report and chosen not in (None, Format.TEXT):
        write_raw(render(readiness, chosen))
    if write_baseline is not None:
        try:
            count = save_baseline(readiness, write_baseline, baseline)
        except TallinnError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(int(ExitCode.USAGE)) from None
        err.print(f"baseline of {plural(count, 'finding')} written to {write_baseline}; give "
                  "each a reason before it is accepted", markup=False, soft_wrap=True)
    if not readiness.verdict.go and not exit_zero:
        raise typer.Exit(int(ExitCode.PROBLEMS))


def run_with_progress(lib: Library, names: list[str],
                      options: dict[str, object]) -> Readiness:
    """Run the gates `names` on `lib`, showing each gate's progress on stderr."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        return run_gates(lib, names, options=options, observer=ProgressDisplay(progress, names))


def write_whole(path: Path, text: str) -> None:
    """Write `text` to `path` whole or not at all: a private file beside it, flushed to disk,
    then renamed over it. A full disk leaves the old file as it was, and no other."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save_baseline(readiness: Readiness, path: Path, previous: Path | None) -> int:
    """Write the findings of every gate (and those the baseline accepted) as a baseline."""
    from tallinn.gates import baseline

    findings = [f for r in readiness.results for f in r.findings]
    seen = set(findings)
    findings += [a.finding for r in readiness.results for a in r.accepted
                 if a.source == "baseline" and a.finding not in seen]
    reasons = baseline.Baseline.load(previous).reasons() if previous is not None else {}
    return baseline.write(path, findings, reasons)


def known_gates(only: str | None) -> str | None:
    """`--only` as given, once each name in it is a gate; else exit 2 naming the closest gate.

    Given `xml,secrity`: "no gate named 'secrity' (did you mean security?)"; given `foo`,
    where nothing is close, the line lists the gates there are instead.
    """
    if only is None:
        return None
    from tallinn.wording import close_matches

    gates = runner.select(None)  # every gate, in order
    names = [n.strip().lower() for n in only.split(",") if n.strip()]
    if not names:
        fail(f"--only needs at least one gate name (the gates are {', '.join(gates)})")
    for name in names:
        if name not in gates:
            close = close_matches(name, gates, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"the gates are {', '.join(gates)}"
            fail(f"no gate named '{name}' ({hint})")
    return only


def summarise(readiness: Readiness, *, reports: list[Path] | None = None) -> None:
    """The summary for people, on stderr: a table, the worst findings, the verdict.

    Findings past the first few are counted, and the line says where to read them: the
    report files written, else how to write one.
    """
    table = Table(title=f"{readiness.library.name}: quality gates", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("gate", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("figure", min_width=20, ratio=1)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("threshold", no_wrap=True)
    table.add_column("findings", justify="right", no_wrap=True)
    table.add_column("blocking", justify="right", no_wrap=True)
    for result in readiness.results:
        style = STYLES[result.status]
        blocking = unaccepted_blocking(result)
        counts = (str(len(result.findings)), f"[red]{len(blocking)}[/]" if blocking else "0")
        status = f"[{style}]{result.status.value}[/]"
        rows = [(m.name, figure(m.value, m.unit), f"{m.comparison} {figure(m.threshold, m.unit)}",
                 STYLES[m.status]) for m in result.metrics] or [("–", "", "", "")]
        for i, (name, value, limit, colour) in enumerate(rows):
            first = i == 0
            table.add_row(result.gate if first else "", status if first else "", escape(name),
                          f"[{colour}]{value}[/]" if colour else value, limit,
                          *(counts if first else ("", "")), end_section=i == len(rows) - 1)
    err.print(table)
    for result in readiness.results:
        shown = sorted(result.findings, key=lambda f: (-f.severity.rank, f.path, f.line))
        for line in result.details if result.status is Status.FAILED else ():
            err.print(f"  [red]{result.gate}[/]: ", end="")
            err.print(line, markup=False, soft_wrap=True)
        for finding in shown[:SHOWN_FINDINGS]:
            err.print(f"  {result.gate}: ", end="", markup=False)
            err.print(str(finding), markup=False, soft_wrap=True)
        if len(shown) > SHOWN_FINDINGS:
            where = (f"see {', '.join(map(str, reports))}" if reports
                     else "write them all with --report FILE")
            err.print(f"  {result.gate}: ... and {len(shown) - SHOWN_FINDINGS} more ({where})",
                      markup=False, soft_wrap=True)
    verdict = readiness.verdict
    style = "green" if verdict.go else "red"
    err.print(f"[bold {style}]{verdict.label}[/]: "
              + ("READY" if verdict.go else "NOT READY"))
    for reason in verdict.reasons:
        err.print(f"  - {reason}", markup=False, soft_wrap=True)
