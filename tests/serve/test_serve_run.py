"""The runners in-process: the stdio loop over memory streams, the uvicorn server in a thread."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import types
from tests.serve.serve_helpers import FakeStore, free_port, stdio_client, wait_until

from tallinn.serve import Registry, ServeConfig, _run, http_server

pytestmark = pytest.mark.timeout(30)


async def test_stdio_loop_serves_and_reloads(registry: Registry, library_dir: Path) -> None:
    """The stdio runner serves a session, and its watcher turns an edit into list_changed."""
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and (
            message.method == "notifications/prompts/list_changed"
        ):
            heard.set()

    # On leaving, EOF: the server loop ends by itself (bounded by the test timeout).
    async with stdio_client(registry, FakeStore(), reload=True,
                            message_handler=on_message) as client:
        result = await client.get_prompt("explain-code", {})
        assert result.messages[0].content.text.startswith("Explain this code:")  # type: ignore[union-attr]
        # The server watches the library before it answers its first request.
        (library_dir / "commands/docs/later.md").write_text(
            "---\ndescription: Later\n---\nLater.\n", encoding="utf-8"
        )
        with anyio.fail_after(30):
            await heard.wait()


def test_http_server_runs_and_stops(registry: Registry) -> None:
    port = free_port()
    server = http_server(registry, FakeStore(), ServeConfig(port=port, reload=True))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200)
    assert httpx2.get(f"http://127.0.0.1:{port}/ready").json()["status"] == "ready"
    server.should_exit = True
    thread.join(timeout=15)
    assert not thread.is_alive()


def test_http_server_logs_requests_only_when_asked(registry: Registry) -> None:
    """uvicorn's access log follows the config: off by default."""
    assert http_server(registry, FakeStore(), ServeConfig()).config.access_log is False
    on = http_server(registry, FakeStore(), ServeConfig(access_log=True))
    assert on.config.access_log is True


def test_serve_http_freezes_the_heap_before_serving(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is alive when serving starts is frozen, so full collections do not walk it."""
    frozen: list[int] = []

    class Server:
        def run(self) -> None:
            frozen.append(gc.get_freeze_count())

    monkeypatch.setattr(_run, "http_server", lambda *args, **kwargs: Server())
    try:
        _run.serve_http(registry, FakeStore(), ServeConfig())
    finally:
        gc.unfreeze()
    assert frozen[0] > 0
