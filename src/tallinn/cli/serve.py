"""Server commands: serve (stdio or HTTP) and smoke (check a deployed server).

The server package is imported inside the commands, so `import tallinn.cli` stays fast.
"""

from __future__ import annotations

import errno
import gc
import json
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Annotated

import typer

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    StoreOption,
    command_app,
    console,
    fail,
    settings,
    write_raw,
)
from tallinn.library import TallinnError

if TYPE_CHECKING:
    from pathlib import Path

    from tallinn.library.source import LibrarySource
    from tallinn.serve import ChannelFollower, Check


app = command_app()


@contextmanager
def start_up() -> Iterator[None]:
    """Import the server and load the library with the garbage collector paused.

    Start-up builds only what lives as long as the process (the SDK's modules, the loaded
    library), and each collection during it would walk that growing heap for nothing: about
    75 ms of a 0.7 s start with 1,000 commands. Afterwards the heap is frozen, out of the
    collector's sight, and collection resumes for what requests allocate. The few hundred
    objects of garbage that start-up leaves in cycles are frozen with the rest: collecting
    them would cost the 50 ms saved.
    """
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@app.command()
def serve(
    library: LibraryOption = None,
    http: Annotated[
        bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")
    ] = False,
    host: Annotated[
        str, typer.Option(help="HTTP: address to listen on.", metavar="ADDRESS")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: port to listen on.", metavar="PORT")] = 8000,
    stateless: Annotated[
        bool, typer.Option("--stateless", help="HTTP: no sessions; each request stands alone.")
    ] = False,
    reload: Annotated[
        bool | None,
        typer.Option("--reload/--no-reload",
                     help="Reload the library when its files change (default on for a folder).",
                     show_default=False),
    ] = None,
    from_store: Annotated[
        bool,
        typer.Option("--from-store",
                     help="Serve the release a channel of the state store points at, and "
                     "follow the channel as it moves."),
    ] = False,
    channel: Annotated[
        str, typer.Option("--channel", help="--from-store: the channel to serve.",
                          metavar="CHANNEL")
    ] = "production",
    store_url: StoreOption = None,
    store_poll: Annotated[
        float | None,
        typer.Option("--store-poll", help="--from-store: seconds between reads of the "
                     "channel (default 2; [serve] store_poll).", metavar="SECONDS",
                     show_default=False),
    ] = None,
    controller_tick: Annotated[
        float | None,
        typer.Option("--controller-tick", help="--from-store: seconds between the rollout "
                     "controller's ticks (default 5; [serve] controller_tick).",
                     metavar="SECONDS", show_default=False),
    ] = None,
    controller: Annotated[
        bool,
        typer.Option("--controller/--no-controller",
                     help="--from-store: run the rollout controller when this replica leads; "
                     "off, this replica never leads."),
    ] = True,
    store_listen: Annotated[
        bool,
        typer.Option("--store-listen/--no-store-listen",
                     help="--from-store on PostgreSQL: hear channel moves at once "
                     "(LISTEN/NOTIFY); off, poll only."),
    ] = True,
    production: Annotated[
        bool,
        typer.Option(
            "--production",
            help="Bearer tokens, rate limits and JSON logs (also TALLINN_ENV=production).",
        ),
    ] = False,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            "--rate-limit",
            help="HTTP: requests per client, e.g. 20/s or 600/m, or 'off'.",
            metavar="RATE",
            show_default=False,
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-body-bytes",
            help="HTTP: largest request body (default 1 MiB).",
            metavar="BYTES",
            show_default=False,
        ),
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="HTTP: log a line per request (default off; /metrics counts requests).",
            show_default=False,
        ),
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option(help="HTTP: open connections at most (default 2000).", show_default=False),
    ] = None,
    max_sessions: Annotated[
        int | None,
        typer.Option(help="HTTP: stateful sessions at most (default 1000).", show_default=False),
    ] = None,
    session_idle_timeout: Annotated[
        float | None,
        typer.Option(help="HTTP: seconds before an unused session ends (default 1800).",
                     show_default=False),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="HTTP: a Host header to accept on /mcp, e.g. behind a proxy (repeatable; "
            "also TALLINN_ALLOWED_HOSTS, comma-separated).",
            metavar="HOST",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the library over MCP: stdio for one local client, or HTTP with --http.

    Examples:

      claude mcp add tallinn -- tallinn serve
      tallinn serve --http --port 8080
      tallinn serve --http --production --host 0.0.0.0
    """
    current = settings()
    production = production or current.production
    root = current.library_path(library)
    cache_dir = current.cache_dir(root)
    if from_store and reload:
        fail("--from-store serves a stored release, which never changes: drop --reload "
             "(the server follows the channel instead)")
    url = store_url or current.store_url
    follower = None
    with start_up():
        import anyio

        from tallinn import serve as serving

        serving.configure_logging(json_lines=production)
        if from_store:
            follower, source = _follow(url, root, channel)
            registry = serving.Registry(source)
        else:
            registry = serving.Registry(root, cache_dir=cache_dir)
        snapshot = registry.load()
    try:
        config = serving.resolve(
            snapshot.library.config.table("serve"),
            host=host,
            port=port,
            stateless=stateless,
            production=production,
            reload=not from_store if reload is None else reload,
            rate_limit=rate_limit,
            max_body_bytes=max_body_bytes,
            allowed_hosts=allowed_host or (),
            env_allowed_hosts=current.allowed_hosts or "",
            access_log=access_log,
            edge={
                "max_connections": max_connections,
                "max_sessions": max_sessions,
                "session_idle_timeout": session_idle_timeout,
            },
            store_poll=store_poll,
            controller_tick=controller_tick,
        )
    except serving.ConfigError as exc:
        fail(str(exc))
    open_store = partial(serving.open_state_store, url, root, required=production)
    store: serving.StoreLike
    status = None
    if follower is not None:
        follower.poll = config.store_poll
        follower.listen = store_listen
        store = follower.store
        if controller:
            status = serving.ControllerStatus(tick=config.controller_tick,
                                              retention=serving.Retention.of(config))
    elif http or production:
        try:
            store = open_store()
        except serving.StoreUnavailable as exc:
            fail(str(exc))
    else:
        # Over stdio the store only records security events: open it when one comes.
        store = serving.LazyStore(open_store)
    if http and (busy := unusable_address(config.host, config.port)) is not None:
        store.close()
        fail(busy, ExitCode.PROBLEMS)
    try:
        if http:
            dashboard = None
            if follower is not None:
                from tallinn.serve._dashboard import dashboard_access

                dashboard = dashboard_access(follower.store, production=production,
                                             secret=current.dashboard_secret,
                                             session_seconds=current.dashboard_session)
            serving.serve_http(registry, store, config, follower=follower, dashboard=dashboard,
                               controller=status)
        else:
            label = serving.store_label(store, url, root)
            line = serving.startup_line(registry, production=production, store=label, url=None,
                                        follower=follower)
            print(line, file=sys.stderr, flush=True)  # stdout is the MCP wire
            anyio.run(partial(serving.serve_stdio, registry, store, reload=config.reload,
                              follower=follower, controller=status))
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:
        # uvicorn exits 3 when it cannot bind, e.g. when another process took the port
        # between the check above and its own bind.
        if exc.code != 3:
            raise
        fail(unusable_address(config.host, config.port)
             or f"cannot listen on {config.host}:{config.port}", ExitCode.PROBLEMS)
    finally:
        store.close()


def _follow(url: str | None, root: Path, channel: str) -> tuple[ChannelFollower, LibrarySource]:
    """The follower of `channel` and the source of its release; exit 2 with one line when the
    store cannot be read or the channel has no release (a replica with nothing to serve)."""
    from tallinn.ops.errors import StoreError
    from tallinn.ops.store import connect_store
    from tallinn.serve import ChannelFollower

    try:
        store = connect_store(url, library_root=root, isolated_migrations=True)
        follower = ChannelFollower(store, channel)
        return follower, follower.start()
    except (StoreError, TallinnError) as exc:
        fail(" ".join(str(exc).split()))


def unusable_address(host: str, port: int) -> str | None:
    """Why the server could not listen on `host:port` (one line), or None if it can.

    Binds a socket the way uvicorn does (SO_REUSEADDR) and lets it go at once.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {where}: {exc.strerror}; check --host"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"{where} is already in use (another server is listening there); stop "
                        "it or choose another --port")
            return f"cannot listen on {where}: {exc.strerror}"
    return None


@app.command()
def smoke(
    url: Annotated[
        str, typer.Argument(help="Server URL, e.g. http://localhost:8000 (or .../mcp).",
                            metavar="URL")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="TALLINN_TOKEN",
            help="Bearer token (or TALLINN_TOKEN).",
            metavar="TOKEN",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for each answer.", metavar="SECONDS")
    ] = 10.0,
    as_json: JsonOption = False,
) -> None:
    """Check a running server: health, readiness, prompts, critical commands, resources, errors.

    Example: tallinn smoke http://localhost:8000 --token "$TOKEN"
    """
    import anyio

    from tallinn.serve import run_smoke

    checks = anyio.run(partial(run_smoke, url, token=token, timeout=timeout))
    _report(url, checks, as_json=as_json)


def _report(url: str, checks: list[Check], *, as_json: bool) -> None:
    failed = [c for c in checks if not c.ok]
    if as_json:
        write_raw(
            json.dumps(
                {
                    "url": url,
                    "ok": not failed,
                    "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in checks],
                },
                indent=2,
            )
        )
    else:
        from rich.table import Table

        table = Table(title=f"smoke test of {url}", title_justify="left")
        table.add_column("check", style="bold")
        table.add_column("result")
        table.add_column("detail")
        for check in checks:
            table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
        err = console("err")
        err.print(table)
        style = "red" if failed else "green"
        err.print(f"[{style}]{len(checks) - len(failed)}/{len(checks)} checks passed[/]")
    if failed:
        raise typer.Exit(int(ExitCode.PROBLEMS))
