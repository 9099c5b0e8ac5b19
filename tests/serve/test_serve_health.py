"""`/health` is answered while other requests are in progress, and before any of the MCP stack."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import httpx2
import pytest
from tests.serve.serve_helpers import (
    INIT,
    MCP_HEADERS,
    FakeStore,
    ThreadServer,
    free_port,
    wait_until,
)

from tallinn.serve import Registry, ServeConfig, http_server

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
