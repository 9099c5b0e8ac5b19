"""`tallinn smoke` against servers that fail in the usual ways: one clear line for each.

Every server here is real: Tallinn's own app under uvicorn, a web server that is not MCP, a
socket that accepts connections and never answers, a port nobody listens on.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_files
from tests.serve.serve_helpers import FIXTURE_LIBRARY, FakeStore, ThreadServer, free_port
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.serve import Registry, ServeConfig, build_app

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


@pytest.fixture
def production(tmp_path: Path) -> Iterator[ThreadServer]:
    """Tallinn's app in production mode (bearer tokens), on a loopback port."""
    registry = Registry(write_files(tmp_path / "library", FIXTURE_LIBRARY))
    registry.load()
    port = free_port()
    config = ServeConfig(port=port, reload=False, production=True)
    server = ThreadServer(build_app(registry, FakeStore({"good-token": "ci"}), config), port)
    yield server.start()
    server.stop()


async def _html_everywhere(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A web server that is not an MCP server: every path answers a page of HTML."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"<html><body>hello</body></html>"})


@pytest.fixture
def web_page() -> Iterator[ThreadServer]:
    server = ThreadServer(_html_everywhere, free_port())
    yield server.start()
    server.stop()


@pytest.fixture
def silent() -> Iterator[str]:
    """A port whose connections are accepted by the kernel and never answered."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def smoke(*args: str) -> tuple[int, dict[str, str], str]:
    """Run `tallinn smoke ... --json`: (exit code, detail of each check by name, stderr)."""
    result = runner.invoke(app, ["smoke", *args, "--json"], env={"TALLINN_TOKEN": ""})
    checks = {c["name"]: c["detail"] for c in json.loads(result.stdout)["checks"]}
    return result.exit_code, checks, result.stderr


def test_a_server_that_wants_a_token_says_so(production: ThreadServer) -> None:
    """Without a token: `401: this server needs a token; pass --token`, exit 1."""
    code, checks, _ = smoke(production.url)
    assert code == 1
    assert checks["MCP session"] == ("401: this server needs a token; pass --token "
                                     "(or set TALLINN_TOKEN)")
    assert "TaskGroup" not in json.dumps(checks)


def test_a_wrong_token_is_told_apart_from_none(production: ThreadServer) -> None:
    """With a token the server refuses, the line says to check the token."""
    code, checks, _ = smoke(production.url, "--token", "not-the-token")
    assert code == 1
    assert checks["MCP session"] == "401: the server does not accept this token; check --token"


def test_the_table_shows_the_401_line_whole(production: ThreadServer) -> None:
    """The table for people carries the same line, unbroken."""
    result = runner.invoke(app, ["smoke", production.url], env={"TALLINN_TOKEN": ""})
    assert result.exit_code == 1
    assert "401: this server needs a token; pass --token (or set TALLINN_TOKEN)" in result.stderr


def test_a_closed_port_is_connection_refused() -> None:
    """Nobody listening: `connection refused at <url>` for every check, exit 1."""
    url = f"http://127.0.0.1:{free_port()}"
    code, checks, _ = smoke(url, "--timeout", "5")
    assert code == 1
    assert checks == {
        "GET /health": f"connection refused at {url}/health; is the server running on that port?",
        "GET /ready": f"connection refused at {url}/ready; is the server running on that port?",
        "MCP session": f"connection refused at {url}/mcp; is the server running on that port?",
    }


def test_a_server_that_never_answers_is_a_timeout(silent: str) -> None:
    """Accepted but unanswered: `no answer from <url> within N s`, exit 1."""
    code, checks, _ = smoke(silent, "--timeout", "0.5")
    assert code == 1
    assert checks["GET /health"] == (f"no answer from {silent}/health within 0.5 s; check the "
                                     "URL or raise --timeout")
    assert checks["MCP session"].startswith(f"no answer from {silent}/mcp within")


def test_an_unknown_host_is_a_dns_failure() -> None:
    """A host name that does not resolve (`.invalid` never does) says so, exit 1."""
    code, checks, _ = smoke("http://no-such-host.invalid:8000", "--timeout", "5")
    assert code == 1
    expected = "cannot find host 'no-such-host.invalid' (DNS lookup failed); check the URL"
    assert set(checks.values()) == {expected}


def test_a_web_server_that_is_not_mcp_says_what_it_answered(web_page: ThreadServer) -> None:
    """A server answering HTML: /health is not Tallinn's, /mcp is not an MCP endpoint."""
    code, checks, _ = smoke(web_page.url)
    assert code == 1
    assert checks["GET /health"] == (f"{web_page.url}/health answered text/html, not Tallinn's "
                                     "JSON; is this a Tallinn server?")
    assert checks["MCP session"] == (f"{web_page.url}/mcp is not an MCP endpoint: it answered "
                                     "text/html")


def test_a_url_without_a_scheme_says_how_to_write_it() -> None:
    """`localhost:8000` is not a URL httpx can use: the line says to write http://..."""
    code, checks, _ = smoke("localhost:8000")
    assert code == 1
    assert checks["GET /health"] == ("localhost:8000/health is not an http:// or https:// URL; "
                                     "write it as http://localhost:8000/health")
