"""`tallinn rollout start|status|advance|pause|resume|abort`: gradual rollouts of a release.

A rollout serves a candidate release to a rising share of clients while the channel keeps
pointing at its stable release; each change is compare-and-set on the stored rollout and an
audit entry. Bad input is one line and exit 2, nothing written; someone else's change in
between is reported, exit 1, and nothing changes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tallinn.cli.channel import ChannelOption, ReasonOption
from tallinn.cli.common import JsonOption, LibraryOption, StoreOption, command_app, write_raw
from tallinn.cli.release import ReleaseArgument, actor, translated
from tallinn.cli.token import note, opened

if TYPE_CHECKING:
    from tallinn.ops.rollouts import Rollout
    from tallinn.ops.store import Store

app = command_app()
rollout_app = command_app(help="Gradual rollouts: a candidate release to a rising share of "
                          "clients, judged by its guards.", no_args_is_help=True)
app.add_typer(rollout_app, name="rollout")


def _option(name: str, text: str) -> Any:
    return typer.Option(name, help=text, metavar="V", show_default=False)


@rollout_app.command("start")
def start(
    release: ReleaseArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the audit log.",
                                        metavar="TEXT")] = "gradual rollout",
    channel: ChannelOption = "production",
    steps: Annotated[str | None, _option("--steps", "Shares, rising to 100: 10,50,100.")] = None,
    hold: Annotated[str | None, _option("--hold", "Hold of each step: 48h or 48h,7d.")] = None,
    max_error_rate: Annotated[str | None, _option("--max-error-rate", "e.g. 5%.")] = None,
    min_satisfaction: Annotated[str | None, _option("--min-satisfaction", "e.g. 80%.")] = None,
    min_requests: Annotated[str | None, _option("--min-requests", "Per release.")] = None,
    min_ratings: Annotated[str | None, _option("--min-ratings", "Per release; 0: off.")] = None,
    resolution: Annotated[str | None, _option(
        "--resolution", "Signals are counted per this interval: 1m (default); 1s-1h.")] = None,
    library: LibraryOption = None, store: StoreOption = None,
) -> None:
    """Start rolling a release out on a channel, from the release it points at.

    Examples:

      tallinn rollout start 3 --steps 10,50,100 --hold 48h,7d --reason "new review prompt"
    """
    from tallinn.ops.rollout import parse_plan

    plan = parse_plan(release, channel=channel, steps=steps, hold=hold,
                      max_error_rate=max_error_rate, min_satisfaction=min_satisfaction,
                      min_requests=min_requests, min_ratings=min_ratings,
                      resolution=resolution)
    with opened(store, library) as state, translated():
        rollout = state.rollouts.start(plan, actor=actor(), reason=reason)
    _told(rollout, "started")


@rollout_app.command("status")
def status(channel: ChannelOption = "production", library: LibraryOption = None,
           store: StoreOption = None, as_json: JsonOption = False) -> None:
    """The newest rollout on a channel: step, shares, both releases' figures, what comes next."""
    with opened(store, library) as state, translated():
        rollout = state.rollouts.latest(channel)
        data = None if rollout is None else status_data(state, rollout)
    if as_json:
        write_raw(json.dumps(data, indent=2))
        return
    if data is None:
        write_raw(f"no rollout on {channel}")
        return
    lines = [f"rollout {data['id']} on {channel}: {data['phase']}, candidate "
             f"{data['candidate']} at {data['share']}% (stable {data['stable']})"]
    for side in ("candidate", "stable"):
        f = data[side + "_figures"]
        lines.append(f"  {side}: {f['requests']} requests, error rate "
                     f"{f['error_rate']:.2%}, {f['ratings']} ratings, satisfaction "
                     f"{f['satisfaction']:.0%}")
    if data["next"] is not None:
        lines.append(f"  next: {data['next']['action']} "
                     f"({'; '.join(data['next']['reasons'])})")
    write_raw("\n".join(lines))


def status_data(state: Store, rollout: Rollout) -> dict[str, Any]:
    from tallinn.ops.overview import rollout_status

    return rollout_status(state, rollout)


def _by_hand(action: str, channel: str, reason: str, library: Any, store: Any) -> None:
    with opened(store, library) as state, translated():
        rollout = getattr(state.rollouts, action)(channel, actor=actor(), reason=reason)
    _told(rollout, action.replace("_", " "))


@rollout_app.command("advance")
def advance(reason: ReasonOption, channel: ChannelOption = "production",
            library: LibraryOption = None, store: StoreOption = None) -> None:
    """Move the rollout to its next step now; past the last one it completes."""
    _by_hand("advance", channel, reason, library, store)


@rollout_app.command("pause")
def pause(reason: ReasonOption, channel: ChannelOption = "production",
          library: LibraryOption = None, store: StoreOption = None) -> None:
    """Pause: the current share stays served, and the controller takes no step."""
    _by_hand("pause", channel, reason, library, store)


@rollout_app.command("resume")
def resume(reason: ReasonOption, channel: ChannelOption = "production",
           library: LibraryOption = None, store: StoreOption = None) -> None:
    """Resume a paused rollout: its step starts again with a fresh window."""
    _by_hand("resume", channel, reason, library, store)


@rollout_app.command("abort")
def abort(reason: ReasonOption, channel: ChannelOption = "production",
          library: LibraryOption = None, store: StoreOption = None) -> None:
    """End the rollout: every client gets the stable release at once."""
    _by_hand("abort", channel, reason, library, store)


def _told(rollout: Rollout, what: str) -> None:
    write_raw(str(rollout.share))
    note(f"rollout {rollout.id} on {rollout.channel} {what}: candidate "
         f"{rollout.candidate.label} at {rollout.share}%, {rollout.state.phase}")
