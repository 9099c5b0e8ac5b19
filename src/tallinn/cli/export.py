"""`tallinn export`: write the library in another agent's format, or check an export."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    console,
    fail,
    print_diagnostics,
    write_raw,
)
from tallinn.export import TARGETS, ExportError, Loss, check, write_export
from tallinn.library import Library, LibrarySource

app = command_app()


def _fail(message: str, code: ExitCode) -> NoReturn:
    """Like `fail`, but the line is never wrapped: it names files, whole."""
    console("err").print(f"[red]error:[/red] {escape(message)}", markup=True, soft_wrap=True)
    raise typer.Exit(int(code))


def _losses_by_command(losses: tuple[Loss, ...]) -> dict[str, list[Loss]]:
    grouped: dict[str, list[Loss]] = defaultdict(list)
    for loss in losses:
        grouped[loss.command].append(loss)
    return dict(sorted(grouped.items()))


@app.command("export")
def export(
    target: Annotated[str | None, typer.Argument(
        help="Target: " + ", ".join(TARGETS) + ".", show_default=False)] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Folder to write the export into.", show_default=False)] = None,
    check_folder: Annotated[Path | None, typer.Option(
        "--check", help="Check the export in this folder for drift instead (exit 1 on drift).",
        show_default=False)] = None,
    library: LibraryOption = None,
    strict: Annotated[bool, typer.Option(
        help="Fail (exit 1, nothing written) when the target cannot carry something.")] = False,
    force: Annotated[bool, typer.Option(
        help="Overwrite files in the folder that no export manifest owns.")] = False,
    as_json: JsonOption = False,
    release: Annotated[str | None, typer.Option(
        "--release", help="Export (or check against) a stored release, its version or id "
        "prefix, exactly as its folder would be, instead of the library folder.",
        metavar="ID", show_default=False)] = None,
    store: StoreOption = None,
) -> None:
    """Export the library for another agent (Claude Code, Copilot, Gemini CLI, Codex, Cursor,
    opencode), or check an export: a file edited or missing, or the source changed.

    Examples:

      tallinn export claude-skills --out .
      tallinn export claude-skills --out dist --release 3
      tallinn export --check dist --release 3
    """
    if check_folder is not None:
        if target is not None or out is not None:
            fail("--check takes the folder alone: tallinn export --check DIR [--library P]")
        _check(check_folder, library, _source(release, store, library), as_json)
        return
    if target is None or out is None:
        fail("give a target and --out DIR (or --check DIR); targets: " + ", ".join(TARGETS))
    exporter = TARGETS.get(target)
    if exporter is None:
        fail(f"unknown target '{target}' (targets: {', '.join(TARGETS)})")
    lib = _library(library, _source(release, store, library))
    if lib.errors:
        print_diagnostics(lib.errors)
        fail(f"{len(lib.errors)} error(s) in {lib.label}; nothing exported", ExitCode.PROBLEMS)
    result = exporter.build(lib)
    grouped = _losses_by_command(result.losses)
    label = "[red]error:[/red]" if strict else "[yellow]warning:[/yellow]"
    for command, losses in grouped.items():
        console("err").print(f"{label} {exporter.name}: {command}: lost ", end="", markup=True,
                             soft_wrap=True)
        console("err").print("; ".join(str(loss) for loss in losses), markup=False,
                             soft_wrap=True)
    if strict and grouped:
        _fail(f"{exporter.name} cannot carry everything of {len(grouped)} command(s) "
              "(--strict); nothing written", ExitCode.PROBLEMS)
    try:
        written = write_export(exporter, lib, result, out, force=force)
    except (ExportError, OSError) as exc:
        _fail(str(exc), ExitCode.PROBLEMS)
    if as_json:
        write_raw(json.dumps({
            "target": exporter.name, "agent": exporter.agent,
            "agent_version": exporter.agent_version, "out": str(out),
            "files": len(result.files), "written": list(written.written),
            "removed": list(written.removed),
            "losses": [{"command": loss.command, "what": loss.what, "detail": loss.detail}
                       for loss in result.losses],
        }, indent=2))
        return
    console("err").print(
        f"{exporter.name} ({exporter.agent} {exporter.agent_version}): {len(result.files)} "
        f"file(s) in {out}: {len(written.written)} written, {len(written.removed)} removed",
        markup=False, soft_wrap=True)


def _source(release: str | None, store: str | None,
            library: Path | None) -> LibrarySource | None:
    """The stored release's files when `--release` is given, read from the store."""
    if release is None:
        return None
    from tallinn.cli.gates import release_source

    return release_source(release, store, library)


def _library(library: Path | None, source: LibrarySource | None) -> Library:
    """The library to export: the release's when there is one, else the folder's."""
    from tallinn.cli.gates import load_source

    return load_source(library, source)


def _check(folder: Path, library: Path | None, source: LibrarySource | None,
           as_json: bool) -> None:
    lib = _library(library, source)
    try:
        drift = check(folder, lib)
    except (ExportError, OSError) as exc:
        _fail(str(exc), ExitCode.PROBLEMS)
    if as_json:
        write_raw(json.dumps([{"kind": d.kind.value, "path": d.path, "target": d.target,
                               "detail": d.detail} for d in drift], indent=2))
    else:
        for item in drift:
            console("out").print(str(item), markup=False)
    if drift:
        raise typer.Exit(int(ExitCode.PROBLEMS))
