"""`/health` is answered while other requests are in progress, before any of the MCP stack, and
the MCP stack works on at most `max_working` requests at once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import anyio
import httpx2
import pytest
from starlette.types import Message, Receive, Scope, Send
from tests.serve.serve_helpers import (
    INIT,
    MCP_HEADERS,
    FakeStore,
    ThreadServer,
    free_port,
    wait_until,
)

from tallinn.serve import EventRecorder, McpGuard, Metrics, Registry, ServeConfig, http_server

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

HELD = 8


class HeldStore(FakeStore):
    """A store whose token checks wait until `release` is set; `entered` counts them."""

    def __init__(self) -> None:
        super().__init__({"good-token": "ci-bot"})
        self.release = threading.Event()
        self.entered = 0
        self._lock = threading.Lock()

    def verify_token(self, token: str) -> str | None:
        with self._lock:
            self.entered += 1
        assert self.release.wait(30), "the test never released the token checks"
        return super().verify_token(token)


def test_health_is_answered_while_requests_wait_for_the_store(registry: Registry) -> None:
    """With requests to /mcp held in progress inside their token check, every /health is
    answered, and the held requests are answered once the store lets them go."""
    store = HeldStore()
    config = ServeConfig(port=free_port(), reload=False, production=True, rate_limit=None)
    server = ThreadServer(None, config.port, http_server(registry, store, config)).start()
    pool = ThreadPoolExecutor(HELD)
    try:
        tokens = ["good-token"] + [f"unknown-{n}" for n in range(HELD - 1)]
        held: list[Future[httpx2.Response]] = [
            pool.submit(
                httpx2.post,
                f"{server.url}/mcp",
                json=INIT,
                headers={**MCP_HEADERS, "Authorization": f"Bearer {token}"},
                timeout=60,
            )
            for token in tokens
        ]
        wait_until(lambda: store.entered == HELD)
        for _ in range(20):
            health = httpx2.get(f"{server.url}/health", timeout=30)
            assert health.status_code == 200
            assert health.json()["library"] == "fixture-prompts"
        assert not any(future.done() for future in held)
        store.release.set()
        statuses = sorted(future.result(timeout=60).status_code for future in held)
        assert statuses == [200] + [401] * (HELD - 1)
    finally:
        store.release.set()
        pool.shutdown(wait=True)
        server.stop()


def test_health_answers_head_and_refuses_other_methods(registry: Registry) -> None:
    """HEAD /health is a 200 without a body, and POST /health a 405 naming the methods."""
    config = ServeConfig(port=free_port(), reload=False)
    server = ThreadServer(None, config.port, http_server(registry, FakeStore(), config)).start()
    try:
        head = httpx2.head(f"{server.url}/health")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) > 0
        refused = httpx2.post(f"{server.url}/health")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
    finally:
        server.stop()


class HoldingApp:
    """An ASGI app standing in for the MCP stack: each request waits for `release`, and
    `inside` / `most` count the requests in it now and at most."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.inside = 0
        self.most = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            await self.release.wait()
        finally:
            self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def _post(guard: McpGuard, answers: list[int]) -> None:
    scope: dict[str, Any] = {
        "type": "http", "method": "POST", "path": "/mcp", "headers": [],
        "client": ("127.0.0.1", 1),
    }
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode()

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            answers.append(message["status"])

    await guard(scope, receive, send)


async def test_at_most_max_working_requests_are_in_the_mcp_stack_at_once() -> None:
    """Past `max_working` requests in the MCP stack, the others wait outside it, parked, and
    every one of them is answered once the first ones are."""
    app = HoldingApp()
    store = FakeStore()
    guard = McpGuard(
        app, config=ServeConfig(max_working=2), store=store,
        recorder=EventRecorder(store, Metrics()),
    )
    answers: list[int] = []
    async with anyio.create_task_group() as tasks:
        for _ in range(6):
            tasks.start_soon(_post, guard, answers)
        with anyio.fail_after(10):
            while app.inside < 2:
                await anyio.sleep(0.01)
        for _ in range(20):  # let the other four run as far as they can
            await anyio.sleep(0)
        assert (app.inside, app.most, answers) == (2, 2, [])
        assert guard._busy == 6  # all six count against max_requests while they wait
        app.release.set()
    assert answers == [200] * 6
    assert app.most == 2
    assert guard._busy == 0
