"""End to end: `tallinn serve` as a real process, over stdio and over HTTP with the real store."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import metric_value, wait_until

from tallinn.ops.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


async def test_stdio_session(library_dir: Path, tmp_path: Path) -> None:
    """`python -m tallinn serve` speaks MCP on stdio: initialize, prompts/list, prompts/get."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tallinn", "serve", "--library", str(library_dir), "--no-reload"],
        env={**os.environ, "TALLINN_STORE_URL": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    async with Client(params, mode="legacy", read_timeout_seconds=30) as client:
        assert client.server_info is not None
        assert client.server_info.name == "tallinn"
        caps = client.server_capabilities
        assert caps.prompts is not None
        assert caps.prompts.list_changed
        names = [p.name for p in (await client.list_prompts()).prompts]
        assert names == ["code-review", "explain-code", "threat-model", "write-tests"]
        result = await client.get_prompt("code-review", {"path": "main.py", "focus": "readability"})
        assert "Review `main.py`, focusing on readability." in result.messages[0].content.text  # type: ignore[union-attr]
        with pytest.raises(MCPError) as caught:
            await client.get_prompt("code-review", {"path": "x", "focus": "speed"})
        assert caught.value.code == types.INVALID_PARAMS


async def test_stdio_session_hears_list_changed(library_dir: Path, tmp_path: Path) -> None:
    """With reload on, an edit reaches a stdio client as notifications/prompts/list_changed."""
    heard = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ServerNotification) and (
            message.method == "notifications/prompts/list_changed"
        ):
            heard.set()

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tallinn", "serve", "--library", str(library_dir)],
        env={**os.environ, "TALLINN_STORE_URL": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    async with Client(params, mode="legacy", message_handler=on_message) as client:
        await client.list_prompts()  # the server watches the library before it answers
        (library_dir / "commands/docs/added.md").write_text(
            "---\ndescription: Added\n---\nAdded.\n", encoding="utf-8"
        )
        with anyio.fail_after(30):
            await heard.wait()
        assert "added" in [p.name for p in (await client.list_prompts()).prompts]


async def test_http_production_with_real_tokens(
    library_dir: Path, tmp_path: Path, serve_process: StartProcess
) -> None:
    """TALLINN_ENV=production: the real store's tokens open /mcp, others get 401 and count."""
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        token = store.create_token("e2e")
    server = serve_process(library_dir, "--no-reload", env={"TALLINN_ENV": "production"})
    url = server.url

    assert httpx2.post(f"{url}/mcp", json={}).status_code == 401
    bad = {"Authorization": "Bearer tln_0123456789abcdef_wrongwrongwrongwrong"}
    assert httpx2.post(f"{url}/mcp", json={}, headers=bad).status_code == 401
    text = httpx2.get(f"{url}/metrics").text
    assert metric_value(text, "tallinn_auth_failures_total") == 2

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(10)) as http:
        transport = streamable_http_client(f"{url}/mcp", http_client=http)
        async with Client(transport, mode="legacy") as client:
            result = await client.get_prompt("threat-model", {"service": "payments"})
            assert "payments" in result.messages[0].content.text  # type: ignore[union-attr]
    ready = httpx2.get(f"{url}/ready").json()
    assert ready["store"] is True

    def stored() -> bool:
        with open_store(f"sqlite:///{tmp_path / 'state.db'}") as check:
            return len(check.events(kind="auth_failure")) >= 1

    wait_until(stored, timeout=10)
    log = server.stop()
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines
    assert all(line.startswith("{") for line in lines), "production logs are JSON lines"
