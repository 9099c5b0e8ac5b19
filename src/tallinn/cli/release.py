"""`tallinn release create|list|show|diff|checkout`: immutable releases in the state store.

SQLAlchemy is imported inside the commands (through `tallinn.cli.token.opened`), so
`tallinn --help` stays fast. Bad input is one line and exit 2, with nothing written.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    fail,
    library_path,
    out,
    settings,
    write_raw,
)
from tallinn.cli.token import note, opened
from tallinn.library import TallinnError
from tallinn.wording import plural

if TYPE_CHECKING:
    from tallinn.ops.records import Release

app = command_app()
release_app = command_app(help="Immutable releases of the library, kept in the state store.",
                          no_args_is_help=True)
app.add_typer(release_app, name="release")

ReleaseArgument = Annotated[
    str, typer.Argument(help="A release: its version, or at least 4 hex digits of its id.",
                        metavar="RELEASE", show_default=False)
]


def actor() -> str:
    """Who acts: `$TALLINN_ACTOR`, else `user@host` of this process."""
    named = settings().actor
    if named and named.strip():
        return named.strip()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@contextmanager
def translated() -> Iterator[None]:
    """Release, channel and audit errors as one line and exit 2; a conflict exits 1."""
    from tallinn.ops.errors import ChannelConflictError, ReleaseError

    try:
        yield
    except ChannelConflictError as exc:
        fail(str(exc), ExitCode.PROBLEMS)
    except ReleaseError as exc:
        fail(str(exc))


@release_app.command("create")
def create(
    library: LibraryOption = None,
    store: StoreOption = None,
    version: Annotated[str | None, typer.Option(
        "--version", help="Version of the release, e.g. 3 or 1.4.0. Default: the next one.",
        metavar="V", show_default=False)] = None,
    notes: Annotated[str, typer.Option("--notes", help="What this release changes.",
                                       metavar="TEXT")] = "",
    force: Annotated[bool, typer.Option(
        "--force", help="Release despite a NO-GO from the gates (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Why a NO-GO is released anyway; recorded with the release.",
        metavar="TEXT", show_default=False)] = None,
) -> None:
    """Run every gate on the library and store its files as a new release (exit 1 on NO-GO).

    Examples:

      tallinn release create --notes "sharper review prompt"
      tallinn release create --version 2.0.0 --force --reason "perf gate flaky on CI"
    """
    from tallinn.cli.common import load
    from tallinn.cli.gates import run_with_progress, summarise
    from tallinn.gates.report import Format, render
    from tallinn.gates.runner import check_settings, select
    from tallinn.ops.releases import check_reason, check_version
    from tallinn.ops.snapshot import git_state, library_files

    with translated():
        if version is not None:
            check_version(version)
        if force:
            reason = check_reason(reason)
        elif reason is not None:
            fail("--reason goes with --force: it says why a NO-GO is released anyway")
    root = library_path(library)
    lib = load(library, quiet=True)
    # Read first: a file that cannot be released is known before the gates take their time.
    files, problems = library_files(root, lib.config.limits)
    if problems:
        first = problems[0]
        fail(f"{first.path}:{first.line}:{first.col}: {first.code} {first.message} (a release "
             f"holds every file of the library; {plural(len(problems), 'file')} not read)")
    git = git_state(root)
    with opened(store, library) as state, translated():
        # Content or a version already taken is known before the gates take their time.
        state.releases.check_new(files, version)
        started = time.perf_counter()
        try:
            names = select(None)
            check_settings(lib, names)
            readiness = run_with_progress(lib, names, {})
        except TallinnError as exc:
            fail(str(exc).replace("\n", "; "))
        summarise(readiness)
        gated = time.perf_counter() - started
        if not readiness.verdict.go and not force:
            fail("NO-GO: not released (fix the findings above, or pass --force --reason "
                 "TEXT)", ExitCode.PROBLEMS)
        release = state.releases.create(
            files, actor=actor(), version=version, notes=notes, git_commit=git.commit,
            git_dirty=git.dirty, report=render(readiness, Format.JSON),
            force_reason=reason if force else None,
        )
    write_raw(release.version)
    forced = " despite NO-GO (forced)" if release.forced else ""
    note(f"released {release.label}{forced}: {plural(release.files, 'file')}, gates "
         f"{gated:.1f} s")


@release_app.command("list")
def list_releases(library: LibraryOption = None, store: StoreOption = None,
                  as_json: JsonOption = False) -> None:
    """List releases, newest first, with the channels pointing at each."""
    with opened(store, library) as state:
        releases = state.releases.all()
        on: dict[str, list[str]] = {}
        for channel in state.channels.all():
            on.setdefault(channel.release.id, []).append(channel.name)
    if as_json:
        write_raw(json.dumps([{**release_data(r), "channels": on.get(r.id, [])}
                              for r in releases], indent=2))
        return
    table = Table(title=plural(len(releases), "release"), title_justify="left",
                  box=box.SIMPLE)
    for column in ("version", "id", "created (UTC)", "by", "files", "channels", "notes"):
        table.add_column(column, overflow="fold")
    for r in releases:
        table.add_row(r.version, r.short_id, r.created_at.strftime("%Y-%m-%d %H:%M"),
                      r.created_by, str(r.files), ", ".join(on.get(r.id, [])),
                      ("FORCED: " if r.forced else "") + (r.notes.splitlines() or [""])[0])
    out.print(table, markup=False)


@release_app.command("show")
def show(release: ReleaseArgument, library: LibraryOption = None, store: StoreOption = None,
         as_json: JsonOption = False) -> None:
    """Show one release: who made it, from which commit, its verdict and its files."""
    with opened(store, library) as state, translated():
        found = state.releases.get(release)
        manifest = state.releases.manifest(found.id)
        report = state.releases.report(found.id)
    verdict = _verdict(report)
    if as_json:
        write_raw(json.dumps({**release_data(found), "verdict": verdict, "files": manifest},
                             indent=2))
        return
    rows = [("release", found.label), ("id", found.id), ("created", found.created_at
             .isoformat(timespec="seconds")), ("by", found.created_by),
            ("git", _git(found)), ("gates", verdict or "not recorded")]
    if found.forced:
        rows.append(("forced", found.force_reason or ""))
    if found.notes:
        rows.append(("notes", found.notes))
    for key, value in rows:
        out.print(f"{key + ':':10} {escape(value)}")
    out.print(f"files:     {len(manifest)}")
    for path, digest in manifest.items():
        out.print(f"  {digest[:12]}  {escape(path)}")


@release_app.command("diff")
def diff(a: ReleaseArgument, b: ReleaseArgument, library: LibraryOption = None,
         store: StoreOption = None,
         text: Annotated[bool, typer.Option("--text", help="Add a unified diff of the files.")]
         = False,
         as_json: JsonOption = False) -> None:
    """What changed from release A to release B: commands, components and other files."""
    from tallinn.ops.release_diff import diff as release_diff
    from tallinn.ops.release_diff import unified

    with opened(store, library) as state, translated():
        before, after = state.releases.get(a), state.releases.get(b)
        old, new = state.releases.manifest(before.id), state.releases.manifest(after.id)
        changes = release_diff(old, new)
        patch = ""
        if text:
            contents = {"a": state.releases.files(before.id), "b": state.releases.files(after.id)}
            patch = unified(old, new, (before.version, after.version),
                            lambda side, path: contents[side][path])
    if as_json:
        write_raw(json.dumps({"from": release_data(before), "to": release_data(after),
                              **changes.as_dict(), **({"text": patch} if text else {})},
                             indent=2))
        return
    lines = [f"{before.label} -> {after.label}"]
    for kind, found in changes.as_dict().items():
        for what, sign in (("added", "+"), ("removed", "-"), ("changed", "~")):
            lines.extend(f"  {sign} {kind[:-1]} {name}" for name in found[what])
    if len(lines) == 1:
        lines.append("  no changes")
    write_raw("\n".join(lines))
    if patch:
        write_raw(patch)


@release_app.command("checkout")
def checkout(
    release: ReleaseArgument,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the files into.",
                                          metavar="DIR", show_default=False)],
    library: LibraryOption = None,
    store: StoreOption = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Replace what DIR holds.")] = False,
) -> None:
    """Write a release's files into DIR, byte for byte (refuses a non-empty DIR)."""
    from tallinn.ops.checkout import check_out

    with opened(store, library) as state, translated():
        found = state.releases.get(release)
        files = state.releases.files(found.id)
    with translated():
        try:
            check_out(files, out_dir, force=force)
        except OSError as exc:
            fail(f"cannot write {out_dir}: {exc.strerror or exc}")
    note(f"checked out {found.label} into {out_dir}: {plural(len(files), 'file')}")


def release_data(release: Release) -> dict[str, Any]:
    return {
        "version": release.version, "id": release.id, "seq": release.seq,
        "created_at": release.created_at.isoformat(), "created_by": release.created_by,
        "notes": release.notes, "git_commit": release.git_commit,
        "git_dirty": release.git_dirty, "forced": release.forced,
        "force_reason": release.force_reason, "files": release.files,
    }


def _verdict(report: str | None) -> str | None:
    if report is None:
        return None
    try:
        return str(json.loads(report)["decision"]["verdict"])
    except (ValueError, KeyError, TypeError):
        return "unreadable report"


def _git(release: Release) -> str:
    if release.git_commit is None:
        return "not in git"
    return release.git_commit[:12] + (" (uncommitted changes)" if release.git_dirty else "")

