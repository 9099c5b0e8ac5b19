"""The HTTP app under a real uvicorn server (in a thread): routes, MCP over streamable HTTP,
production guards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from tests.serve.conftest import StartThread
from tests.serve.serve_helpers import (
    INIT,
    MCP_HEADERS,
    FakeStore,
    free_port,
    metric_value,
    wait_until,
)

from tallinn.serve import RateLimit, Registry, ServeConfig

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]



@asynccontextmanager
async def connect(
    url: str, *, mode: str = "legacy", token: str | None = None, **kwargs: Any
) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10)) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, mode=mode, **kwargs) as client:
            yield client


def production(**changes: Any) -> ServeConfig:
    fields: dict[str, Any] = {
        "port": free_port(),
        "reload": False,
        "production": True,
        "rate_limit": None,
    }
    fields.update(changes)
    return ServeConfig(**fields)


def test_health_reports_the_library(serve_thread: StartThread) -> None:
    """GET /health names the version, the library, its content hash and counts."""
    server = serve_thread()
    body = httpx2.get(f"{server.url}/health").json()
    assert body["status"] == "ok"
    assert body["version"]
    assert body["library"] == "fixture-prompts"
    assert len(body["content_hash"]) == 64
    assert body["commands"] == 4
    assert body["components"] == 2
    assert body["uptime_seconds"] >= 0
    assert body["loaded_at"].endswith("+00:00")


def test_ready_needs_the_store(serve_thread: StartThread, store: FakeStore) -> None:
    """GET /ready is 200 with a loaded library and a store that answers; 503 with reasons if not."""
    server = serve_thread()
    ready = httpx2.get(f"{server.url}/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    store.up = False
    down = httpx2.get(f"{server.url}/ready")
    assert down.status_code == 503
    assert down.json()["reasons"] == ["the state store does not answer"]


def test_metrics_exposition(serve_thread: StartThread) -> None:
    """GET /metrics is Prometheus text with the library gauges and zeroed security counters."""
    server = serve_thread()
    response = httpx2.get(f"{server.url}/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert metric_value(text, "tallinn_library_commands") == 4
    assert metric_value(text, "tallinn_library_components") == 2
    assert "tallinn_security_events_total" in text
    assert "tallinn_library_reload_failures_total" in text


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_prompts_over_streamable_http(serve_thread: StartThread, mode: str) -> None:
    """A client lists and gets prompts over HTTP; a bad request is a clean -32602."""
    server = serve_thread()
    async with connect(server.url, mode=mode) as client:
        names = [p.name for p in (await client.list_prompts()).prompts]
        assert "code-review" in names
        result = await client.get_prompt("code-review", {"path": "a.py"})
        assert "Review `a.py`" in result.messages[0].content.text  # type: ignore[union-attr]
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("code-review", {})
        assert caught.value.code == types.INVALID_PARAMS
        assert caught.value.message == "missing required argument 'path'"
    text = httpx2.get(f"{server.url}/metrics").text
    assert (
        metric_value(
            text,
            "tallinn_mcp_requests_total",
            {"method": "prompts/get", "prompt": "code-review", "outcome": "ok"},
        )
        == 1
    )


async def test_stateless_mode(serve_thread: StartThread) -> None:
    """--stateless serves every request on its own, with no session id."""
    server = serve_thread(ServeConfig(port=free_port(), reload=False, stateless=True))
    raw = httpx2.post(f"{server.url}/mcp", json=INIT, headers=MCP_HEADERS)
    assert raw.status_code == 200
    assert "mcp-session-id" not in raw.headers
    async with connect(server.url) as client:
        result = await client.get_prompt("threat-model", {"service": "billing"})
        assert "billing" in result.messages[0].content.text  # type: ignore[union-attr]


@pytest.mark.parametrize("stateless", [False, True])
def test_posts_are_answered_with_a_json_body(serve_thread: StartThread, stateless: bool) -> None:
    """A POST gets one JSON body, not an SSE stream, with a session or without."""
    server = serve_thread(ServeConfig(port=free_port(), reload=False, stateless=stateless))
    opened = httpx2.post(f"{server.url}/mcp", json=INIT, headers=MCP_HEADERS)
    assert opened.headers["content-type"] == "application/json"
    assert opened.json()["result"]["serverInfo"]["name"] == "tallinn"
    headers = {**MCP_HEADERS, "MCP-Protocol-Version": "2025-11-25"}
    if not stateless:
        headers["Mcp-Session-Id"] = opened.headers["mcp-session-id"]
    params = {"name": "threat-model", "arguments": {"service": "billing"}}
    request = {"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": params}
    got = httpx2.post(f"{server.url}/mcp", json=request, headers=headers)
    assert got.headers["content-type"] == "application/json"
    assert "billing" in got.json()["result"]["messages"][0]["content"]["text"]


async def test_stateful_sessions_hear_list_changed(
    serve_thread: StartThread, library_dir: Path
) -> None:
    """A stateful HTTP session gets list_changed on its GET stream after a reload."""
    server = serve_thread(ServeConfig(port=free_port(), reload=True))
    heard = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and (
            message.method == "notifications/prompts/list_changed"
        ):
            heard.set()

    async with connect(server.url, message_handler=on_message) as client:
        await client.list_prompts()
        # The client opens its standalone GET stream in the background, and nothing tells
        # when it is open: a notification sent before then is not delivered. So edit again,
        # with new text each time, until one is heard.
        command = library_dir / "commands/docs/fresh.md"
        with anyio.fail_after(30):
            for edit in range(1_000):
                command.write_text(
                    f"---\ndescription: Fresh\n---\nFresh {edit}.\n", encoding="utf-8"
                )
                with anyio.move_on_after(1):
                    await heard.wait()
                if heard.is_set():
                    break
        assert "fresh" in [p.name for p in (await client.list_prompts()).prompts]


def test_production_without_a_token_is_401(serve_thread: StartThread, store: FakeStore) -> None:
    """No bearer token: 401 naming the header to send, in WWW-Authenticate and the JSON body."""
    server = serve_thread(production())
    response = httpx2.post(f"{server.url}/mcp", json=INIT, headers=MCP_HEADERS)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer realm="tallinn", error="invalid_request", error_description="this server takes'
        ' a bearer token, not OAuth: send Authorization: Bearer <token>"'
    )
    assert response.json() == {
        "error": "unauthorized",
        "message": "a bearer token is required; send the header Authorization: Bearer <token>",
        "hint": 'claude mcp add --transport http NAME URL --header "Authorization: Bearer <token>"',
    }
    wait_until(lambda: store.kinds() == ["auth_failure"])
    # Probes and scrapers need no token.
    assert httpx2.get(f"{server.url}/health").status_code == 200
    assert httpx2.get(f"{server.url}/ready").status_code == 200
    assert httpx2.get(f"{server.url}/metrics").status_code == 200


def test_production_wrong_token_is_401_and_counted(
    serve_thread: StartThread, store: FakeStore
) -> None:
    server = serve_thread(production())
    headers = {**MCP_HEADERS, "Authorization": "Bearer not-a-token"}
    response = httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="tallinn"')
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    text = httpx2.get(f"{server.url}/metrics").text
    assert metric_value(text, "tallinn_auth_failures_total") == 1
    assert metric_value(text, "tallinn_security_events_total", {"kind": "auth_failure"}) == 1
    wait_until(lambda: store.events and store.events[0][:2] == ("auth_failure", "ip:127.0.0.1"))


async def test_production_good_token_works(serve_thread: StartThread) -> None:
    server = serve_thread(production())
    async with connect(server.url, token="good-token") as client:
        result = await client.get_prompt("code-review", {"path": "x"})
        assert result.messages
    async with connect(server.url, mode="auto", token="good-token") as client:
        assert (await client.list_tools()).tools


def test_a_token_verified_recently_is_answered_from_the_store_cache(
    serve_thread: StartThread, store: FakeStore
) -> None:
    """The store is asked (in a thread) once; after that its cache answers on the event loop."""
    asked: list[str] = []
    verify = store.verify_token

    def counting(token: str) -> str | None:
        asked.append(token)
        return verify(token)

    def cached(token: str) -> str | None:
        return "ci-bot" if token in asked else None

    store.verify_token = counting  # type: ignore[method-assign]
    store.cached_token = cached  # type: ignore[attr-defined]
    server = serve_thread(production(stateless=True))
    headers = {**MCP_HEADERS, "Authorization": "Bearer good-token"}
    for _ in range(3):
        assert httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers).status_code == 200
    wrong = {**MCP_HEADERS, "Authorization": "Bearer wrong-token"}
    assert httpx2.post(f"{server.url}/mcp", json=INIT, headers=wrong).status_code == 401
    assert asked == ["good-token", "wrong-token"]


def test_production_store_down_is_503(serve_thread: StartThread, store: FakeStore) -> None:
    """When tokens cannot be checked the server fails closed with 503, not 401."""
    server = serve_thread(production())
    store.up = False
    headers = {**MCP_HEADERS, "Authorization": "Bearer good-token"}
    response = httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"


def test_rate_limit_is_429_with_retry_after(serve_thread: StartThread, store: FakeStore) -> None:
    server = serve_thread(production(rate_limit=RateLimit(rate=0.5, burst=2)))
    headers = {**MCP_HEADERS, "Authorization": "Bearer good-token"}
    statuses = [
        httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers).status_code for _ in range(2)
    ]
    assert statuses == [200, 200]
    limited = httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    assert limited.json()["error"] == "rate_limited"
    text = httpx2.get(f"{server.url}/metrics").text
    assert metric_value(text, "tallinn_rate_limited_total") == 1
    wait_until(lambda: ("rate_limited", "token:ci-bot") in [e[:2] for e in store.events])


def test_failed_logins_are_rate_limited_too(serve_thread: StartThread) -> None:
    """Guessing tokens spends the caller's IP bucket, so brute force meets 429."""
    server = serve_thread(production(rate_limit=RateLimit(rate=0.5, burst=2)))
    headers = {**MCP_HEADERS, "Authorization": "Bearer guess"}
    statuses = [
        httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


def test_oversized_body_is_413(serve_thread: StartThread, store: FakeStore) -> None:
    server = serve_thread(production(max_body_bytes=1024))
    headers = {**MCP_HEADERS, "Authorization": "Bearer good-token"}
    body = b'{"jsonrpc": "2.0", "pad": "' + b"x" * 2048 + b'"}'
    response = httpx2.post(f"{server.url}/mcp", content=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    wait_until(lambda: "request_too_large" in store.kinds())

    def chunks() -> Any:
        yield b'{"jsonrpc": "2.0", "pad": "'
        yield b"x" * 2048
        yield b'"}'

    streamed = httpx2.post(f"{server.url}/mcp", content=chunks(), headers=headers)
    assert streamed.status_code == 413


def test_wrong_host_header_is_421(serve_thread: StartThread) -> None:
    """DNS-rebinding protection refuses a Host that is not allowed, and counts it."""
    server = serve_thread(production())
    headers = {**MCP_HEADERS, "Authorization": "Bearer good-token", "Host": "evil.example.com"}
    response = httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers)
    assert response.status_code == 421
    origin = {**MCP_HEADERS, "Authorization": "Bearer good-token", "Origin": "http://evil.example"}
    assert httpx2.post(f"{server.url}/mcp", json=INIT, headers=origin).status_code == 403
    text = httpx2.get(f"{server.url}/metrics").text
    assert metric_value(text, "tallinn_security_events_total", {"kind": "invalid_host"}) == 1
    assert metric_value(text, "tallinn_security_events_total", {"kind": "invalid_origin"}) == 1


def test_allowed_host_for_a_proxy(serve_thread: StartThread) -> None:
    server = serve_thread(production(allowed_hosts=("prompts.example.com",)))
    headers = {**MCP_HEADERS, "Authorization": "Bearer good-token", "Host": "prompts.example.com"}
    assert httpx2.post(f"{server.url}/mcp", json=INIT, headers=headers).status_code == 200


def test_errors_never_leak_internals(serve_thread: StartThread) -> None:
    """Unknown routes and methods answer briefly, without paths or tracebacks."""
    server = serve_thread()
    for response in (
        httpx2.get(f"{server.url}/nope"),
        httpx2.post(f"{server.url}/health"),
        httpx2.post(f"{server.url}/mcp", content=b"{not json", headers=MCP_HEADERS),
    ):
        assert response.status_code >= 400
        assert "Traceback" not in response.text
        assert "/work" not in response.text
        assert "site-packages" not in response.text


def test_a_partly_broken_library_is_served_and_reported(
    serve_thread: StartThread, library_dir: Path
) -> None:
    """At start, files with errors are left out; /ready lists them and stays 200."""
    (library_dir / "commands/docs/broken.md").write_text("---\narguments: [\n---\nx\n")
    registry = Registry(library_dir)
    registry.load()
    server = serve_thread(reg=registry)
    body = httpx2.get(f"{server.url}/ready").json()
    assert body["status"] == "ready"
    assert any("commands/docs/broken.md" in p for p in body["library_errors"])
    assert httpx2.get(f"{server.url}/health").json()["commands"] == 4


def test_a_store_whose_ping_raises_is_not_ready(
    serve_thread: StartThread, store: FakeStore
) -> None:
    def boom() -> bool:
        raise OSError("socket closed")

    store.ping = boom  # type: ignore[method-assign]
    server = serve_thread()
    assert httpx2.get(f"{server.url}/ready").status_code == 503
    # A scrape checks readiness itself, so an alert on the gauge needs no probe beside it.
    assert metric_value(httpx2.get(f"{server.url}/metrics").text, "tallinn_ready") == 0
    store.ping = lambda: True  # type: ignore[method-assign]
    assert metric_value(httpx2.get(f"{server.url}/metrics").text, "tallinn_ready") == 1


def test_malformed_params_are_invalid_params(serve_thread: StartThread, registry: Registry) -> None:
    """A request whose params do not fit the method is -32602 and counted as such."""
    server = serve_thread(ServeConfig(port=free_port(), reload=False, stateless=True))
    request = {"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": {"name": 3}}
    response = httpx2.post(f"{server.url}/mcp", json=request, headers=MCP_HEADERS)
    assert '"code":-32602' in response.text.replace(" ", "")
    text = httpx2.get(f"{server.url}/metrics").text
    assert (
        metric_value(
            text,
            "tallinn_mcp_requests_total",
            {"method": "prompts/get", "outcome": "invalid_params"},
        )
        == 1
    )


def test_a_session_belongs_to_its_token(serve_thread: StartThread, store: FakeStore) -> None:
    """A session id presented with another valid token is answered as if it did not exist."""
    store.tokens["other-token"] = "someone-else"
    server = serve_thread(production())
    opened = httpx2.post(
        f"{server.url}/mcp",
        json=INIT,
        headers={**MCP_HEADERS, "Authorization": "Bearer good-token"},
    )
    session = opened.headers["mcp-session-id"]
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    same = {**MCP_HEADERS, "Authorization": "Bearer good-token", "Mcp-Session-Id": session}
    other = {**MCP_HEADERS, "Authorization": "Bearer other-token", "Mcp-Session-Id": session}
    assert httpx2.post(f"{server.url}/mcp", json=ping, headers=other).status_code == 404
    assert httpx2.post(f"{server.url}/mcp", json=ping, headers=same).status_code == 200
