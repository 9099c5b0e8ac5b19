"""The nginx front of docs/deploy.md, for real: Debian's nginx (installed by scripts/nginx.sh
when missing) with the documented configuration, in front of a real `tallinn serve --http`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import free_port, wait_until

from tallinn.ops.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"


def documented_config() -> str:
    """The ```nginx block of docs/deploy.md, as written there."""
    found = re.search(r"```nginx\n(.*?)```", DEPLOY.read_text(encoding="utf-8"), re.DOTALL)
    assert found, "docs/deploy.md has no nginx block"
    return found.group(1)


def header_timeout(config: str) -> float:
    found = re.search(r"client_header_timeout (\d+)s;", config)
    assert found
    return float(found.group(1))


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "nginx.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"scripts/nginx.sh failed: {done.stderr}"
    return done.stdout.strip()


class Nginx:
    """nginx in the foreground with the documented server block, on a free loopback port."""

    def __init__(self, binary: str, folder: Path, upstream: int,
                 more: list[int] | None = None) -> None:
        """`more` are the ports of further replicas, listed in the upstream block after the
        first, as docs/deploy.md says for several replicas."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        block = documented_config()
        replicas = "".join(f"\n    server 127.0.0.1:{port};" for port in more or [])
        block = block.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};{replicas}")
        block = block.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{self.port}")
        temp = "".join(
            f"{kind}_temp_path {folder / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""
        (folder / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\naccess_log off;\n{temp}{block}\n}}\n",
            encoding="utf-8",
        )
        self.folder = folder
        self.process = subprocess.Popen(
            [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_up(self) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {self.process.communicate()[1]}")
            return httpx2.get(f"{self.url}/health", timeout=2).status_code == 200

        wait_until(answers, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.communicate(timeout=15)  # also closes the stderr pipe
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate(timeout=5)


@pytest.fixture
def front(
    nginx_binary: str, library_dir: Path, tmp_path: Path, serve_process: StartProcess
) -> Iterator[tuple[Nginx, str]]:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        token = store.create_token("through-nginx")
    server = serve_process(library_dir, "--no-reload", "--production")
    nginx = Nginx(nginx_binary, tmp_path / "nginx", int(server.url.rsplit(":", 1)[1]))
    try:
        nginx.wait_up()
        yield nginx, token
    finally:
        nginx.stop()


def test_nginx_cuts_a_slowloris_while_mcp_keeps_working(front: tuple[Nginx, str]) -> None:
    """Through the documented nginx, a connection sending its headers a byte at a time is cut
    at client_header_timeout, while the SDK's real client lists and gets prompts."""
    nginx, token = front
    limit = header_timeout(documented_config())
    slow = socket.create_connection(("127.0.0.1", nginx.port), timeout=5)
    slow.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    opened = time.monotonic()

    async def use_mcp() -> list[str]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(20)) as http:
            transport = streamable_http_client(f"{nginx.url}/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                names = [p.name for p in (await client.list_prompts()).prompts]
                result = await client.get_prompt("code-review", {"path": "a.py"})
                assert "Review `a.py`" in result.messages[0].content.text  # type: ignore[union-attr]
                return names

    cut = False
    served: list[list[str]] = []
    # Keep dripping a byte a second, and use MCP meanwhile, until nginx cuts the connection.
    while time.monotonic() - opened < limit + 30:
        try:
            slow.sendall(b"a")
            slow.settimeout(1.0)
            if not slow.recv(65536):
                cut = True
                break
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            cut = True
            break
        if not served:
            served.append(anyio.run(use_mcp))
    slow.close()
    assert cut, "nginx did not cut the slow connection"
    log = (nginx.folder / "error.log").read_text(encoding="utf-8")
    assert "client timed out" in log, "the cut was not nginx's header timeout"
    assert served
    assert "code-review" in served[0]
    # And afterwards, again.
    assert "code-review" in anyio.run(use_mcp)
    unauthenticated = httpx2.post(f"{nginx.url}/mcp", json={})
    assert unauthenticated.status_code == 401
    assert "Authorization: Bearer" in unauthenticated.json()["hint"]
