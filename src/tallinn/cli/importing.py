"""`tallinn import FORMAT SRC --out DIR`: convert a library of another format to a native one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tallinn.cli.common import ExitCode, command_app, console
from tallinn.importers import FindingLevel, importer

app = command_app()


@app.command(name="import")
def import_library(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="The source format: tallinn-2025.")],
    src: Annotated[Path, typer.Argument(help="The library folder to convert.")],
    out: Annotated[Path, typer.Option("--out", help="A new or empty folder to write into.")],
    report: Annotated[
        Path | None, typer.Option("--report", help="Also write the report here, as JSON.")
    ] = None,
) -> None:
    """Convert a library to the native format; print what could not be carried.

    Exit 0 when everything was carried, 1 when a file holds an import marker, 2 when the
    import cannot start.
    """
    result = importer(fmt).convert(src, out)
    stdout = console("out")
    for finding in result.findings:
        stdout.print(str(finding), markup=False, highlight=False)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    summary = result.summary()
    typer.echo(
        f"{summary['commands_clean']} of {summary['commands']} commands and "
        f"{summary['components_clean']} of {summary['components']} components converted "
        f"cleanly into {out}; {summary['markers']} marker(s) left where content was not carried; "
        f"the converted library loads with {summary['check_problems']} problem(s)",
        err=True,
    )
    errors = any(f.level is FindingLevel.ERROR for f in result.findings)
    raise typer.Exit(int(ExitCode.PROBLEMS if errors else ExitCode.OK))
