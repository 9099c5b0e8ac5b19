"""`make run` takes LIBRARY, HOST and PORT, and serves what they say."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.conftest import WriteLibrary

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_make_run_serves_the_library_port_and_host_it_is_given(
    write_library: WriteLibrary, tmp_path: Path
) -> None:
    """`make run LIBRARY=... HOST=... PORT=...` checks that library and serves it there."""
    library = write_library({
        "tallinn.toml": '[library]\nname = "made-to-run"\n',
        "commands/a/hello.md": "---\ndescription: Say hello to the whole team\n---\nHello.\n",
    })
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TALLINN_", "PROJECT_ROOT"))}
    env["TALLINN_STORE_URL"] = f"sqlite:///{tmp_path / 'state.db'}"
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run", f"LIBRARY={library}", "HOST=127.0.0.1",
             f"PORT={port}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        health = None
        while health is None:
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            url = f"http://127.0.0.1:{port}/health"
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError), \
                    urllib.request.urlopen(url, timeout=2) as answer:
                health = json.loads(answer.read())
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)  # wakes at once if make exits
        assert (health["library"], health["commands"]) == ("made-to-run", 1)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
