"""`tallinn serve --from-store`: a real server serves a channel's release from the state store
and follows the channel as the CLI, in other processes, promotes and rolls back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import wait_until

from tallinn.ops.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def library_files(greeting: str) -> dict[str, bytes]:
    """A one-command library whose prompt says `greeting`."""
    return {
        "commands/hello.md": (
            "---\ndescription: Greet someone by name.\narguments:\n"
            "  - name: who\n    description: Who to greet.\n    required: true\n---\n"
            f"{greeting}, {{{{who}}}}.\n").encode(),
    }


def served_text(url: str) -> str:
    """What the server at `url` renders for `hello`, through the SDK's real client."""

    async def get() -> str:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(20)) as http:
            transport = streamable_http_client(f"{url}/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                result = await client.get_prompt("hello", {"who": "Ann"})
                return str(result.messages[0].content.text).strip()  # type: ignore[union-attr]

    return anyio.run(get)


def cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tallinn", *args, "--store", store],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "TALLINN_ACTOR": "test"})


def test_a_server_follows_its_channel_as_the_cli_moves_it(
    tmp_path: Path, serve_process: StartProcess
) -> None:
    """Served from the store, the server answers with the channel's release; a promotion and
    a rollback made by the CLI in other processes are served without a restart, and /ready
    names the release served."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        store.releases.create(library_files("Hello"), actor="test", version="1")
        store.releases.create(library_files("Good morning"), actor="test", version="2")
        store.channels.promote("1", actor="test", reason="first release")
    server = serve_process(tmp_path, "--from-store", "--store-poll", "0.2")
    server.wait_healthy()
    assert served_text(server.url) == "Hello, Ann."
    ready = httpx2.get(f"{server.url}/ready", timeout=5).json()
    assert ready["release"]["version"] == "1"

    moved = time.monotonic()
    promoted = cli("promote", "2", "--reason", "a warmer greeting", store=url)
    assert promoted.returncode == 0, promoted.stderr
    wait_until(lambda: served_text(server.url) == "Good morning, Ann.", timeout=30, step=0.05)
    print(f"promotion served {time.monotonic() - moved:.2f} s after the CLI started")
    assert httpx2.get(f"{server.url}/ready", timeout=5).json()["release"]["version"] == "2"

    rolled = cli("rollback", "--reason", "the old greeting was better", store=url)
    assert rolled.returncode == 0, rolled.stderr
    wait_until(lambda: served_text(server.url) == "Hello, Ann.", timeout=30, step=0.05)
    assert httpx2.get(f"{server.url}/ready", timeout=5).json()["release"]["version"] == "1"


def test_a_channel_without_a_release_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`--from-store` on a channel that points nowhere says how to fix it, and exits 2."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url):
        pass
    done = subprocess.run(
        [sys.executable, "-m", "tallinn", "serve", "--from-store", "--channel", "staging",
         "--store", url], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    said = " ".join(done.stderr.split())  # one line, however wide the terminal
    assert said.startswith("error: channel staging has no release to serve")
    assert "tallinn promote RELEASE --channel staging" in said


def test_from_store_with_reload_is_refused(tmp_path: Path) -> None:
    """A stored release never changes: `--from-store --reload` is refused in one line."""
    done = subprocess.run(
        [sys.executable, "-m", "tallinn", "serve", "--from-store", "--reload",
         "--store", f"sqlite:///{tmp_path / 'state.db'}"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "--from-store serves a stored release" in done.stderr


@pytest.mark.parametrize(("value", "said"), [
    (0.01, "[serve] store_poll must be at least 0.05, got 0.01"),
    (4000, "[serve] store_poll must be at most 3600, got 4000"),
    ("2s", "[serve] store_poll must be a number of seconds, got '2s'"),
])
def test_store_poll_is_bounded(value: object, said: str) -> None:
    """`[serve] store_poll` is checked with the other bounds: from 0.05 to 3600 seconds."""
    from tallinn.serve import ConfigError, resolve

    with pytest.raises(ConfigError) as raised:
        resolve({"store_poll": value})
    assert str(raised.value) == said
    assert resolve({"store_poll": 5}, store_poll=0.2).store_poll == 0.2


@pytest.mark.parametrize(("table", "said"), [
    ({"minute_retention_days": 0.5}, "[serve] minute_retention_days must be at least 1, got 0.5"),
    ({"error_retention_days": "30d"},
     "[serve] error_retention_days must be a number of days, got '30d'"),
    ({"minute_retention_days": 90, "hour_retention_days": 60},
     "[serve] hour_retention_days must be at least minute_retention_days (90): charts over "
     "days read the hourly sums"),
])
def test_retention_is_checked(table: dict[str, object], said: str) -> None:
    """Each `[serve] *_retention_days` is a number of days from 1; the hourly sums are kept at
    least as long as the minutes, and the leader is given what the table says."""
    from tallinn.serve import ConfigError, Retention, resolve

    with pytest.raises(ConfigError) as raised:
        resolve(table)
    assert str(raised.value) == said
    kept = Retention.of(resolve({"minute_retention_days": 7, "event_retention_days": 90}))
    assert (kept.minutes.days, kept.events.days, kept.errors.days, kept.hours.days) == (
        7, 90, 30, 400)
