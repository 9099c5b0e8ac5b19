"""`tallinn status [--slo] [--channel C] [--window WHEN] [--json]`: a channel at a glance.

Without `--slo`: the stable and candidate releases, the rollout's step and shares, and each
release's requests, error rate, ratings and satisfaction over the window (24h by default).
With `--slo`: the success metrics of each served release over the window (7d by default),
each PASS, FAIL or NO DATA; exit 1 when one fails, so cron or CI can page on it. The figures
and verdicts are `tallinn.ops.slo`'s. Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from tallinn.cli.audit_log import parse_since
from tallinn.cli.channel import ChannelOption
from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    fail,
    out,
    write_raw,
)
from tallinn.cli.release import translated
from tallinn.cli.token import opened

if TYPE_CHECKING:
    from tallinn.ops.slo import ChannelStatus, Check, ReleaseFigures, ReleaseSlo, SloReport

app = command_app()

STATUS_WINDOW = "24h"
SLO_WINDOW = "7d"
MAX_WINDOW_DAYS = 90

WindowOption = Annotated[str | None, typer.Option(
    "--window", help=f"Over the last WHEN: 90m, 24h, 7d, 2w, or since a date or time (UTC); "
    f"at most {MAX_WINDOW_DAYS}d. Default: {STATUS_WINDOW}, with --slo {SLO_WINDOW}.",
    metavar="WHEN", show_default=False)]


def parse_window(value: str, now: datetime) -> timedelta:
    """Given `--window 7d` (or a start, `2026-03-01`), return how long it spans: from 1
    minute to `MAX_WINDOW_DAYS` days, else exit 2."""
    span = now - parse_since(value, now, "--window")
    if span < timedelta(minutes=1):
        fail(f"--window {value!r}: give at least 1 minute, and no start in the future")
    if span > timedelta(days=MAX_WINDOW_DAYS):
        fail(f"--window {value!r}: at most {MAX_WINDOW_DAYS} days (90d)")
    return span


@app.command("status")
def status(
    slo: Annotated[bool, typer.Option(
        "--slo", help="Judge the success metrics: exit 1 when one fails.")] = False,
    channel: ChannelOption = "production",
    window: WindowOption = None,
    library: LibraryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """A channel's releases, rollout and figures; with --slo, its success metrics.

    Examples:

      tallinn status --window 6h
      tallinn status --slo --window 30d --json
    """
    from tallinn.ops.slo import Verdict, channel_status, slo_report

    span = parse_window(window or (SLO_WINDOW if slo else STATUS_WINDOW), datetime.now(UTC))
    with opened(store, library) as state, translated():
        report = slo_report(state, channel, span) if slo else None
        current = report.status if report is not None else (
            None if slo else channel_status(state, channel, span))
    if current is None:
        fail(f"channel {channel!r} serves no release (promote one first)")
    if report is not None:
        write_raw(json.dumps(slo_data(report), indent=2) if as_json else slo_text(report))
        if report.verdict is Verdict.FAIL:
            raise typer.Exit(int(ExitCode.PROBLEMS))
        return
    if as_json:
        write_raw(json.dumps(status_data(current), indent=2))
        return
    write_raw(headline(current))
    table = Table(box=box.SIMPLE)
    for column in ("release", "role", "requests", "server errors", "client errors",
                   "error rate", "ratings", "satisfaction", "p50", "p95"):
        table.add_column(column, no_wrap=True)
    for figures in current.figures:
        table.add_row(figures.version, current.role(figures.release), f"{figures.requests:,}",
                      f"{figures.server_errors:,}", f"{figures.client_errors:,}",
                      _share(figures.error_rate, ".2%"), f"{figures.ratings:,}",
                      _share(figures.satisfaction, ".0%"),
                      _seconds(figures.latency.p50_seconds),
                      _seconds(figures.latency.p95_seconds))
    out.print(table, markup=False)


def headline(current: ChannelStatus) -> str:
    """`production: stable 3, rollout 4 running: candidate 4 at 10% (step 1 of 3, shares
    10,50,100)` and the window, or `no rollout`."""
    rollout = current.rollout
    line = f"{current.channel}: stable {current.stable.version}, "
    if rollout is None:
        line += "no rollout"
    else:
        line += (f"rollout {rollout.id} {rollout.state.phase}: candidate "
                 f"{rollout.candidate.version} at {rollout.share}% (step "
                 f"{rollout.state.step + 1} of {len(rollout.plan.steps)}, shares "
                 f"{','.join(map(str, rollout.plan.steps))})")
    return f"{line}\nover the window since {_when(current.since)} UTC"


def figures_data(figures: ReleaseFigures, role: str) -> dict[str, Any]:
    return {
        "role": role, "version": figures.version, "id": figures.release,
        "requests": figures.requests, "server_errors": figures.server_errors,
        "client_errors": figures.client_errors, "error_rate": figures.error_rate,
        "ratings": figures.ratings, "satisfied": figures.satisfied,
        "satisfaction": figures.satisfaction,
        "latency": {"p50_seconds": figures.latency.p50_seconds,
                    "p95_seconds": figures.latency.p95_seconds},
    }


def window_data(current: ChannelStatus) -> dict[str, Any]:
    """The channel and the window the figures are over."""
    return {"channel": current.channel, "now": current.now.isoformat(),
            "since": current.since.isoformat(),
            "window_seconds": (current.now - current.since).total_seconds()}


def status_data(current: ChannelStatus) -> dict[str, Any]:
    rollout = current.rollout
    return {
        **window_data(current),
        "stable": {"version": current.stable.version, "id": current.stable.id},
        "rollout": None if rollout is None else {
            "id": rollout.id, "phase": str(rollout.state.phase), "step": rollout.state.step,
            "steps": list(rollout.plan.steps), "share": rollout.share,
            "shares": {"candidate": rollout.share, "stable": 100 - rollout.share},
            "candidate": {"version": rollout.candidate.version, "id": rollout.candidate.id}},
        "releases": [figures_data(f, current.role(f.release)) for f in current.figures],
    }


def check_data(check: Check) -> dict[str, Any]:
    return {"name": check.name, "verdict": str(check.verdict), "figure": check.figure,
            "comparison": check.comparison, "threshold": check.threshold,
            "detail": check.detail}


def release_slo_data(judged: ReleaseSlo) -> dict[str, Any]:
    return {
        **figures_data(judged.figures, judged.role), "verdict": str(judged.verdict),
        "checks": [check_data(check) for check in judged.checks],
        "critical_errors": [{"class": g.error_class, "where": g.where, "message": g.shape,
                             "count": g.count, "last_seen": g.last_seen.isoformat()}
                            for g in judged.critical],
    }


def slo_data(report: SloReport) -> dict[str, Any]:
    return {
        **window_data(report.status), "verdict": str(report.verdict),
        "releases": [release_slo_data(judged) for judged in report.releases],
    }


def slo_text(report: SloReport) -> str:
    """One block per release, one line per metric, and the verdict last."""
    current = report.status
    lines = [f"{current.channel} since {_when(current.since)} UTC"]
    for judged in report.releases:
        lines.append(f"release {judged.figures.version} ({judged.role}): {judged.verdict}")
        for check in judged.checks:
            figure = (str(int(check.figure)) if check.name == "critical errors"
                      and check.figure is not None else _share(check.figure, ".2%"))
            threshold = (str(int(check.threshold)) if check.name == "critical errors"
                         else f"{check.threshold:.1%}".replace(".0%", "%"))
            lines.append(f"  {check.verdict:<7}  {check.name:<15}  {figure:>7} "
                         f"{check.comparison:>2} {threshold:<6}  {check.detail}")
    lines.append(f"verdict: {report.verdict}")
    return "\n".join(lines)


def _share(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
