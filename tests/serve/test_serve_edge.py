"""The network edge of `tallinn serve --http`, under the real uvicorn server it runs with:
header and body deadlines, the connection cap, the session cap, in-flight duplicate ids."""

from __future__ import annotations

import json
import resource
import socket
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from tests.serve.conftest import StartEdge
from tests.serve.serve_helpers import INIT, MCP_HEADERS, wait_until
from typer.testing import CliRunner

import tallinn.serve as serving
from tallinn.cli import app as cli_app
from tallinn.serve import ConfigError, Registry, ServeConfig, resolve
from tallinn.serve._run import fit_connections, raise_fd_limit

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]

_OPENED: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_raw_sockets() -> Iterator[None]:
    """Every socket `raw` opened is closed after its test (ResourceWarnings are errors)."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def raw(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    _OPENED.append(sock)
    if data:
        sock.sendall(data)
    return sock


def closed_by_server(sock: socket.socket, timeout: float = 20.0) -> bytes:
    """Read until the server closes the connection (fail after `timeout`); return what came."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def test_slow_headers_are_cut_at_the_header_deadline(edge: StartEdge) -> None:
    """A connection that has not finished its headers within header_timeout is closed."""
    server = edge(header_timeout=0.5)
    half_open = raw(server.port)
    partial = raw(server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
    assert closed_by_server(half_open) == b""
    assert closed_by_server(partial) == b""
    assert server.metric("tallinn_connections_dropped_total", {"reason": "header_timeout"}) >= 2
    assert httpx2.get(f"{server.url}/health").status_code == 200


def test_an_idle_keep_alive_connection_waits_again_for_headers(edge: StartEdge) -> None:
    """After an answer, a kept-alive connection gets a new header deadline, and is cut by it."""
    server = edge(header_timeout=0.5, keep_alive_timeout=60)
    sock = raw(server.port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(10)
    first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /health HTTP/1.1\r\n")
    assert b"HTTP/1.1" not in closed_by_server(sock)


def test_a_slow_body_gets_408_and_a_closed_connection(edge: StartEdge) -> None:
    """A POST body not sent whole within body_timeout is answered 408, then the connection ends."""
    server = edge(body_timeout=0.5)
    head = (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\nContent-Length: 400\r\n\r\n"
    )
    sock = raw(server.port, head.encode() + b'{"jsonrpc": "2.0", ')
    answer = closed_by_server(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b'"request_timeout"' in answer
    assert server.metric("tallinn_connections_dropped_total", {"reason": "body_timeout"}) == 1


def test_a_chunked_body_over_the_limit_is_refused(edge: StartEdge) -> None:
    """A body without Content-Length is counted as it streams and refused past max_body_bytes."""
    server = edge(max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 500

    response = httpx2.post(f"{server.url}/mcp", content=chunks(), headers=MCP_HEADERS)
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"


def test_health_answers_while_half_open_and_slow_connections_fill_the_server(
    edge: StartEdge,
) -> None:
    """Past max_connections, half-open and slow connections, with a valid token or none, are
    closed oldest first, so /health is still answered while hundreds of them are held open."""
    server = edge(
        max_connections=50, header_timeout=300, body_timeout=300, production=True, rate_limit=None
    )
    slow_body = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json\r\nAuthorization: Bearer good-token\r\n"
        b"Content-Length: 100000\r\n\r\n{"
    )
    openings = [
        b"",
        b"GET /health HTTP/1.1\r\nHost: x",
        b"POST /mcp HTTP/1.1\r\nHost: x",
        slow_body,
    ]
    held = [raw(server.port, openings[index % 4]) for index in range(300)]
    try:
        for _ in range(5):
            response = httpx2.get(f"{server.url}/health", timeout=30)
            assert response.status_code == 200
            assert response.json()["status"] == "ok"
        dropped = server.metric("tallinn_connections_dropped_total", {"reason": "over_capacity"})
        assert dropped >= 250
    finally:
        for sock in held:
            sock.close()


def _initialize(url: str) -> httpx2.Response:
    return httpx2.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS, timeout=10)


def test_sessions_past_the_cap_get_503_with_a_jsonrpc_error(edge: StartEdge) -> None:
    """With max_sessions open, a new session is refused 503 with a JSON-RPC error; one ended
    by its client makes room again."""
    server = edge(max_sessions=2)
    sessions = [_initialize(server.url).headers["mcp-session-id"] for _ in range(2)]
    refused = _initialize(server.url)
    assert refused.status_code == 503
    body = refused.json()
    assert body["jsonrpc"] == "2.0"
    assert body["error"]["message"] == "Too many open sessions"
    ended = httpx2.delete(
        f"{server.url}/mcp",
        headers={
            **MCP_HEADERS,
            "mcp-session-id": sessions[0],
            "mcp-protocol-version": "2025-11-25",
        },
    )
    assert ended.status_code == 200
    assert _initialize(server.url).status_code == 200


def test_idle_sessions_end_after_session_idle_timeout(edge: StartEdge) -> None:
    """A session unused for session_idle_timeout is closed: its id then answers 404."""
    server = edge(session_idle_timeout=1.0)
    session = _initialize(server.url).headers["mcp-session-id"]
    headers = {**MCP_HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    assert httpx2.post(f"{server.url}/mcp", json=ping, headers=headers).status_code == 200
    assert server.metric("tallinn_mcp_sessions") == 1
    wait_until(lambda: server.metric("tallinn_mcp_sessions") == 0, timeout=30, step=0.2)
    assert httpx2.post(f"{server.url}/mcp", json=ping, headers=headers).status_code == 404


async def test_one_id_reused_concurrently_is_answered_never_a_500(edge: StartEdge) -> None:
    """Many requests with one id at once on one session: each gets its answer or a 409
    JSON-RPC error naming the reuse; none is left unanswered and none is a 500."""
    server = edge()
    session = _initialize(server.url).headers["mcp-session-id"]
    headers = {**MCP_HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    request = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "prompts/get",
        "params": {"name": "code-review", "arguments": {"path": "x" * 16000}},  # < the limit
    }
    statuses: list[int] = []
    bodies: list[dict[str, Any]] = []
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30)) as client:

        async def send() -> None:
            response = await client.post(f"{server.url}/mcp", json=request, headers=headers)
            statuses.append(response.status_code)
            bodies.append(response.json())

        for _ in range(5):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(send)
    assert len(statuses) == 100
    assert set(statuses) <= {200, 409}, statuses
    for status, body in zip(statuses, bodies, strict=True):
        assert body["id"] == 7
        if status == 409:
            assert body["error"] == {
                "code": -32600,
                "message": "a request with this id is already being answered on this session",
            }
        else:
            assert "messages" in body["result"]
    # The session still serves afterwards.
    ping = {"jsonrpc": "2.0", "id": 8, "method": "ping"}
    after = httpx2.post(f"{server.url}/mcp", json=ping, headers=headers)
    assert after.json() == {"jsonrpc": "2.0", "id": 8, "result": {}}


def test_edge_bounds_come_from_options_over_the_table_over_defaults() -> None:
    """Each bound is read from [serve], overridden by its option, else its documented default."""
    table = {"max_sessions": 50, "header_timeout": 2.5, "backlog": 64}
    config = resolve(table, edge={"max_sessions": 200, "max_connections": None})
    assert config.max_sessions == 200
    assert config.header_timeout == 2.5
    assert config.backlog == 64
    assert config.max_connections == 2000
    assert config.body_timeout == 30
    assert config.keep_alive_timeout == 5
    assert config.session_idle_timeout == 1800
    assert (config.max_requests, config.max_streams) == (500, 1000)


@pytest.mark.parametrize(
    ("table", "edge", "message"),
    [
        ({"max_sessions": "many"}, {}, "[serve] max_sessions must be a whole number, got 'many'"),
        ({"max_sessions": 2.5}, {}, "[serve] max_sessions must be a whole number, got 2.5"),
        ({"body_timeout": True}, {}, "[serve] body_timeout must be a number of seconds, got True"),
        ({}, {"max_connections": 0}, "--max-connections must be at least 1, got 0"),
        ({"header_timeout": float("inf")}, {}, "[serve] header_timeout must be at least 0.1"),
    ],
)
def test_a_wrong_edge_bound_is_a_config_error(
    table: dict[str, Any], edge: dict[str, Any], message: str
) -> None:
    """A bound of the wrong type or below its smallest value names its key and the value."""
    with pytest.raises(ConfigError) as caught:
        resolve(table, edge=edge)
    assert str(caught.value).startswith(message)


def test_serve_options_reach_the_edge_bounds(
    monkeypatch: pytest.MonkeyPatch, library_dir: Any, tmp_path: Any
) -> None:
    """--max-connections, --max-sessions and --session-idle-timeout reach the server config."""
    seen: dict[str, ServeConfig] = {}

    def capture(registry: Registry, store: Any, config: ServeConfig, **_: Any) -> None:
        seen["config"] = config

    monkeypatch.setattr(serving, "serve_http", capture)
    monkeypatch.setenv("TALLINN_STORE_URL", f"sqlite:///{tmp_path / 's.db'}")
    options = ["--max-connections", "300", "--max-sessions", "20", "--session-idle-timeout", "60"]
    result = CliRunner().invoke(
        cli_app, ["serve", "--library", str(library_dir), "--http", *options]
    )
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.max_connections, config.max_sessions, config.session_idle_timeout) == (
        300,
        20,
        60,
    )


def test_the_connection_cap_stays_under_the_file_limit() -> None:
    """A cap above what the process may open is lowered to fit; one that fits is kept."""
    assert fit_connections(ServeConfig(max_connections=5000), 1024).max_connections == 960
    assert fit_connections(ServeConfig(max_connections=500), 1024).max_connections == 500
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_fd_limit(soft) == soft


def test_deep_nesting_on_a_session_is_a_parse_error(edge: StartEdge) -> None:
    """A body nested too deep for Python's JSON parser is answered 400, not a 500."""
    server = edge()
    session = _initialize(server.url).headers["mcp-session-id"]
    headers = {**MCP_HEADERS, "mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    body = b"[" * 100_000 + b"]" * 100_000
    response = httpx2.post(f"{server.url}/mcp", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == -32700


def test_past_max_requests_a_request_is_shed_with_503(edge: StartEdge) -> None:
    """With max_requests requests waiting for their answer, another one gets 503, Retry-After
    and a JSON-RPC error at once; the rest are answered, and so is /health."""
    server = edge(max_requests=1, stateless=True)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    # Connections first, then every request at once, so the server reads them together.
    socks = [raw(server.port) for _ in range(50)]
    for sock in socks:
        sock.sendall(request)
    answers = [closed_by_server(sock) for sock in socks]
    statuses = [int(answer.split(b" ", 2)[1]) for answer in answers]
    assert set(statuses) == {200, 503}, statuses
    refused = next(answer for answer in answers if answer.startswith(b"HTTP/1.1 503"))
    assert b"retry-after: 1" in refused.lower()
    assert b'"the server is busy; retry shortly"' in refused
    assert server.metric("tallinn_mcp_shed_total") == statuses.count(503)
    assert httpx2.get(f"{server.url}/health").status_code == 200


def test_slow_bodies_do_not_count_towards_max_requests(edge: StartEdge) -> None:
    """A request still sending its body is not counted as work: others are answered."""
    server = edge(max_requests=1, body_timeout=60)
    head = (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Accept: application/json\r\nContent-Length: 400\r\n\r\n"
    )
    slow = [raw(server.port, head.encode() + b"{") for _ in range(5)]
    try:
        for _ in range(3):
            assert _initialize(server.url).status_code == 200
    finally:
        for sock in slow:
            sock.close()


def test_streams_past_max_streams_get_503(edge: StartEdge) -> None:
    """With max_streams notification streams open, another one is refused 503 with a JSON-RPC
    error, so streams can never hold every connection; closing one makes room."""
    server = edge(max_streams=1)

    def stream_headers() -> dict[str, str]:
        session = _initialize(server.url).headers["mcp-session-id"]
        return {
            "Accept": "text/event-stream",
            "mcp-session-id": session,
            "mcp-protocol-version": "2025-11-25",
        }

    first, second = stream_headers(), stream_headers()
    with httpx2.Client(timeout=10) as client:
        with client.stream("GET", f"{server.url}/mcp", headers=first) as opened:
            assert opened.status_code == 200
            wait_until(lambda: server.metric("tallinn_mcp_streams") == 1)
            refused = client.get(f"{server.url}/mcp", headers=second)
            assert refused.status_code == 503
            assert refused.json()["error"]["message"] == "too many open streams; retry later"
        wait_until(lambda: server.metric("tallinn_mcp_streams") == 0)
        with client.stream("GET", f"{server.url}/mcp", headers=second) as reopened:
            assert reopened.status_code == 200


async def test_subscription_streams_count_towards_max_streams(edge: StartEdge) -> None:
    """A 2026-era `subscriptions/listen` stream is counted while it is open, and past
    max_streams another listen is refused with 503."""
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    server = edge(max_streams=1)
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(10)) as http:
        transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
        async with Client(transport) as client, client.listen(prompts_list_changed=True):
            with anyio.fail_after(10):
                while await anyio.to_thread.run_sync(server.metric, "tallinn_mcp_streams") != 1:
                    await anyio.sleep(0.05)
            listen = {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "subscriptions/listen",
                "params": {"prompts_list_changed": True},
            }
            headers = {**MCP_HEADERS, "mcp-protocol-version": "2026-07-28"}
            refused = await http.post(f"{server.url}/mcp", json=listen, headers=headers)
            assert refused.status_code == 503
            assert refused.json()["error"]["message"] == "too many open streams; retry later"
