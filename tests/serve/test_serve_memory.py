"""What a production HTTP server serving a folder loads: no SQLAlchemy to check tokens, answer
/ready and record refused and failed requests; the full store only once something else needs
it.

Each test runs in a fresh interpreter, so what it reports of `sys.modules` is the server's own
doing, not what the test process imported before it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tests.serve.serve_helpers import free_port

from tallinn.ops.store import open_store

pytestmark = [pytest.mark.timeout(120)]

# A production server as `tallinn serve --http --production` builds it (`open_state_store`,
# `http_server`), run in a thread of the child so the child can say what it loaded at each step.
SERVER_CHILD = r"""
import json, sys, threading, time
from pathlib import Path

import httpx2

import tallinn.cli.serve  # the command that starts a server, imported as it is there
from tallinn.serve import Registry, ServeConfig, http_server, open_state_store

root, url, token, port = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
registry = Registry(root)
registry.load()
store = open_state_store(url, root, required=True)
server = http_server(registry, store, ServeConfig(port=port, production=True, reload=False))
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
base = f"http://127.0.0.1:{port}"
init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "memory-test", "version": "1"}}}
accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def within(seconds, predicate):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except httpx2.HTTPError:
            pass
        time.sleep(0.02)
    return False


seen = {"started": within(30, lambda: httpx2.get(f"{base}/health").status_code == 200)}
seen["at_start"] = "sqlalchemy" in sys.modules
answer = httpx2.post(f"{base}/mcp", json=init,
                     headers={**accept, "Authorization": f"Bearer {token}"}, timeout=10)
seen["token_status"] = answer.status_code
ready = httpx2.get(f"{base}/ready", timeout=10)
seen["ready"] = [ready.status_code, ready.json().get("store")]
seen["after_token_and_ready"] = "sqlalchemy" in sys.modules
wrong = "tln_0123456789abcdef_" + "x" * 43
refused = httpx2.post(f"{base}/mcp", json=init,
                      headers={**accept, "Authorization": f"Bearer {wrong}"}, timeout=10)
seen["refused_status"] = refused.status_code


def events():
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute("SELECT count(*) FROM security_events").fetchone()[0]


seen["event_written"] = within(30, lambda: events() == 1)
seen["after_event"] = "sqlalchemy" in sys.modules
session = {**accept, "Authorization": f"Bearer {token}",
           "mcp-session-id": answer.headers["mcp-session-id"]}
httpx2.post(f"{base}/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=session, timeout=10)
failed = httpx2.post(f"{base}/mcp", headers=session, timeout=10, json={
    "jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {"name": "no-such-prompt"}})
seen["failed_answer"] = "error" in failed.json()
server.should_exit = True
thread.join(20)  # a server that stops writes the errors it holds


def groups():
    import sqlite3

    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return connection.execute("SELECT location, count FROM error_groups").fetchall()


seen["errors_written"] = groups()
seen["after_errors"] = "sqlalchemy" in sys.modules
seen["store_opened"] = store.opened
print(json.dumps(seen))
"""


def _run(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True,
                          text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_production_http_server_checks_tokens_without_sqlalchemy(
    library_dir: Path, tmp_path: Path
) -> None:
    """A production HTTP server serving a folder starts, lets a real token in, answers /ready,
    records the token it refused and the request that failed, all without importing
    SQLAlchemy."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        token = store.create_token("ci")
    seen = _run(SERVER_CHILD, str(library_dir), url, token, str(free_port()))
    assert seen["started"] is True
    assert seen["token_status"] == 200
    assert seen["ready"] == [200, True]
    assert seen["at_start"] is False
    assert seen["after_token_and_ready"] is False
    assert seen["refused_status"] == 401
    assert seen["event_written"] is True
    assert seen["after_event"] is False
    assert seen["failed_answer"] is True
    assert seen["errors_written"] == [["no-such-prompt", 1]]
    assert seen["after_errors"] is False
    assert seen["store_opened"] is False
    with open_store(url) as store:
        (event,) = store.events()  # as the store itself would have written it
        assert (event.kind, event.client) == ("auth_failure", "ip:127.0.0.1")
        assert "token" in event.detail
        assert store.list_tokens()[0].last_used_at is not None  # the check marked it used


IMPORT_CHILD = r"""
import json, sys
import tallinn.serve
imported = {"serve": sorted(m for m in sys.modules
                            if m.split(".")[0] == "sqlalchemy" or m in WATCHED)}
tallinn.serve.ChannelFollower, tallinn.serve.ControllerStatus
imported["used"] = [m for m in WATCHED if m in sys.modules]
print(json.dumps(imported))
""".replace("WATCHED", repr(("tallinn.serve._follow", "tallinn.serve._control",
                             "tallinn.serve._dashboard", "tallinn.ops.store")))


def test_importing_the_server_loads_no_follower_controller_or_store() -> None:
    """`import tallinn.serve` loads neither the follower, the controller, the dashboard nor the
    store; its names for them still resolve, loading their modules when first used."""
    seen = _run(IMPORT_CHILD)
    assert seen["serve"] == []
    assert seen["used"] == ["tallinn.serve._follow", "tallinn.serve._control",
                            "tallinn.ops.store"]
