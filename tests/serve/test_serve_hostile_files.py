"""`tallinn serve` as a real process meets files that are not files: it starts, refuses the
reload they cause, keeps serving, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx2
import pytest
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def test_a_fifo_and_a_device_link_at_start_up_are_reported(
    library_dir: Path, serve_process: StartProcess
) -> None:
    """A FIFO and a link to /dev/zero are listed as errors; the rest of the library is served."""
    os.mkfifo(library_dir / "commands/docs/pipe.md")
    (library_dir / "commands/docs/zero.md").symlink_to("/dev/zero")
    server = serve_process(library_dir, "--no-reload")
    ready = httpx2.get(f"{server.url}/ready", timeout=10).json()
    errors = ready["library_errors"]
    assert any("commands/docs/pipe.md" in e and "V111" in e for e in errors)
    assert any("commands/docs/zero.md" in e and "V111" in e for e in errors)
    assert ready["library_loaded"] is True
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=15)  # stops: a blocked read would hold it past the timeout
    assert server.process.returncode is not None


def test_a_fifo_added_while_serving_is_a_refused_reload(
    library_dir: Path, serve_process: StartProcess
) -> None:
    """A FIFO created in a served library makes the reload fail; SIGTERM still stops it."""
    server = serve_process(library_dir)
    os.mkfifo(library_dir / "commands/docs/pipe.md")

    def refused() -> list[str]:
        return list(httpx2.get(f"{server.url}/ready", timeout=5).json().get("reload_error", []))

    problems = wait_until(refused, timeout=20)
    assert any("commands/docs/pipe.md" in p and "V111" in p for p in problems)
    assert httpx2.get(f"{server.url}/health", timeout=5).status_code == 200
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=15)  # stops: a blocked read would hold it past the timeout
    assert server.process.returncode is not None
