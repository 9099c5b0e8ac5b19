"""Helpers for the server tests: the fixture library, a fake store, servers in threads and
subprocesses, and Prometheus text parsing."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx2
import uvicorn

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
# An `initialize` request body, as a client posts it to open a session.
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}

FIXTURE_LIBRARY: dict[str, str] = {
    "tallinn.toml": """
        [library]
        name = "fixture-prompts"
        description = "Prompts for the server tests"
    """,
    "commands/review/code-review.md": """
        ---
        description: Review a change for correctness, security and readability
        argument-hint: "<path> [focus]"
        arguments:
          - name: path
            description: File or folder to review
            required: true
          - name: focus
            description: What to look at hardest
            type: enum
            enum: [correctness, security, readability]
            default: correctness
        tags: [review, quality]
        critical: true
        examples:
          - description: Review one module for security
            args: {path: src/auth.py, focus: security}
        ---
        Review `{{path}}`, focusing on {{focus}}.
        <include component="reporting/findings"/>
    """,
    "commands/security/threat-model.md": """
        ---
        description: Build a threat model of a service
        arguments:
          - name: service
            description: The service to model
            required: true
            pattern: "[a-z][a-z0-9-]*"
        tags: [security, design]
        ---
        Model the threats to {{service}}.
    """,
    "commands/testing/write-tests.md": """
        ---
        description: Write unit tests for a module
        arguments:
          - name: module
            description: Module to test
            required: true
          - name: count
            description: How many tests
            type: integer
            default: 3
          - name: property
            description: Use property-based tests
            type: boolean
            default: false
        tags: [testing]
        ---
        Write {{count}} tests for {{module}} (property-based: {{property}}).
    """,
    "commands/docs/explain-code.md": """
        ---
        description: Explain what a piece of code does
        tags: [docs, learning]
        ---
        Explain this code: $ARGUMENTS
    """,
    "components/reporting/findings.md": """
        ---
        description: How to report findings
        ---
        Report each finding with file, line and severity.
    """,
    "components/style/tone.md": """
        ---
        description: The tone to write in
        ---
        Be brief and kind.
    """,
}


class FakeStore:
    """An in-memory stand-in for `tallinn.ops.store.Store`."""

    def __init__(self, tokens: Mapping[str, str] | None = None, *, up: bool = True) -> None:
        self.tokens = dict(tokens or {})
        self.up = up
        self.events: list[tuple[str, str | None, str]] = []
        self.closed = False

    def ping(self) -> bool:
        return self.up

    def verify_token(self, token: str) -> str | None:
        if not self.up:
            raise RuntimeError("store is down")
        return self.tokens.get(token)

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        self.events.append((kind, client, detail))

    def close(self) -> None:
        self.closed = True

    def kinds(self) -> list[str]:
        return [kind for kind, _, _ in self.events]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, step: float = 0.02) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            last = predicate()
            if last:
                return last
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s (last value {last!r})")


class ThreadServer:
    """A real uvicorn server on a loopback port, in a thread of this process (so it is covered).

    `server` is a uvicorn server already built (`http_server(...)`, the very one `tallinn serve
    --http` runs); without it, `app` is served with uvicorn's defaults.
    """

    def __init__(self, app: Any, port: int, server: uvicorn.Server | None = None) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        if server is None:
            config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                    lifespan="on")
            server = uvicorn.Server(config)
        self.server = server
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        wait_until(lambda: httpx2.get(f"{self.url}/health", timeout=2).status_code == 200)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "server thread did not stop"

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return metric_value(httpx2.get(f"{self.url}/metrics", timeout=5).text, name, labels)


class ServerProcess:
    """`python -m tallinn serve --http ...` in a subprocess, stopped with SIGTERM."""

    def __init__(self, args: list[str], env: Mapping[str, str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tallinn", "serve", "--http", "--port", str(port), *args],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.stop()}")
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"server did not become healthy: {self.stop()}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        _, stderr = self.process.communicate(timeout=10)
        return stderr or ""


def metric_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Given Prometheus exposition text, return the value of one sample (0 when absent)."""
    wanted = dict(labels or {})
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        sample, _, label_text = head.partition("{")
        if sample != name:
            continue
        found = {}
        for part in label_text.rstrip("}").split(","):
            if "=" in part:
                key, _, val = part.partition("=")
                found[key] = val.strip('"')
        if all(found.get(k) == v for k, v in wanted.items()):
            return float(value)
    return 0.0


@contextlib.asynccontextmanager
async def stdio_client(registry: Any, store: Any, *, client_info: Any = None,
                       message_handler: Any = None, **serve: Any) -> AsyncIterator[Any]:
    """`serve_stdio(registry, store, **serve)` over in-memory streams, with the SDK's client
    connected to it; on exit the client's end is closed and the server loop ends by itself."""
    from functools import partial

    import anyio
    from mcp import Client
    from mcp.shared.memory import create_client_server_memory_streams

    from tallinn.serve import serve_stdio

    async with create_client_server_memory_streams() as (client_streams, server_streams):

        @contextlib.asynccontextmanager
        async def server_side() -> AsyncIterator[Any]:
            yield server_streams

        @contextlib.asynccontextmanager
        async def client_side() -> AsyncIterator[Any]:
            yield client_streams

        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve_stdio, registry, store, transport=server_side, **serve))
            async with Client(client_side(), mode="legacy", client_info=client_info,
                              message_handler=message_handler) as client:
                yield client
            await client_streams[1].aclose()
