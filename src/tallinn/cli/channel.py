"""`tallinn promote`, `tallinn rollback` and `tallinn channel list|history`.

A channel (`production` by default) points at one release; each move is compare-and-set on
where it points, recorded in its history and the audit log. Someone else's move in between is
reported, exit 1, and nothing changes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from tallinn.cli.common import JsonOption, LibraryOption, StoreOption, command_app, out, write_raw
from tallinn.cli.release import ReleaseArgument, actor, release_data, translated
from tallinn.cli.token import note, opened
from tallinn.wording import plural

if TYPE_CHECKING:
    from tallinn.ops.records import ChannelMove

app = command_app()
channel_app = command_app(help="Channels: named pointers to releases, and their history.",
                          no_args_is_help=True)
app.add_typer(channel_app, name="channel")

ChannelOption = Annotated[str, typer.Option(
    "--channel", "-c", help="The channel to move.", metavar="C")]
ChannelArgument = Annotated[str, typer.Argument(help="A channel, e.g. production.",
                                                metavar="CHANNEL")]
ReasonOption = Annotated[str, typer.Option(
    "--reason", help="Why; recorded in the channel's history and the audit log.",
    metavar="TEXT", show_default=False)]


@app.command()
def promote(release: ReleaseArgument, reason: ReasonOption, channel: ChannelOption =
            "production", library: LibraryOption = None, store: StoreOption = None) -> None:
    """Point a channel at a release (production by default).

    Examples:

      tallinn promote 3 --reason "review prompt asks for tests"
      tallinn promote 3 --channel staging --reason "try it on staging first"
    """
    with opened(store, library) as state, translated():
        move = state.channels.promote(release, channel=channel, actor=actor(), reason=reason)
    _told(move)


@app.command()
def rollback(reason: ReasonOption, release: Annotated[str | None, typer.Argument(
        help="The release to go back to. Default: the one the current release replaced.",
        metavar="[RELEASE]", show_default=False)] = None,
        channel: ChannelOption = "production", library: LibraryOption = None,
        store: StoreOption = None) -> None:
    """Point a channel back at an earlier release, at once.

    During a rollout, without RELEASE: the rollout ends and every client gets the stable
    release at once.

    Examples:

      tallinn rollback --reason "answers got worse"
      tallinn rollback 2 --channel staging --reason "back to the last good one"
    """
    with opened(store, library) as state, translated():
        if release is None and state.rollouts.active(channel) is not None:
            ended = state.rollouts.roll_back(channel, actor=actor(), reason=reason)
            write_raw(ended.stable.version)
            note(f"{channel}: rollout {ended.id} of {ended.candidate.label} rolled back; "
                 f"every client gets {ended.stable.label}")
            return
        move = state.channels.rollback(release, channel=channel, actor=actor(), reason=reason)
    _told(move)


@channel_app.command("list")
def list_channels(library: LibraryOption = None, store: StoreOption = None,
                  as_json: JsonOption = False) -> None:
    """List channels and the release each points at."""
    with opened(store, library) as state:
        channels = state.channels.all()
    if as_json:
        write_raw(json.dumps([{"channel": c.name, "release": release_data(c.release),
                               "moved_at": c.moved_at.isoformat(), "moved_by": c.moved_by}
                              for c in channels], indent=2))
        return
    table = Table(title=plural(len(channels), "channel"), title_justify="left", box=box.SIMPLE)
    for column in ("channel", "release", "id", "moved (UTC)", "by"):
        table.add_column(column, overflow="fold")
    for c in channels:
        table.add_row(c.name, c.release.version, c.release.short_id,
                      c.moved_at.strftime("%Y-%m-%d %H:%M"), c.moved_by)
    out.print(table, markup=False)


@channel_app.command("history")
def history(channel: ChannelArgument = "production", library: LibraryOption = None,
            store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Every move of a channel, newest first: who, when, why, from which release to which."""
    with opened(store, library) as state, translated():
        moves = state.channels.history(channel)
    if as_json:
        write_raw(json.dumps([move_data(m) for m in moves], indent=2))
        return
    table = Table(title=f"{channel}: {plural(len(moves), 'move')}", title_justify="left",
                  box=box.SIMPLE)
    for column in ("when (UTC)", "action", "from", "to", "by", "reason"):
        table.add_column(column, overflow="fold")
    for m in moves:
        table.add_row(m.at.strftime("%Y-%m-%d %H:%M:%S"), m.action,
                      m.from_release.version if m.from_release else "-", m.to_release.version,
                      m.actor, m.reason)
    out.print(table, markup=False)


def move_data(move: ChannelMove) -> dict[str, Any]:
    return {
        "channel": move.channel, "action": move.action,
        "from": None if move.from_release is None else move.from_release.version,
        "from_id": None if move.from_release is None else move.from_release.id,
        "to": move.to_release.version, "to_id": move.to_release.id, "actor": move.actor,
        "at": move.at.isoformat(), "reason": move.reason,
    }


def _told(move: ChannelMove) -> None:
    before = move.from_release.label if move.from_release else "nothing"
    write_raw(move.to_release.version)
    note(f"{move.channel}: {before} -> {move.to_release.label} ({move.action} by "
         f"{move.actor})")
