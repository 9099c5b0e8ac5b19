"""What errors tell: fixed error strings in production, detail in development, counts and codes
in /ready, a 401 that names the header, OAuth discovery answered, and the start-up line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.serve.conftest import StartProcess, StartThread
from tests.serve.serve_helpers import MCP_HEADERS, free_port

from tallinn.serve import Registry, ServeConfig, UnavailableStore, store_label
from tallinn.serve._http import quiet_errors
from tallinn.serve._run import safe_store_url, startup_line

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

TOKEN = {"Authorization": "Bearer good-token"}
LEAKS = (
    "pydantic",
    "validation error",
    "input_value",
    "traceback",
    "site-packages",
    "jsonrpcrequest",
)
HOSTILE = [
    b"{not json",
    b'[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]',
    b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
    b'{"jsonrpc": "1.0", "id": 1, "method": "ping"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "\xff\xfe"}',
]


def production(**changes: Any) -> ServeConfig:
    fields: dict[str, Any] = {"port": free_port(), "reload": False, "production": True}
    fields.update(changes)
    return ServeConfig(**fields)


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_production_errors_are_fixed_strings(serve_thread: StartThread, body: bytes) -> None:
    """In production a malformed request is a JSON-RPC error whose message is one short fixed
    string per code, with no `data`, no pydantic dump and no echo of the input."""
    server = serve_thread(production(stateless=True))
    response = httpx2.post(f"{server.url}/mcp", content=body, headers={**MCP_HEADERS, **TOKEN})
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    assert error["message"] in {"parse error", "invalid request", "invalid params"}
    assert int(response.headers["content-length"]) == len(response.content)
    for leak in LEAKS:
        assert leak.lower() not in response.text.lower()


def test_production_drops_echoed_data_but_keeps_the_servers_own_messages(
    serve_thread: StartThread,
) -> None:
    """An unknown method loses the `data` that echoed it; the server's own short -32602
    messages stay, since they say what to fix."""
    server = serve_thread(production(stateless=True))
    headers = {**MCP_HEADERS, **TOKEN, "mcp-protocol-version": "2025-11-25"}
    unknown = {"jsonrpc": "2.0", "id": 3, "method": "x" * 5000, "params": {}}
    answer = httpx2.post(f"{server.url}/mcp", json=unknown, headers=headers).json()
    assert answer == {
        "jsonrpc": "2.0",
        "id": 3,
        "error": {"code": -32601, "message": "Method not found"},
    }
    missing = {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "prompts/get",
        "params": {"name": "code-review", "arguments": {}},
    }
    answer = httpx2.post(f"{server.url}/mcp", json=missing, headers=headers).json()
    assert answer["error"]["message"] == "missing required argument 'path'"


def test_development_errors_keep_their_detail(serve_thread: StartThread) -> None:
    """Outside production the SDK's own detailed message is passed on."""
    server = serve_thread(ServeConfig(port=free_port(), reload=False, stateless=True))
    response = httpx2.post(f"{server.url}/mcp", content=HOSTILE[1], headers=MCP_HEADERS)
    assert response.status_code == 400
    assert "validation error" in response.json()["error"]["message"].lower()


def test_quiet_errors_leaves_results_and_non_json_alone() -> None:
    """Only JSON-RPC errors are rewritten: a result or a body that is not JSON is unchanged."""
    assert quiet_errors(b'{"jsonrpc": "2.0", "id": 1, "result": {}}', 200) is None
    assert quiet_errors(b"not json", 400) is None
    batch = (
        b'[{"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "boom", "data": 1}}]'
    )
    assert quiet_errors(batch, 200) == (
        b'[{"jsonrpc": "2.0", "id": 1, "error": {"code": -32000, "message": "boom"}}]'
    )
    assert b'"message": "error"' in (quiet_errors(batch, 500) or b"")


def test_production_ready_gives_counts_and_codes(
    serve_thread: StartThread, library_dir: Path
) -> None:
    """In production /ready says how many problems and which codes, never their text."""
    (library_dir / "commands/docs/broken.md").write_text("---\narguments: [\n---\nx\n")
    registry = Registry(library_dir)
    registry.load()
    registry.reload_error = ("commands/a.md:3:1: V101 'secret-value' is not allowed",)
    server = serve_thread(production(), reg=registry)
    body = httpx2.get(f"{server.url}/ready").json()
    assert body["reload_error"] == {"count": 1, "codes": ["V101"]}
    assert body["library_errors"]["count"] == 1
    assert len(body["library_errors"]["codes"]) == 1
    assert "broken.md" not in str(body)
    assert "secret-value" not in str(body)


OAUTH_PROBES = [
    ("GET", "/.well-known/oauth-protected-resource"),
    ("GET", "/.well-known/oauth-protected-resource/mcp"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("POST", "/register"),
]


@pytest.mark.parametrize(("method", "path"), OAUTH_PROBES)
def test_oauth_discovery_is_answered_with_what_to_do(
    serve_thread: StartThread, method: str, path: str
) -> None:
    """Each URL an MCP client probes for OAuth answers a JSON error naming the bearer header."""
    server = serve_thread(production())
    response = httpx2.request(method, f"{server.url}{path}", json={})
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "oauth_not_supported"
    assert "--header 'Authorization: Bearer <token>'" in body["error_description"]


def test_a_wrong_token_is_named_as_such(serve_thread: StartThread) -> None:
    """A token that is not valid gets `invalid_token` and a body saying so."""
    server = serve_thread(production())
    headers = {**MCP_HEADERS, "Authorization": "Bearer nope"}
    response = httpx2.post(f"{server.url}/mcp", json={}, headers=headers)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["message"].startswith("this bearer token is not valid")


def test_store_urls_never_show_a_password(tmp_path: Path) -> None:
    """The start-up line's store is shown with its password hidden."""
    assert safe_store_url("postgresql://app:s3cret@db:5432/prompts") == (
        "postgresql://app:***@db:5432/prompts"
    )
    assert safe_store_url("sqlite:////x/state.db") == "sqlite:////x/state.db"
    assert safe_store_url("postgresql://[::1") == "<invalid URL>"
    store = UnavailableStore("down")
    assert store_label(store, "postgresql://a:b@h/d", tmp_path) == "unavailable"
    assert store_label(object(), "postgresql://a:b@h/d", tmp_path) == "postgresql://a:***@h/d"  # type: ignore[arg-type]
    assert store_label(object(), None, tmp_path) == f"sqlite:///{tmp_path}/.tallinn/state.db"  # type: ignore[arg-type]


def test_startup_line_counts_prompts(registry: Registry) -> None:
    """The line names the version, the prompt count, where, the mode and the store."""
    line = startup_line(registry, production=False, store="sqlite:///s.db", url=None)
    assert line.endswith("serving 4 prompts over stdio (development, store: sqlite:///s.db)")


def test_http_server_prints_one_startup_line(
    serve_process: StartProcess, library_dir: Path, tmp_path: Path
) -> None:
    """`tallinn serve --http` says on stderr, once, what it serves, at which URL, in which mode
    and with which store; uvicorn's and the SDK's start-up chatter is gone."""
    process = serve_process(library_dir, "--no-reload")
    stderr = process.stop()
    lines = [line for line in stderr.splitlines() if "serving" in line]
    assert len(lines) == 1, stderr
    assert f"serving 4 prompts at {process.url}/mcp (development, store: sqlite:///" in lines[0]
    assert "state.db)" in lines[0]
    for chatter in ("Uvicorn running", "Application startup", "session manager started"):
        assert chatter not in stderr


def test_stdio_server_prints_the_startup_line_on_stderr(library_dir: Path, tmp_path: Path) -> None:
    """Over stdio the line goes to stderr without a URL, and stdout stays empty."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "tallinn", "serve", "--library", str(library_dir), "--no-reload"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env={"TALLINN_STORE_URL": url, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert done.stdout == ""
    assert f"serving 4 prompts over stdio (development, store: {url})" in done.stderr


def test_smoke_reads_the_production_ready_counts(
    serve_thread: StartThread, registry: Registry
) -> None:
    """`tallinn smoke` reports a refused reload's problem count from production's /ready."""
    import anyio

    from tallinn.serve import run_smoke

    registry.reload_error = ("a.md:1:1: V101 x", "b.md:1:1: V102 y", "c.md:1:1: V101 z")
    server = serve_thread(production(rate_limit=None), reg=registry)
    checks = anyio.run(lambda: run_smoke(server.url, token="good-token", timeout=10))
    ready = next(check for check in checks if check.name.endswith("/ready"))
    assert ready.detail == "ready, last reload refused (3 problems)"
