"""`tallinn serve --http` on an address it cannot use: one line naming it, exit 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.serve.serve_helpers import FIXTURE_LIBRARY
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.cli.serve import unusable_address

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another process-like listener holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


@pytest.fixture
def library(write_library: Any) -> Path:
    return Path(write_library(FIXTURE_LIBRARY))


def test_a_port_in_use_exits_1_with_one_line(library: Path, taken: int) -> None:
    """The port is taken: exit 1 and one line that names the address and what to do."""
    result = runner.invoke(app, ["serve", "--http", "--port", str(taken), "-L", str(library)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: 127.0.0.1:{taken} is already in use (another server is listening there); "
        "stop it or choose another --port"]


def test_a_port_in_use_in_a_real_process(library: Path, taken: int) -> None:
    """The same from a real `tallinn serve` process: exit 1, no traceback, no uvicorn noise."""
    result = subprocess.run(
        [sys.executable, "-m", "tallinn", "serve", "--http", "--port", str(taken),
         "-L", str(library)],
        capture_output=True, text=True, timeout=60, check=False,
        # Some test runners export COLUMNS=80 to children (curses); a pipe has no width.
        env={k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")})
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: 127.0.0.1:{taken} is already in use (another server is listening there); "
        "stop it or choose another --port")
    assert "Traceback" not in result.stderr


def test_an_address_that_does_not_resolve_is_named() -> None:
    """A --host that is no address of this machine is refused with its name."""
    reason = unusable_address("no-such-host.invalid", 8000)
    assert reason is not None
    assert reason.startswith("cannot listen on no-such-host.invalid:8000: ")
    assert reason.endswith("; check --host")


def test_a_free_port_is_usable() -> None:
    """A free port passes the check, and the check does not keep it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert unusable_address("127.0.0.1", port) is None
    assert unusable_address("127.0.0.1", port) is None
