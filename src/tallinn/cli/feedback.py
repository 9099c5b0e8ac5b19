"""`tallinn feedback [--release R] [--prompt P] [--since WHEN] [--limit N] [--json]`.

The ratings clients gave prompts (1..5 stars, an optional comment), per release and prompt:
how many, their mean, the satisfaction (the share of 4 and 5 stars), then the latest ratings
with their comments. Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tallinn.cli.common import JsonOption, LibraryOption, StoreOption, command_app, out, write_raw
from tallinn.cli.errors import (
    LimitOption,
    ReleaseOption,
    SinceOption,
    parse_limit,
    release_id,
    since_moment,
    versions,
)
from tallinn.cli.token import opened
from tallinn.wording import plural

app = command_app()


@app.command("feedback")
def feedback(
    release: ReleaseOption = None,
    prompt: Annotated[str | None, typer.Option(
        "--prompt", help="Only the ratings of one prompt, e.g. code-review.", metavar="NAME",
        show_default=False)] = None,
    since: SinceOption = None,
    limit: LimitOption = "100",
    library: LibraryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show how clients rated the prompts: a summary per release and prompt, then the latest
    ratings with their comments.

    Examples:

      tallinn feedback --since 7d
      tallinn feedback --release 3 --prompt code-review --json
    """
    moment, most = since_moment(since), parse_limit(limit)
    with opened(store, library) as state:
        wanted = release_id(state, release)
        summary = state.feedback.summary(release=wanted, prompt=prompt, since=moment)
        ratings = state.feedback.ratings(release=wanted, prompt=prompt, since=moment,
                                         limit=most)
        named = versions(state)
    if as_json:
        write_raw(json.dumps({
            "summary": [{"release": s.release, "version": named.get(s.release),
                         "prompt": s.prompt, "ratings": s.ratings, "mean": round(s.mean, 3),
                         "satisfaction": round(s.satisfaction, 3), "comments": s.comments,
                         "last_at": s.last_at.isoformat()} for s in summary],
            "ratings": [{"id": r.id, "at": r.at.isoformat(), "release": r.release,
                         "version": named.get(r.release), "prompt": r.prompt,
                         "rating": r.rating, "comment": r.comment, "client": r.client}
                        for r in ratings],
        }, indent=2))
        return
    table = Table(title=plural(sum(s.ratings for s in summary), "rating"), title_justify="left",
                  box=box.SIMPLE)
    for column in ("release", "prompt", "ratings", "mean", "satisfied", "comments"):
        table.add_column(column, no_wrap=True)
    for s in summary:
        table.add_row(named.get(s.release) or s.release[:12], s.prompt, str(s.ratings),
                      f"{s.mean:.1f}", f"{s.satisfaction:.0%}", str(s.comments))
    out.print(table, markup=False)
    latest = Table(title=f"latest {plural(len(ratings), 'rating')}", title_justify="left",
                   box=box.SIMPLE)
    for column in ("when (UTC)", "release", "prompt", "stars", "client"):
        latest.add_column(column, no_wrap=True)
    latest.add_column("comment", overflow="fold")
    for r in ratings:
        latest.add_row(r.at.strftime("%Y-%m-%d %H:%M:%S"), named.get(r.release) or r.release[:12],
                       r.prompt, str(r.rating), r.client, r.comment or "")
    out.print(latest, markup=False)
