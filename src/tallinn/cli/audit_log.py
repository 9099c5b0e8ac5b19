"""`tallinn audit-log [--since WHEN] [--json]` and `tallinn audit-log verify`.

The audit log of releases and channel moves, apart from `tallinn audit` (the security audit).
`verify` walks the hash chain and exits 1 naming the first entry edited, deleted or inserted.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich import box
from rich.table import Table

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
from tallinn.cli.token import note, opened
from tallinn.wording import plural

app = command_app()
audit_log_app = command_app(
    help="The append-only audit log of releases, promotions and rollbacks.",
    invoke_without_command=True,
)
app.add_typer(audit_log_app, name="audit-log")

_AGO = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str, now: datetime, option: str = "--since") -> datetime:
    """Given `2026-03-01`, `2026-03-01T12:00` (UTC unless it says otherwise) or `90m`, `12h`,
    `7d`, `2w` (that long ago), return the moment; `option` names it in the error."""
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        return now - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {value!r}: give a date (2026-03-01), a time (2026-03-01T12:00) or how "
             "long ago (90m, 12h, 7d, 2w)")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@audit_log_app.callback()
def audit_log(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option(
        "--since", help="Only entries since WHEN: a date, a time (UTC), or 90m, 12h, 7d, 2w.",
        metavar="WHEN", show_default=False)] = None,
    library: LibraryOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log, oldest first ('tallinn audit-log verify' checks its hash chain)."""
    if ctx.invoked_subcommand is not None:
        return
    moment = None if since is None else parse_since(since, datetime.now(UTC))
    with opened(store, library) as state:
        entries = state.audit_log.entries(moment)
    if as_json:
        write_raw(json.dumps([{
            "seq": e.seq, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
            "subject": e.subject, "from": e.from_ref, "to": e.to_ref, "reason": e.reason,
            "details": json.loads(e.details), "prev_hash": e.prev_hash, "hash": e.hash,
        } for e in entries], indent=2))
        return
    table = Table(title=plural(len(entries), "entry", "entries"), title_justify="left",
                  box=box.SIMPLE)
    for column in ("#", "when (UTC)", "who", "action", "subject", "from", "to", "why"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(str(e.seq), e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action,
                      e.subject, e.from_ref or "-", e.to_ref or "-", e.reason)
    out.print(table, markup=False)


@audit_log_app.command("verify")
def verify(library: LibraryOption = None, store: StoreOption = None) -> None:
    """Check the audit log's hash chain (exit 1 naming the first bad entry)."""
    with opened(store, library) as state:
        found = state.audit_log.verify()
    if not found.ok:
        fail(f"audit log broken at entry {found.bad_seq}: {found.problem}", ExitCode.PROBLEMS)
    note(f"audit log intact: {plural(found.entries, 'entry', 'entries')}, each following the "
         "one before")
