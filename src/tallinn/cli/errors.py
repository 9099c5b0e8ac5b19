"""`tallinn errors [--release R] [--since WHEN] [--limit N] [--json]` and `tallinn errors prune`.

The errors servers answered with, grouped by fingerprint (`tallinn.ops.error_log`): newest
first, each group with its count, first and last seen and releases; `--json` adds the latest
samples. Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from tallinn.cli.audit_log import parse_since
from tallinn.cli.common import (
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    fail,
    out,
    write_raw,
)
from tallinn.cli.release import translated
from tallinn.cli.token import note, opened
from tallinn.wording import plural

if TYPE_CHECKING:
    from tallinn.ops.error_log import ErrorGroup
    from tallinn.ops.store import Store

app = command_app()
errors_app = command_app(
    help="Errors the servers answered with, grouped by fingerprint.",
    invoke_without_command=True,
)
app.add_typer(errors_app, name="errors")

SinceOption = Annotated[str | None, typer.Option(
    "--since", help="Only what happened since WHEN: a date, a time (UTC), or 90m, 12h, 7d, 2w.",
    metavar="WHEN", show_default=False)]
ReleaseOption = Annotated[str | None, typer.Option(
    "--release", help="Only one release: its version, or at least 4 hex digits of its id.",
    metavar="RELEASE", show_default=False)]
LIMIT_MAX = 10_000
# Read as text and checked here, so a bad number is one line like every other bad input.
LimitOption = Annotated[str, typer.Option(
    "--limit", help=f"Show at most N, the newest (1..{LIMIT_MAX:,}; default 100).",
    metavar="N", show_default=False)]


def parse_limit(value: str) -> int:
    """Given `--limit 50`, return 50; anything but a whole number in 1..LIMIT_MAX exits 2."""
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= LIMIT_MAX:
        fail(f"--limit {value!r}: give a whole number from 1 to {LIMIT_MAX:,}")
    return int(text)


def since_moment(since: str | None, option: str = "--since") -> datetime | None:
    return None if since is None else parse_since(since, datetime.now(UTC), option)


def release_id(state: Store, release: str | None) -> str | None:
    """The full id of the release named by version or id prefix; exit 2 if there is none."""
    if release is None:
        return None
    with translated():
        return state.releases.get(release).id


def versions(state: Store) -> dict[str, str]:
    """Every release's version by id, to name releases the way people do."""
    return {r.id: r.version for r in state.releases.all()}


@errors_app.callback()
def errors(
    ctx: typer.Context,
    release: ReleaseOption = None,
    since: SinceOption = None,
    limit: LimitOption = "100",
    library: LibraryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show error groups, newest first ('tallinn errors prune' removes old ones).

    Examples:

      tallinn errors --since 24h
      tallinn errors --release 3 --json
    """
    if ctx.invoked_subcommand is not None:
        return
    moment, most = since_moment(since), parse_limit(limit)
    with opened(store, library) as state:
        wanted = release_id(state, release)
        groups = state.errors.groups(release=wanted, since=moment, limit=most,
                                     samples=as_json)
        named = versions(state)
    if as_json:
        write_raw(json.dumps([group_data(g, named) for g in groups], indent=2))
        return
    table = Table(title=plural(len(groups), "error group"), title_justify="left",
                  box=box.SIMPLE)
    for column in ("count", "last seen (UTC)", "first seen", "class", "where", "releases"):
        table.add_column(column, no_wrap=True)
    table.add_column("message", overflow="fold")
    for g in groups:
        table.add_row(str(g.count), _when(g.last_seen), _when(g.first_seen), g.error_class,
                      g.where, ", ".join(_version(r.release, named) for r in g.releases) or "-",
                      g.shape)
    out.print(table, markup=False)


@errors_app.command("prune")
def prune(
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="Remove what was last seen before WHEN (a date, a time, or 30d). "
        "Default: the retention, 30 days.", metavar="WHEN", show_default=False)] = None,
    library: LibraryOption = None,
    store: StoreOption = None,
) -> None:
    """Remove error groups and samples past the retention (run it daily, e.g. from cron)."""
    moment = since_moment(older_than, "--older-than")
    with opened(store, library) as state:
        pruned = state.errors.prune(moment)
    note(f"pruned {plural(pruned.groups, 'error group')} and "
         f"{plural(pruned.samples, 'sample')}")


def group_data(group: ErrorGroup, named: dict[str, str]) -> dict[str, Any]:
    return {
        "id": group.id, "fingerprint": group.fingerprint, "class": group.error_class,
        "where": group.where, "message": group.shape, "count": group.count,
        "first_seen": group.first_seen.isoformat(), "last_seen": group.last_seen.isoformat(),
        "releases": [{"id": r.release, "version": named.get(r.release), "count": r.count,
                      "first_seen": r.first_seen.isoformat(),
                      "last_seen": r.last_seen.isoformat()} for r in group.releases],
        "samples": [{"at": s.at.isoformat(), "release": s.release,
                     "version": None if s.release is None else named.get(s.release),
                     "detail": s.detail, "client": s.client, "replica": s.replica}
                    for s in group.samples],
    }


def _version(release: str, named: dict[str, str]) -> str:
    return named.get(release) or release[:12]


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
