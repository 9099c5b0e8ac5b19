"""Run a server: over stdio for one local client, or over HTTP with uvicorn."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from tallinn.serve._config import ServeConfig
from tallinn.serve._events import EventRecorder, StoreLike, UnavailableStore
from tallinn.serve._registry import Registry
from tallinn.serve._reload import watch_library
from tallinn.serve._server import build_server

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("tallinn.serve")
Streams = tuple[Any, Any]  # the SDK's (read stream, write stream) pair


class StoreUnavailable(RuntimeError):
    """The state store could not be opened (production refuses to start without it)."""


def open_state_store(url: str | None, library_root: Path, *, required: bool) -> StoreLike:
    """Open the state store; a database that does not answer degrades /ready, not the server.

    The store keeps trying (see `tallinn.ops.store`), so it is used once it answers. Only a
    URL that cannot work stops a production start; outside production it only degrades.
    """
    try:
        from tallinn.ops.store import connect_store

        # A migration runs in a child process: this one serves for long, without Alembic.
        store = connect_store(url, library_root=library_root, isolated_migrations=True)
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


async def serve_stdio(
    registry: Registry,
    store: StoreLike,
    *,
    reload: bool = True,
    transport: Callable[[], AbstractAsyncContextManager[Streams]] | None = None,
) -> None:
    """Serve one client over this process's stdin and stdout until it disconnects.

    `transport` replaces stdin/stdout (tests pass in-memory streams).
    """
    from mcp.server.stdio import stdio_server

    recorder = EventRecorder(store, registry.metrics)
    server = build_server(registry, recorder)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(recorder.run)
        if reload:
            await tg.start(watch_library, registry, stop)
        async with (transport or stdio_server)() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        stop.set()
        tg.cancel_scope.cancel()


def http_server(registry: Registry, store: StoreLike, config: ServeConfig) -> uvicorn.Server:
    """A uvicorn server for `build_app(registry, store, config)`, not yet running."""
    import uvicorn

    from tallinn.serve._http import build_app

    app = build_app(registry, store, config)
    uvicorn_config = uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_config=None,
        # A line per request costs 5-17% of the throughput (docs/performance.md): opt-in.
        access_log=config.access_log,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(uvicorn_config)


def serve_http(registry: Registry, store: StoreLike, config: ServeConfig) -> None:
    """Serve over streamable HTTP until interrupted (SIGINT or SIGTERM)."""
    server = http_server(registry, store, config)
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
