"""A load test against a live server: what `tallinn bench --load` and `tallinn gates --load` run.

    result = run_load_test(Path("my-library"), [("greet", {"name": "Ada"})],
                           clients=50, seconds=10)
    result.calls, result.errors, result.p95_ns

The library is served on a free loopback port (uvicorn in a thread, without a state store)
and driven by `clients` concurrent MCP sessions calling `prompts/get` until `seconds` are up.
The performance gate grades the result; it gets this function injected by the CLI, so the
gates never import the server.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2

from tallinn.library.source import LibrarySource
from tallinn.serve._config import ServeConfig
from tallinn.serve._events import UnavailableStore
from tallinn.serve._http import build_app
from tallinn.serve._registry import Registry

STARTUP_SECONDS = 15
GRACE_SECONDS = 30  # beyond `seconds`, before a stuck server is abandoned
MESSAGE_CHARS = 200


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load test measured, e.g. `LoadResult(calls=812, errors=0, p95_ns=9_100_000)`.

    `calls` counts every `prompts/get` made, failed ones included, and each session that
    could not be opened; `errors` counts the failures among them. Latencies are of the
    successful calls, nearest-rank, in nanoseconds (0 when there were none).
    """

    calls: int
    errors: int
    p50_ns: int
    p95_ns: int
    max_ns: int
    duration: float  # seconds the clients ran, as measured
    error_messages: tuple[str, ...] = ()  # distinct, sorted


def run_load_test(root: LibrarySource | Path, calls: Sequence[tuple[str, Mapping[str, str]]], *,
                  clients: int, seconds: float) -> LoadResult:
    """Serve the library `root` (a source, or a folder) on a free loopback port and drive
    it for `seconds`.

    Given `calls` like `[("greet", {"name": "Ada"}), ("bye", {})]`, client `i` starts at
    call `i` and makes them in turn until the time is up, one at a time, and at least once.
    """
    if not calls:
        raise ValueError("a load test needs at least one call")
    registry = Registry(root)
    registry.load()
    app = build_app(registry, UnavailableStore("not needed for a load test"),
                    ServeConfig(host="127.0.0.1", port=0, reload=False))
    with _LoopbackServer(app) as url:
        started = time.monotonic()
        latencies, errors = _drive(url, calls, clients, seconds)
        duration = time.monotonic() - started
    ordered = sorted(latencies)
    return LoadResult(
        calls=len(latencies) + len(errors),
        errors=len(errors),
        p50_ns=_percentile(ordered, 50),
        p95_ns=_percentile(ordered, 95),
        max_ns=ordered[-1] if ordered else 0,
        duration=duration,
        error_messages=tuple(sorted(set(errors))),
    )


def _percentile(ordered: Sequence[int], pct: float) -> int:
    """The nearest-rank percentile of sorted `ordered` (0 when it is empty)."""
    if not ordered:
        return 0
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


class _LoopbackServer:
    """uvicorn serving `app` on a free 127.0.0.1 port in a thread; stops on exit."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.__exit__()
                raise RuntimeError(f"the server did not start within {STARTUP_SECONDS} s")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=STARTUP_SECONDS)
        self.socket.close()


def _drive(url: str, calls: Sequence[tuple[str, Mapping[str, str]]], clients: int,
           seconds: float) -> tuple[list[int], list[str]]:
    """Run `clients` MCP sessions against `url` for `seconds`; return (latencies, errors)."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[int] = []
    errors: list[str] = []

    async def client(index: int, deadline: float) -> None:
        try:
            async with httpx2.AsyncClient(timeout=httpx2.Timeout(10.0)) as http:
                transport = streamable_http_client(f"{url}/mcp", http_client=http)
                async with Client(transport, mode="legacy", cache=None) as session:
                    turn = index
                    # Each client makes one call at least: on a busy machine opening the
                    # session can take longer than the whole run, and a run with no call
                    # would measure nothing.
                    while turn == index or time.monotonic() < deadline:
                        name, arguments = calls[turn % len(calls)]
                        turn += 1
                        started = time.perf_counter_ns()
                        try:
                            await session.get_prompt(name, dict(arguments))
                        except Exception as exc:
                            errors.append(f"prompts/get {name}: {exc}"[:MESSAGE_CHARS])
                        else:
                            latencies.append(time.perf_counter_ns() - started)
        except Exception as exc:
            errors.append(f"session: {type(exc).__name__}: {exc}"[:MESSAGE_CHARS])

    async def main() -> None:
        deadline = time.monotonic() + seconds
        with anyio.move_on_after(seconds + GRACE_SECONDS):  # a stuck server never hangs us
            async with anyio.create_task_group() as group:
                for index in range(clients):
                    group.start_soon(client, index, deadline)

    anyio.run(main)
    return latencies, errors
