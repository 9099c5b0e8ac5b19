"""The parts of the whole rollout cycle, run against real processes: the CLI, servers following
the store, traffic from the SDK's real client, and (on PostgreSQL) nginx in front.

`tests/integration/test_rollout_cycle.py` drives them; `benchmarks/bench_propagation.py`
times them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tallinn.ops.rollout.assign import bucket
from tallinn.settings import starter_path

COMMAND = "explain-code"
ARGUMENTS = {"target": "x.py"}


def library(folder: Path, version: int) -> Path:
    """The starter library, its `explain-code` command ending with `Release N.`: every
    release passes the gates, and the text says which one served a client."""
    shutil.copytree(starter_path(), folder)
    command = folder / "commands" / "docs" / "explain-code.md"
    command.write_text(command.read_text(encoding="utf-8") + f"\nRelease {version}.\n",
                       encoding="utf-8")
    return folder


def release_of(text: str) -> int:
    """Given a rendered `explain-code`, the release that rendered it."""
    for version in range(1, 10):
        if text.rstrip().endswith(f"Release {version}."):
            return version
    raise AssertionError(f"no release named at the end of: {text[-80:]!r}")


def tallinn(*args: str, store: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m tallinn ARGS --store STORE`, as the actor `ops`."""
    done = subprocess.run([sys.executable, "-m", "tallinn", *args, "--store", store],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "TALLINN_ACTOR": "ops"})
    if check:
        assert done.returncode == 0, f"tallinn {' '.join(args)}: {done.stdout}{done.stderr}"
    return done


def clients_for(keys: list[str], *, each: int = 5, others: int = 20) -> list[str]:
    """Client names with at least `each` below bucket 10 in every rollout of `keys` (so a
    10% step has a sample in a small test), and `others` more."""
    chosen: list[str] = []
    for key in keys:
        low = [n for n in (f"laptop-{i}" for i in range(2000)) if bucket(key, f"header:{n}") < 10]
        chosen += [n for n in low if n not in chosen][:each]
    chosen += [f"desk-{i}" for i in range(others)]
    return chosen


class Server:
    """`tallinn serve --http --from-store` in a subprocess, its log in a file."""

    def __init__(self, store: str, port: int, log: Path, *args: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log = log.open("w", encoding="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tallinn", "serve", "--http", "--port", str(port),
             "--from-store", "--channel", "production", *args],
            env={**os.environ, "TALLINN_STORE_URL": store},
            stdout=subprocess.DEVNULL, stderr=self._log, text=True)

    def ready(self) -> dict[str, Any]:
        return dict(httpx2.get(f"{self.url}/ready", timeout=5).json())

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text(encoding='utf-8')}")
            with contextlib.suppress(httpx2.HTTPError):
                if httpx2.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"server not healthy: {self.log.read_text(encoding='utf-8')}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no last flush, no goodbye to the store."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


async def render_as(url: str, name: str) -> str:
    """What `explain-code` says to the client `name` (its X-Tallinn-Client header)."""
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(20),
                           headers={"X-Tallinn-Client": name}) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy") as client,
    ):
        result = await client.get_prompt(COMMAND, ARGUMENTS)
        return str(result.messages[0].content.text)  # type: ignore[union-attr]


def releases_seen(urls: list[str], names: list[str]) -> dict[tuple[str, str], int]:
    """For every (server, client), the release that answers it now."""

    async def every() -> dict[tuple[str, str], int]:
        seen: dict[tuple[str, str], int] = {}

        async def one(url: str, name: str) -> None:
            seen[(url, name)] = release_of(await render_as(url, name))

        async with anyio.create_task_group() as tg:
            for url in urls:
                for name in names:
                    tg.start_soon(one, url, name)
        return seen

    # In a thread of its own: the caller's thread may run an event loop already (a browser
    # driven by Playwright's sync API does).
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, every).result()


class Traffic:
    """Clients using the library through `url` until stopped, in a thread of their own.

    Each client keeps a session, renders `explain-code` and rates what it got:
    `rate(release)` stars. `served` counts the renders per release.
    """

    def __init__(self, url: str, names: list[str], rate: Callable[[int], int]) -> None:
        self.url = url
        self.names = names
        self.rate = rate
        self.served: Counter[int] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: anyio.run(self._run), daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    async def _run(self) -> None:
        async with anyio.create_task_group() as tg:
            for name in self.names:
                tg.start_soon(self._client, name)

    async def _client(self, name: str) -> None:
        while not self._stop.is_set():
            try:
                async with httpx2.AsyncClient(timeout=httpx2.Timeout(20),
                                              headers={"X-Tallinn-Client": name}) as http:
                    transport = streamable_http_client(f"{self.url}/mcp", http_client=http)
                    async with Client(transport, mode="legacy") as client:
                        while not self._stop.is_set():
                            got = await client.get_prompt(COMMAND, ARGUMENTS)
                            version = release_of(str(got.messages[0].content.text))  # type: ignore[union-attr]
                            self.served[version] += 1
                            await client.call_tool("rate_prompt", {
                                "name": COMMAND, "rating": self.rate(version)})
                            await anyio.sleep(0.05)
            except Exception as exc:  # a replica going away: the client connects again
                self.failures.append(f"{name}: {exc!r}")
                await anyio.sleep(0.2)


def audit(store: str) -> list[Mapping[str, Any]]:
    """The audit log, oldest first."""
    entries = json.loads(tallinn("audit-log", "--json", store=store).stdout)
    return list(entries)
