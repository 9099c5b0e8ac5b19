"""`tallinn events [--since WHEN] [--kind KIND] [--limit N] [--json]`: security events.

What the servers refused (`auth_failure`, `rate_limited`, `path_traversal`, ...), newest first,
as `tallinn.ops.security_events` stored them. Bad input is one line on stderr and exit 2.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from tallinn.cli.common import (
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    fail,
    out,
    write_raw,
)
from tallinn.cli.errors import LimitOption, SinceOption, parse_limit, since_moment
from tallinn.cli.token import opened
from tallinn.wording import plural

app = command_app()

_KIND = re.compile(r"[a-z][a-z0-9_.]{0,63}")


@app.command("events")
def events(
    since: SinceOption = None,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="Only events of one kind, e.g. auth_failure or rate_limited.",
        metavar="KIND", show_default=False)] = None,
    limit: LimitOption = "100",
    library: LibraryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the security events the servers recorded, newest first.

    Examples:

      tallinn events --since 24h --kind auth_failure
      tallinn events --json
    """
    if kind is not None and not _KIND.fullmatch(kind):
        fail(f"--kind {kind!r}: a kind is a lowercase word such as auth_failure")
    moment, most = since_moment(since), parse_limit(limit)
    with opened(store, library) as state:
        found = state.events(kind, most)
    # Newest first: those before `since` are at the end, and none after it is left out.
    shown = [e for e in found if moment is None or e.occurred_at >= moment]
    if as_json:
        write_raw(json.dumps([{"id": e.id, "at": e.occurred_at.isoformat(), "kind": e.kind,
                               "client": e.client, "detail": e.detail} for e in shown],
                             indent=2))
        return
    table = Table(title=plural(len(shown), "event"), title_justify="left", box=box.SIMPLE)
    for column in ("when (UTC)", "kind", "client"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for e in shown:
        table.add_row(e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"), e.kind, e.client or "-",
                      e.detail)
    out.print(table, markup=False)
