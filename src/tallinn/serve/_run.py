"""Run a server: over stdio for one local client, or over HTTP with uvicorn.

Over HTTP, uvicorn's protocol is given two bounds it does not have by itself: a deadline for a
request's headers (uvicorn's keep-alive timeout stops at the first byte, so one byte every few
seconds would hold a connection forever) and a cap on open connections that closes the oldest
connection whose request has not fully arrived, so half-open and slow connections cannot use
up the file descriptors and lock out `/health`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import resource
import socket
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio

from tallinn.serve._config import ServeConfig
from tallinn.serve._events import (
    DirectFirstStore,
    EventRecorder,
    RecordsErrors,
    StoreLike,
    UnavailableStore,
)
from tallinn.serve._metrics import Metrics
from tallinn.serve._registry import Registry
from tallinn.serve._reload import watch_library
from tallinn.serve._server import build_server

if TYPE_CHECKING:
    import uvicorn

    from tallinn.ops.store import Store
    from tallinn.serve._control import ControllerStatus
    from tallinn.serve._dashboard import Access
    from tallinn.serve._follow import ChannelFollower

log = logging.getLogger("tallinn.serve")
Streams = tuple[Any, Any]  # the SDK's (read stream, write stream) pair
# File descriptors kept for everything but client connections: the store, the watcher, logs.
_SPARE_FDS = 64


class StoreUnavailable(RuntimeError):
    """The state store could not be opened (production refuses to start without it)."""


def open_state_store(url: str | None, library_root: Path, *, required: bool) -> StoreLike:
    """Open the state store; a database that does not answer degrades /ready, not the server.

    The store keeps trying (see `tallinn.ops.store`), so it is used once it answers. Only a
    URL that cannot work stops a production start; outside production it only degrades.
    Tokens and health go through the database driver alone where the URL allows it (see
    `DirectFirstStore`), so a server that only checks tokens never loads SQLAlchemy.
    """
    direct = _direct_store(url, library_root)
    if direct is not None:
        return direct
    try:
        store = _full_store(url, library_root)
    except Exception as exc:
        if required:
            raise StoreUnavailable(f"cannot open the state store: {exc}") from exc
        log.warning("state store unavailable, serving without it: %s", exc)
        return UnavailableStore(str(exc))
    try:
        store.open()
    except Exception as exc:  # one line; the store says when it answers again
        log.error("%s; serving without it until it answers", exc)
    return store


def _full_store(url: str | None, library_root: Path) -> Store:
    from tallinn.ops.store import connect_store

    # A migration runs in a child process: this one serves for long, without Alembic.
    return connect_store(url, library_root=library_root, isolated_migrations=True)


def _direct_store(url: str | None, library_root: Path) -> DirectFirstStore | None:
    """The driver-only store for `url`, opened (or trying to); None if the URL needs the full
    `Store` (see `tallinn.ops.verifier.direct_target`)."""
    from tallinn.ops.verifier import DirectTokens, direct_target

    target = direct_target(url, library_root)
    if target is None:
        return None
    tokens = DirectTokens(target)
    try:
        tokens.database.open()
    except Exception as exc:  # one line; the store says when it answers again
        log.error("%s; serving without it until it answers", exc)
    return DirectFirstStore(tokens, partial(_full_store, url, library_root))


def safe_store_url(url: str) -> str:
    """Given `postgresql://app:secret@db/prompts`, return `postgresql://app:***@db/prompts`."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "<invalid URL>"


def store_label(store: StoreLike, url: str | None, library_root: Path) -> str:
    """Where the store is, for the start-up line: its URL with any password hidden."""
    shown = getattr(store, "url", None)
    if isinstance(shown, str):
        return shown
    if isinstance(store, UnavailableStore):
        return "unavailable"
    if url:
        return safe_store_url(url)
    from tallinn.settings import starter_path

    base = Path.cwd() if library_root.resolve() == starter_path().resolve() else library_root
    return f"sqlite:///{base / '.tallinn' / 'state.db'}"


def startup_line(registry: Registry, *, production: bool, store: str, url: str | None,
                 follower: ChannelFollower | None = None) -> str:
    """`tallinn 0.4.0 serving 14 prompts at http://127.0.0.1:8000/mcp (production, store: ...)`.

    Serving a channel, the line ends with `, release 3 (ab12cd34ef56) of channel production`.
    """
    from tallinn import __version__

    snapshot = registry.current
    count = len(snapshot.library.commands) if snapshot else 0
    noun = "prompt" if count == 1 else "prompts"
    where = f"at {url}" if url else "over stdio"
    mode = "production" if production else "development"
    origin = f", {follower.described}" if follower is not None else ""
    return (f"tallinn {__version__} serving {count} {noun} {where} ({mode}, store: {store}"
            f"{origin})")


async def serve_stdio(
    registry: Registry,
    store: StoreLike,
    *,
    reload: bool = True,
    transport: Callable[[], AbstractAsyncContextManager[Streams]] | None = None,
    follower: ChannelFollower | None = None,
    controller: ControllerStatus | None = None,
) -> None:
    """Serve one client over this process's stdin and stdout until it disconnects.

    `transport` replaces stdin/stdout (tests pass in-memory streams); a `follower` follows
    a channel of the store, and a `controller` runs the rollout controller on its store.
    """
    from mcp.server.stdio import stdio_server

    recorder = EventRecorder(store, registry.metrics)
    server = build_server(registry, recorder)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(recorder.run)
        if reload:
            await tg.start(watch_library, registry, stop)
        if follower is None and isinstance(store, RecordsErrors):
            from tallinn.serve._failures import keep_served_errors

            await tg.start(keep_served_errors, server.serving, store.record_errors)
        if follower is not None:
            from tallinn.serve._follow import follow_channel

            await tg.start(follow_channel, follower, registry, stop, server.serving)
            if controller is not None:
                from tallinn.serve._control import run_controller

                await tg.start(partial(run_controller, follower.store, stop,
                                       tick=controller.tick, status=controller))
        async with (transport or stdio_server)() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        stop.set()
        tg.cancel_scope.cancel()


def edge_protocol(config: ServeConfig, metrics: Metrics) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a header deadline and a cap on open connections.

    A connection is "incomplete" from the moment it opens, and again after each answer, until
    its next request has arrived whole. Its headers must be complete within
    `config.header_timeout` (the body has `body_timeout`, watched by the app). When more than
    `config.max_connections` are open, the oldest incomplete connection is closed: half-open
    and slow connections make room, while connections whose request is being answered keep
    theirs (if every other one is busy, the new connection itself is closed).
    """
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    # Shared by every connection of this server; a dict keeps the oldest first. The value is
    # the header deadline's timer, `None` once the headers are in and the body is coming.
    incomplete: dict[EdgeProtocol, asyncio.TimerHandle | None] = {}

    class EdgeProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._await_request()
            if len(self.connections) > config.max_connections:
                metrics.connection_dropped("over_capacity")
                next(iter(incomplete))._drop()

        def on_headers_complete(self) -> None:
            timer = incomplete.get(self)
            if timer is not None:
                timer.cancel()
                incomplete[self] = None
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._forget()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # A pipelined request has already arrived; only an idle connection waits.
            if not self.transport.is_closing() and not self.pipeline:
                self._await_request()

        def connection_lost(self, exc: Exception | None) -> None:
            self._forget()
            super().connection_lost(exc)

        def _await_request(self) -> None:
            self._forget()
            incomplete[self] = self.loop.call_later(config.header_timeout, self._header_timeout)

        def _forget(self) -> None:
            timer = incomplete.pop(self, None)
            if timer is not None:
                timer.cancel()

        def _header_timeout(self) -> None:
            metrics.connection_dropped("header_timeout")
            self._drop()

        def _drop(self) -> None:
            self._forget()
            if not self.transport.is_closing():
                self.transport.close()

    return EdgeProtocol


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards `wanted`; return the limit now.

    Many systems start processes at 1,024 while allowing far more: each client connection
    takes one descriptor, so the cap on connections must sit below this limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # pragma: no cover - a hard limit we could not read
            pass
    return soft


def fit_connections(config: ServeConfig, fd_limit: int) -> ServeConfig:
    """Lower `max_connections` to fit under `fd_limit` open files, so accept() never fails.

    Given `max_connections=5000` and a limit of 1,024, the cap becomes 960.
    """
    fitting = max(1, fd_limit - _SPARE_FDS)
    if config.max_connections <= fitting:
        return config
    log.warning(
        "max_connections %d is more than this process's file limit (%d) allows; using %d",
        config.max_connections,
        fd_limit,
        fitting,
    )
    return replace(config, max_connections=fitting)


def http_server(registry: Registry, store: StoreLike, config: ServeConfig, *,
                follower: ChannelFollower | None = None,
                dashboard: Access | None = None,
                controller: ControllerStatus | None = None) -> uvicorn.Server:
    """A uvicorn server for `build_app(registry, store, config)`, not yet running."""
    import uvicorn

    from tallinn.serve._heap import HeapKeeper
    from tallinn.serve._http import build_app

    heap = HeapKeeper(config.heap_check_interval, config.heap_growth)
    app = build_app(registry, store, config, heap=heap, follower=follower,
                    controller=controller, dashboard=dashboard)
    config = fit_connections(config, raise_fd_limit(config.max_connections + _SPARE_FDS))
    uvicorn_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=edge_protocol(config, registry.metrics),
        log_config=None,
        # A line per request costs 5-17% of the throughput (docs/performance.md): opt-in.
        access_log=config.access_log,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=max(1, round(config.keep_alive_timeout)),
        backlog=config.backlog,
    )
    production = config.production

    class AnnouncingServer(uvicorn.Server):
        """Says once, when the socket is listening, what it serves, where and how."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started and self.servers:
                address = self.servers[0].sockets[0].getsockname()
                host = f"[{address[0]}]" if ":" in address[0] else address[0]
                label = store_label(store, None, registry.root or Path.cwd())
                url = f"http://{host}:{address[1]}/mcp"
                log.info(startup_line(registry, production=production, store=label, url=url,
                                      follower=follower))

    return AnnouncingServer(uvicorn_config)


def serve_http(registry: Registry, store: StoreLike, config: ServeConfig, *,
               follower: ChannelFollower | None = None,
               dashboard: Access | None = None,
               controller: ControllerStatus | None = None) -> None:
    """Serve over streamable HTTP until interrupted (SIGINT or SIGTERM)."""
    server = http_server(registry, store, config, follower=follower, controller=controller,
                         dashboard=dashboard)
    settle_heap()
    server.run()


def settle_heap() -> None:
    """Take what is alive now (modules, the loaded library) out of the garbage collector's sight.

    It lives as long as the process, yet every full collection would walk it again: about
    50 ms with a 1,000-command library, stalling every request in flight. Frozen objects are
    still freed when nothing refers to them (a replaced library has no cycles to leak).
    """
    gc.collect()
    gc.freeze()
