"""Fuzzing /mcp of a real `tallinn serve --http --production` process over HTTP.

Hostile bodies (malformed JSON, wrong types, huge strings, deep nesting, unknown methods,
invalid UTF-8, batches) must each get a JSON-RPC error, an answer, or a clean close: never a
5xx, a hang or a traceback; valid requests are served afterwards and the server's memory stays
flat. The default run is bounded (`TALLINN_SERVER_FUZZ_EXAMPLES`, 150 by default); a longer run is
documented in docs/testing.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import MCP_HEADERS

from tallinn.ops.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLES = int(os.environ.get("TALLINN_SERVER_FUZZ_EXAMPLES", "150"))
# Generous: the point is "flat", not a figure. The long run prints the real growth.
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
LEAKS = ("traceback", "pydantic", "site-packages", 'file "/')
METHODS = [
    "initialize",
    "ping",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "tools/list",
    "tools/call",
    "completion/complete",
    "subscriptions/listen",
    "notifications/initialized",
    "logging/setLevel",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)
methods = st.sampled_from(METHODS) | st.text(max_size=40)
ids = st.none() | st.integers() | st.text(max_size=20) | st.floats() | st.lists(st.integers())
params = st.none() | json_values | st.fixed_dictionaries(
    {"name": json_values | st.sampled_from(["code-review", "threat-model"])},
    optional={"arguments": json_values, "uri": json_values, "query": json_values},
)
messages = st.fixed_dictionaries(
    {"jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values, "method": methods},
    optional={"id": ids, "params": params},
)


@st.composite
def deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    return opener * depth + b"1" + closer * depth


@st.composite
def huge(draw: st.DrawFn) -> bytes:
    size = draw(st.sampled_from([10_000, 200_000, 900_000, 2_000_000]))
    method = draw(st.sampled_from(["prompts/get", "x" * 10]))
    message = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {"name": "a" * size}}
    return json.dumps(message).encode()


bodies = st.one_of(
    st.binary(max_size=300),  # malformed JSON and invalid UTF-8
    messages.map(lambda m: json.dumps(m).encode()),
    st.lists(messages, max_size=5).map(lambda b: json.dumps(b).encode()),  # batches
    messages.map(lambda m: json.dumps(m).encode()[:-3] + b"\xff\xfe\"}"),
    deep(),
    huge(),
    json_values.map(lambda v: json.dumps(v).encode()),
)


def check_answer(response: httpx2.Response) -> None:
    """A hostile request gets an answer below 500, and any JSON body is JSON-RPC or ours."""
    assert response.status_code < 500, response.text[:500]
    text = response.text.lower()
    for leak in LEAKS:
        assert leak not in text, response.text[:500]
    if response.status_code in (202, 204) or not response.content:
        return
    body = response.json()
    envelope = body[0] if isinstance(body, list) and body else body
    assert isinstance(envelope, dict), response.text[:500]
    assert envelope.get("jsonrpc") == "2.0" or "error" in envelope, response.text[:500]


def test_hostile_bodies_never_break_the_server(
    library_dir: Path, tmp_path: Path, serve_process: StartProcess
) -> None:
    """Every hostile body is answered below 500 without a traceback, within a bounded wait;
    afterwards valid requests are served and the server's RSS has stayed flat."""
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        token = store.create_token("fuzz")
    server = serve_process(
        library_dir, "--no-reload", "--production", "--rate-limit", "off", "--max-sessions", "100"
    )
    auth = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    process = psutil.Process(server.process.pid)
    client = httpx2.Client(timeout=httpx2.Timeout(30), headers=auth)
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "fuzz", "version": "1"},
        },
    }
    session = client.post(f"{server.url}/mcp", json=init).headers["mcp-session-id"]
    in_session = {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    modern = {"mcp-protocol-version": "2026-07-28"}
    rss: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large],
    )
    @given(body=bodies, where=st.sampled_from(["new", "session", "modern"]))
    def hit(body: bytes, where: str) -> None:
        headers: dict[str, Any] = {"new": {}, "session": in_session, "modern": modern}[where]
        try:
            response = client.post(f"{server.url}/mcp", content=body, headers=headers)
        except httpx2.RemoteProtocolError:
            return  # the server closed the connection: a clean close
        check_answer(response)
        if len(rss) < 1:
            rss.append(process.memory_info().rss)

    try:
        hit()
        rss.append(process.memory_info().rss)
        # Valid requests are served afterwards, in the old session and in a new one.
        ping = {"jsonrpc": "2.0", "id": 99, "method": "ping"}
        answer = client.post(f"{server.url}/mcp", json=ping, headers=in_session)
        assert answer.json() == {"jsonrpc": "2.0", "id": 99, "result": {}}
        fresh = client.post(f"{server.url}/mcp", json=init)
        assert fresh.status_code == 200
        assert fresh.json()["result"]["serverInfo"]["name"] == "tallinn"
        assert httpx2.get(f"{server.url}/health", timeout=10).json()["status"] == "ok"
    finally:
        client.close()
    growth = rss[-1] - rss[0]
    print(f"fuzz: {EXAMPLES} examples, server RSS {rss[0] >> 20} -> {rss[-1] >> 20} MiB")
    assert growth < RSS_GROWTH_LIMIT, f"server RSS grew by {growth >> 20} MiB"
    assert server.process.poll() is None, "the server exited"
