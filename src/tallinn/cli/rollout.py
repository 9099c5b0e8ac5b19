"""`tallinn rollout start|status|advance|pause|resume|abort`: gradual rollouts of a release.

A rollout serves a candidate release to a rising share of clients while the channel keeps
pointing at its stable release; each change is compare-and-set on the stored rollout and an
audit entry. Bad input is one line and exit 2, nothing written; someone else's change in
between is reported, exit 1, and nothing changes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tallinn.cli.channel import ChannelOption, ReasonOption
from tallinn.cli.common import JsonOption, LibraryOption, StoreOption, command_app, write_raw
from tallinn.cli.release import ReleaseArgument, actor, translated
from tallinn.cli.token import note, opened

if TYPE_CHECKING:
    from tallinn.ops.rollout import RolloutPlan
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
    check_every: Annotated[str | None, _option(
        "--check-every", "How often the controller decides: 5m (1s..1d).")] = None,
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
    if check_every is not None:
        plan = replace(plan, check_every=parse_check_every(check_every))
    with opened(store, library) as state, translated():
        rollout = state.rollouts.start(plan, actor=actor(), reason=reason)
    _told(rollout, "started")


def parse_check_every(text: str) -> timedelta:
    """Given `--check-every 30s`, return the controller's interval: a duration written as
    `--hold` is (`30s`, `15m`, `1h`, `1d`), from 1 second to 1 day; else raise `PlanError`."""
    from tallinn.ops.rollout import PlanError
    from tallinn.ops.rollout.plan import DURATION, MAX_CHECK_EVERY, UNIT_SECONDS, parse_duration

    # Checked before parse_duration, whose own bound (the longest hold) is 90 days.
    match = DURATION.fullmatch(text.strip())
    if match is not None and timedelta(
            seconds=int(match[1]) * UNIT_SECONDS[match[2]]) > MAX_CHECK_EVERY:
        raise PlanError("--check-every", text, "at most 1d")
    every = parse_duration("--check-every", text)
    if every < timedelta(seconds=1):
        raise PlanError("--check-every", text, "at least 1s")
    return every


def duration_text(span: timedelta) -> str:
    """Given 48 hours, return `"48h"`: the largest unit that divides it, as options take it."""
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def plan_data(plan: RolloutPlan) -> dict[str, Any]:
    """The plan as `rollout start` took it, each value as its option would be written."""
    return {
        "steps": list(plan.steps), "holds": [duration_text(h) for h in plan.holds],
        "max_error_rate": plan.max_error_rate, "min_satisfaction": plan.min_satisfaction,
        "min_requests": plan.min_requests, "min_ratings": plan.min_ratings,
        "alpha": plan.alpha, "check_every": duration_text(plan.check_every),
        "resolution": duration_text(plan.resolution),
    }


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
    plan = data["plan"]
    lines = [f"rollout {data['id']} on {channel}: {data['phase']}, candidate "
             f"{data['candidate']} at {data['share']}% (stable {data['stable']})",
             f"  plan: steps {','.join(map(str, plan['steps']))}, hold "
             f"{','.join(plan['holds']) or 'none'}, max error rate "
             f"{_percent(plan['max_error_rate'])}, min satisfaction "
             f"{_percent(plan['min_satisfaction'])}, min {plan['min_requests']} requests and "
             f"{plan['min_ratings']} ratings per release, check every {plan['check_every']}"]
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

    return {**rollout_status(state, rollout), "plan": plan_data(rollout.plan)}


def _percent(rate: float) -> str:
    """Given 0.05, return `"5%"`; given 0.025, `"2.5%"`."""
    return f"{rate * 100:.6g}%"


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
