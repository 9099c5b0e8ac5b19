"""A server that serves a folder keeps its failed requests in the store too, redacted, as a
server following a channel does (with no release: the folder is not one)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import stdio_client

from tallinn.ops.error_events import ErrorEvent
from tallinn.ops.store import open_store
from tallinn.serve import Registry
from tallinn.serve._events import LazyStore, UnavailableStore
from tallinn.serve._failures import ErrorBuffer, keep_errors, write_errors

pytestmark = [pytest.mark.timeout(120)]

SECRET = "hunter2-very-secret"


def library(root: Path) -> Path:
    """A folder with `hello`, which needs `who`."""
    (root / "commands").mkdir(parents=True)
    (root / "commands" / "hello.md").write_text(
        "---\ndescription: Greet someone.\narguments:\n  - name: who\n"
        "    description: Who to greet.\n    required: true\n---\nHello, {{who}}.\n")
    return root


async def test_a_stdio_server_of_a_folder_stores_its_failed_requests(tmp_path: Path) -> None:
    """Over stdio, a prompt asked for without its argument and an unknown prompt become two
    error groups with no release, the replica and the client named, and no argument value."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    registry = Registry(library(tmp_path / "lib"))
    registry.load()
    store = LazyStore(lambda: open_store(url))
    async with stdio_client(registry, store, reload=False,
                            client_info=types.Implementation(name="editor", version="2")
                            ) as client:
        hello = await client.get_prompt("hello", {"who": "Ann"})
        assert "Hello, Ann." in hello.messages[0].content.text  # type: ignore[union-attr]
        assert not store.opened  # nothing failed yet: the store is not even opened
        for _ in range(2):
            with pytest.raises(Exception, match="who"):
                await client.get_prompt("hello", {})
        with pytest.raises(Exception, match="nope"):
            await client.get_prompt("nope", {"x": SECRET})
    store.close()
    with open_store(url) as opened:
        groups = {g.where: g for g in opened.errors.groups(samples=True)}
    assert set(groups) == {"hello", "nope"}
    assert groups["hello"].count == 2
    assert groups["hello"].releases == ()
    sample = groups["nope"].samples[0]
    assert sample.release is None
    assert sample.client is not None
    assert "editor" in sample.client
    assert sample.replica is not None
    assert str(os.getpid()) in sample.replica
    assert SECRET not in json.dumps([g.shape for g in groups.values()])


def test_an_http_server_of_a_folder_stores_its_failed_requests(
        tmp_path: Path, serve_process: StartProcess) -> None:
    """A `tallinn serve --http` of a folder, stopped, has written the request that failed,
    which `tallinn errors --json` then shows."""
    server = serve_process(library(tmp_path / "lib"))

    async def fail() -> None:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(20)) as http:
            transport = streamable_http_client(f"{server.url}/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                with pytest.raises(Exception, match="who"):
                    await client.get_prompt("hello", {})

    anyio.run(fail)
    server.stop()
    shown = subprocess.run(
        [sys.executable, "-m", "tallinn", "errors", "--json", "--store",
         f"sqlite:///{tmp_path / 'state.db'}"],
        capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    groups = json.loads(shown.stdout)
    assert [(g["where"], g["count"]) for g in groups] == [("hello", 1)], groups


class FailingStore:
    """A store whose writes fail `failures` times, then succeed."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.written: list[ErrorEvent] = []

    def record_errors(self, events: list[ErrorEvent]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.written.extend(events)


def now() -> datetime:
    return datetime.now(UTC)


def event(n: int) -> ErrorEvent:
    return ErrorEvent.capture(f"failure {n}", at=now(), where="hello")


async def test_errors_a_store_could_not_take_are_kept_for_the_next_flush() -> None:
    """A failed write puts the errors back, within the bound; the next write stores them, and
    cancelling the keeper writes what is left."""
    buffer = ErrorBuffer("r1", now, limit=3)
    store = FailingStore(failures=1)
    buffer.restore([event(n) for n in range(2)])
    assert await write_errors(buffer, store.record_errors) == 0
    assert store.written == []
    buffer.restore([event(n) for n in range(2, 4)])  # 4 held for a bound of 3: one dropped
    assert buffer.dropped == 1
    assert await write_errors(buffer, store.record_errors) == 3
    assert await write_errors(buffer, store.record_errors) == 0  # nothing left to write
    buffer.restore([event(9)])
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            await tg.start(partial(keep_errors, buffer, store.record_errors, every=3600))
            scope.cancel()
    assert [e.detail for e in store.written] == ["failure 2", "failure 0", "failure 1",
                                                 "failure 9"]


def test_a_store_that_could_not_be_opened_drops_errors_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """The stand-in for a store that did not open says how many errors it could not keep."""
    UnavailableStore("no database").record_errors([event(1), event(2)])
    assert "2 failed request(s) not stored: no database" in caplog.text
