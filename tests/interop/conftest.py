"""Independent clients against real servers: Node 22 with the MCP Inspector CLI and the MCP
conformance suite (installed by scripts/node.sh), and `tallinn serve` run as a subprocess.

Set TALLINN_SKIP_NODE=1 to skip these tests on a machine without the npm registry; otherwise
a failed install is a test error, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FIXTURE_LIBRARY = HERE / "fixture-library"
NODE_SCRIPT = ROOT / "scripts" / "node.sh"

INSTALL_TIMEOUT = 900.0  # a first install downloads about 500 MB (Claude Code: 400 MB)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CLIENT_TIMEOUT = 120.0

# Settings of the developer's shell that must not reach a server under test.
_SERVER_ENV_DROP = (
    "TALLINN_LIBRARY",
    "PROJECT_ROOT",
    "TALLINN_ENV",
    "CLAUDE_CODE_ENV",
    "TALLINN_STORE_URL",
    "TALLINN_ALLOWED_HOSTS",
)


@dataclass(frozen=True, slots=True)
class NodeTools:
    """Node 22 and the commands scripts/node.sh linked into its bin folder."""

    node: Path
    bin: Path
    env: Mapping[str, str]

    def command(self, name: str, *args: str) -> list[str]:
        """Given `mcp-inspector`, return `[node, <bin>/mcp-inspector, *args]`.

        Running the script with our Node, not through its `#!/usr/bin/env node` line, keeps an
        older system Node out of the way whatever PATH says.
        """
        return [str(self.node), str(self.bin / name), *args]

    def run(
        self, name: str, *args: str, timeout: float = CLIENT_TIMEOUT, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                self.command(name, *args),
                capture_output=True,
                text=True,
                env=dict(self.env),
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"{name} {' '.join(args)} did not finish in {timeout:.0f} s:\n"
                f"{_text(exc.stdout)}\n{_text(exc.stderr)}",
                pytrace=False,
            )


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A running `tallinn serve --http`."""

    base: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


@pytest.fixture(scope="session")
def node_tools(tmp_path_factory: pytest.TempPathFactory) -> NodeTools:
    """Install (or find) Node 22 and the MCP tools with scripts/node.sh, as CI does."""
    if os.environ.get("TALLINN_SKIP_NODE") == "1":
        pytest.skip(
            "TALLINN_SKIP_NODE=1: Node 22, the MCP Inspector and the conformance suite "
            "are not installed, so the interop tests do not run"
        )
    # Exactly what a developer types: eval the script's output, then read what it exported.
    script = f'eval "$(bash {NODE_SCRIPT})" && printf "%s\\0%s" "$TALLINN_NODE22" "$PATH"'
    try:
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"scripts/node.sh did not finish in {INSTALL_TIMEOUT:.0f} s:\n{_text(exc.stderr)}",
            pytrace=False,
        )
    if done.returncode != 0:
        pytest.fail(
            f"scripts/node.sh failed (exit {done.returncode}):\n{done.stderr}", pytrace=False
        )
    node_text, _, path = done.stdout.partition("\0")
    node = Path(node_text)
    home = tmp_path_factory.mktemp("node-home")
    env = {
        **os.environ,
        "PATH": path,
        # The Inspector keeps a catalog and secrets under ~/.mcp-inspector: not the developer's.
        "HOME": str(home),
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
    }
    for name in _SERVER_ENV_DROP:
        env.pop(name, None)
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, timeout=30, env=env
    )
    assert version.stdout.startswith("v22."), f"scripts/node.sh gave Node {version.stdout!r}"
    return NodeTools(node=node, bin=node.parent, env=env)


@pytest.fixture(scope="session")
def fixture_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tests/interop/fixture-library: servers keep state (.tallinn/) beside it."""
    target = tmp_path_factory.mktemp("interop") / "fixture-library"
    shutil.copytree(FIXTURE_LIBRARY, target)
    return target


def server_env() -> dict[str, str]:
    """This process's environment without the settings that would change what a server does."""
    env = dict(os.environ)
    for name in _SERVER_ENV_DROP:
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def run_http_server(library: Path, log: Path, *options: str) -> Iterator[HttpServer]:
    """Run `python -m tallinn serve --http` on a free loopback port until the block ends."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "tallinn",
        "serve",
        "--http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--library",
        str(library),
        *options,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_env(),
            cwd=library,
        )
    server = HttpServer(base=f"http://127.0.0.1:{port}", process=process, log=log)
    try:
        _wait_healthy(server)
        yield server
    finally:
        stop_process(process)


def _wait_healthy(server: HttpServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"tallinn serve exited with {server.process.returncode} before it was "
                f"healthy:\n{server.log_tail()}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{server.base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(
        f"tallinn serve was not healthy within {START_TIMEOUT:.0f} s:\n{server.log_tail()}",
        pytrace=False,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (coverage saves its data on it), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@pytest.fixture(scope="session")
def http_server(
    fixture_library: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    """One stateful HTTP server over the fixture library for the whole session."""
    log = tmp_path_factory.mktemp("logs") / "serve-http.log"
    with run_http_server(fixture_library, log) as server:
        yield server


@pytest.fixture(scope="session")
def stateless_http_server(
    fixture_library: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HttpServer]:
    """One `--stateless` HTTP server over the fixture library for the whole session."""
    log = tmp_path_factory.mktemp("logs") / "serve-http-stateless.log"
    with run_http_server(fixture_library, log, "--stateless") as server:
        yield server
