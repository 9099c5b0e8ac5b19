"""State store commands: `tallinn token create|list|revoke` and `tallinn db upgrade|current`.

SQLAlchemy and Alembic are imported inside the commands so `tallinn --help` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich import box
from rich.table import Table

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    err,
    fail,
    library_path,
    out,
    settings,
    write_raw,
)
from tallinn.wording import plural

if TYPE_CHECKING:
    from tallinn.ops.store import Store

app = command_app()
token_app = command_app(
    help="API tokens the server accepts (stored as hashes in the state store).",
    no_args_is_help=True,
)
db_app = command_app(help="The state store's schema migrations.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")

NameArgument = Annotated[str, typer.Argument(help="Token name, e.g. ci or alice-laptop.")]


@contextmanager
def opened(url: str | None, library: Path | None) -> Iterator[Store]:
    """The store for `--store`/`--library`, closed afterwards; exit 2 if it cannot be opened."""
    from tallinn.ops.errors import StoreError
    from tallinn.ops.store import open_store

    try:
        store = open_store(url or settings().store_url, library_root=library_path(library))
    except StoreError as exc:
        store_failed(exc)
    try:
        yield store
    except StoreError as exc:
        store_failed(exc)
    finally:
        store.close()


def store_failed(exc: Exception) -> NoReturn:
    """One line on stderr, never wrapped (a URL or path stays whole), then exit 2."""
    from rich.markup import escape

    message = " ".join(str(exc).split())
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(int(ExitCode.USAGE))


RoleOption = Annotated[str, typer.Option(
    "--role", help="What the token may do: reader (MCP), viewer (also the dashboard), operator "
    "(also rollout actions) or admin (also tokens).", metavar="ROLE")]


@token_app.command("create")
def create(name: NameArgument, role: RoleOption = "reader", store: StoreOption = None,
           library: LibraryOption = None) -> None:
    """Create a token and print it once on stdout.

    Examples:

      tallinn token create ci > ci-token.txt
      tallinn token create alice --role operator
      tallinn token create alice --store postgresql://tallinn@db/tallinn
    """
    from tallinn.ops.errors import TokenExistsError
    from tallinn.ops.tokens import ROLES

    if role not in ROLES:
        fail(f"--role {role!r}: a role is one of {', '.join(ROLES)}")
    with opened(store, library) as state:
        try:
            token = state.create_token(name, role)
        except TokenExistsError as exc:
            fail(str(exc), ExitCode.PROBLEMS)
        location = state.url
    write_raw(token)
    note(
        f"[yellow]warning:[/yellow] this is the only time token '{name}' is shown: store it "
        f"in a secret manager now. It is kept as a hash in {location}."
    )


@token_app.command("list")
def list_tokens(
    store: StoreOption = None, library: LibraryOption = None, as_json: JsonOption = False
) -> None:
    """List tokens, revoked ones included (never their secrets)."""
    with opened(store, library) as state:
        infos = state.list_tokens()
    if as_json:
        write_raw(
            json.dumps(
                [
                    {
                        "name": info.name,
                        "token_id": info.token_id,
                        "role": info.role,
                        "active": info.active,
                        "created_at": _iso(info.created_at),
                        "last_used_at": _iso(info.last_used_at),
                        "revoked_at": _iso(info.revoked_at),
                    }
                    for info in infos
                ],
                indent=2,
            )
        )
        return
    table = Table(title=plural(len(infos), "token"), title_justify="left", box=box.SIMPLE)
    table.add_column("name", overflow="fold", min_width=8)
    for column in ("id", "role", "created (UTC)", "last used", "status"):
        table.add_column(column, no_wrap=True)
    for info in infos:
        table.add_row(
            info.name,
            info.token_id,
            info.role,
            _when(info.created_at),
            _when(info.last_used_at) or "never",
            "active" if info.active else "revoked",
            style=None if info.active else "dim",
        )
    out.print(table, markup=False)


@token_app.command("revoke")
def revoke(name: NameArgument, store: StoreOption = None, library: LibraryOption = None) -> None:
    """Revoke the active token NAME (exit 1 if there is none)."""
    with opened(store, library) as state:
        revoked = state.revoke_token(name)
    if not revoked:
        fail(f"no active token named '{name}'", ExitCode.PROBLEMS)
    note(f"revoked token '{name}' (every server refuses it within 2 s)")


@db_app.command("upgrade")
def db_upgrade(store: StoreOption = None, library: LibraryOption = None) -> None:
    """Migrate the store's schema to the latest revision (servers also do it on start)."""
    from tallinn.ops import migrate, sqlite_file
    from tallinn.ops.engine import make_engine, resolve_url, safe_url
    from tallinn.ops.errors import StoreError
    from tallinn.ops.store import reason

    try:
        url = resolve_url(store or settings().store_url, library_path(library))
        path = sqlite_file.file_path(url)
        if path is not None:
            sqlite_file.prepare(path, safe_url(url), create=True)
        engine = make_engine(url)
    except StoreError as exc:
        store_failed(exc)
    try:
        before, after = migrate.upgrade(engine)
    except Exception as exc:  # database and Alembic errors alike: one line, exit 2
        store_failed(StoreError(f"state store {safe_url(url)}: cannot upgrade it: {reason(exc)}"))
    finally:
        engine.dispose()
    if before == after:
        note(f"{safe_url(url)} is up to date at revision {after}")
    else:
        note(f"{safe_url(url)} upgraded from {before or 'empty'} to {after}")


@db_app.command("current")
def db_current(
    store: StoreOption = None, library: LibraryOption = None, as_json: JsonOption = False
) -> None:
    """Show the store's schema revision and the latest one (exit 1 if behind)."""
    from tallinn.ops import migrate
    from tallinn.ops.engine import is_memory, make_engine, resolve_url, safe_url
    from tallinn.ops.errors import StoreError
    from tallinn.ops.store import reason

    try:
        url = resolve_url(store or settings().store_url, library_path(library))
    except StoreError as exc:
        store_failed(exc)
    head = migrate.head_revision()
    current: str | None = None
    # Asking must not create a SQLite file that does not exist yet.
    if url.get_backend_name() != "sqlite" or is_memory(url) or Path(str(url.database)).exists():
        try:
            engine = make_engine(url)
        except StoreError as exc:
            store_failed(exc)
        try:
            current = migrate.current_revision(engine)
        except Exception as exc:  # database errors: one line, exit 2
            store_failed(
                StoreError(f"state store {safe_url(url)}: cannot read its revision: {reason(exc)}")
            )
        finally:
            engine.dispose()
    if as_json:
        write_raw(json.dumps({"url": safe_url(url), "current": current, "head": head}))
    else:
        write_raw(f"current: {current or 'none'}\nhead: {head}")
    if current != head:
        raise typer.Exit(int(ExitCode.PROBLEMS))


def note(message: str) -> None:
    """A message for people on stderr, unwrapped so URLs stay whole."""
    err.print(message, highlight=False, soft_wrap=True)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")
