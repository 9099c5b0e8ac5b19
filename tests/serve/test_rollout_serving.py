"""Serving a rollout: each client is answered from the release its bucket gives it, moved
clients hear list_changed, requests are counted per release, and ratings go to the store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.memory import create_client_server_memory_streams
from sqlalchemy import select
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import metric_value, wait_until

from tallinn.ops.rollout import RolloutPlan
from tallinn.ops.rollout.assign import bucket, client_identity
from tallinn.ops.rollout.signals import latency_quantile
from tallinn.ops.schema import rollout_ratings, rollout_signals
from tallinn.ops.store import Store, open_store
from tallinn.serve import Registry, serve_stdio
from tallinn.serve._follow import ChannelFollower

pytestmark = [pytest.mark.timeout(120)]

HELLO = ("---\ndescription: Greet someone by name.\narguments:\n  - name: who\n"
         "    description: Who to greet.\n    required: true\n---\n")


def release_files(greeting: str, *, extra: bool = False) -> dict[str, bytes]:
    """A library whose `hello` says `greeting`; with `extra`, a second command `bye`."""
    files = {"commands/hello.md": f"{HELLO}{greeting}, {{{{who}}}}.\n".encode()}
    if extra:
        files["commands/bye.md"] = b"---\ndescription: Say goodbye.\n---\nGoodbye.\n"
    return files


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store with release 1 on production and release 2 (which adds `bye`) rolling
    out to 10%, then 50%, of clients, counted per second."""
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        opened.releases.create(release_files("Hello"), actor="test", version="1")
        opened.releases.create(release_files("Good morning", extra=True), actor="test",
                               version="2")
        opened.channels.promote("1", actor="test", reason="first", channel="production")
        opened.rollouts.start(RolloutPlan("2", channel="production", steps=(10, 50, 100),
                                          holds=(timedelta(hours=1),) * 2,
                                          resolution=timedelta(seconds=1)),
                              actor="test", reason="a warmer greeting")
        yield opened


def client_named(rollout: str, low: int, high: int) -> str:
    """A client name whose stdio identity has a bucket in [low, high) in `rollout`."""
    for n in range(10_000):
        name = f"client-{n}"
        identity = client_identity(client_name=name, client_version="1.0")
        if low <= bucket(rollout, identity) < high:
            return name
    raise AssertionError("no such name")  # pragma: no cover (1 in 10**400)


async def test_a_client_moved_by_a_step_hears_list_changed_and_gets_the_candidate(
    store: Store,
) -> None:
    """A stdio client whose bucket is between 10 and 50 is served the stable release at 10%;
    when the rollout steps to 50% it hears list_changed and every list and prompt answers from
    the candidate; after a rollback it is back on the stable release. Its requests are counted
    for the release that served them, and its rating is recorded against that release."""
    rollout = store.rollouts.active("production")
    assert rollout is not None
    name = client_named(f"r{rollout.id}", 10, 50)
    follower = ChannelFollower(store, "production", poll=0.05, listen=False)
    registry = Registry(follower.start())
    registry.load()
    heard: list[str] = []
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification) and (
                message.method == "notifications/prompts/list_changed"):
            heard.append(message.method)
            changed.set()

    async def prompts(client: Client) -> set[str]:
        return {p.name for p in (await client.list_prompts()).prompts}

    async def greeting(client: Client) -> str:
        result = await client.get_prompt("hello", {"who": "Ann"})
        return str(result.messages[0].content.text).strip()  # type: ignore[union-attr]

    async with create_client_server_memory_streams() as (client_streams, server_streams):

        @asynccontextmanager
        async def server_side() -> AsyncIterator[Any]:
            yield server_streams

        @asynccontextmanager
        async def client_side() -> AsyncIterator[Any]:
            yield client_streams

        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(serve_stdio, registry, store, reload=False,
                                  transport=server_side, follower=follower))
            async with Client(client_side(), mode="legacy", message_handler=on_message,
                              client_info=types.Implementation(name=name, version="1.0"),
                              ) as client:
                assert await greeting(client) == "Hello, Ann."
                assert await prompts(client) == {"hello"}
                tools = {t.name for t in (await client.list_tools()).tools}
                assert "rate_prompt" in tools
                rated = await client.call_tool("rate_prompt", {"name": "hello", "rating": 5})
                assert not rated.is_error, rated.content
                bad = await client.call_tool("rate_prompt", {"name": "hello", "rating": 9})
                assert bad.is_error
                with pytest.raises(Exception, match="who"):
                    await client.get_prompt("hello", {})  # a client error, counted apart

                store.rollouts.advance("production", actor="test", reason="looks good")
                with anyio.fail_after(30):
                    await changed.wait()
                assert await greeting(client) == "Good morning, Ann."
                assert await prompts(client) == {"hello", "bye"}
                read = await client.read_resource("tallinn://commands/bye")
                assert "Goodbye." in read.contents[0].text  # type: ignore[union-attr]
                await client.call_tool("rate_prompt", {"name": "bye", "rating": 2,
                                                       "comment": "too short"})
                during = registry.metrics.render().decode()
                assert metric_value(during, "tallinn_mcp_requests_total", {
                    "method": "prompts/get", "release": "2", "channel": "production"}) == 1
                assert metric_value(during, "tallinn_ratings_total", {
                    "release": "2", "satisfied": "false"}) == 1
                assert metric_value(during, "tallinn_rollout_phase", {
                    "channel": "production", "phase": "running"}) == 1
                assert metric_value(during, "tallinn_rollout_share",
                                    {"channel": "production"}) == 50
                assert metric_value(during, "tallinn_release_info", {
                    "role": "candidate", "release": "2", "id": rollout.candidate.id}) == 1

                changed = anyio.Event()
                store.rollouts.roll_back("production", actor="test", reason="by hand")
                with anyio.fail_after(30):
                    await changed.wait()
                assert await greeting(client) == "Hello, Ann."
                assert await prompts(client) == {"hello"}
            await client_streams[1].aclose()

    after = registry.metrics.render().decode()
    assert metric_value(after, "tallinn_mcp_requests_total", {
        "method": "prompts/get", "release": "1", "channel": "production", "outcome": "ok"}) == 2
    # The candidate is served no more: its series are gone, so releases cannot pile up.
    assert 'release="2"' not in after
    assert 'role="candidate"' not in after
    assert metric_value(after, "tallinn_ratings_total", {
        "release": "1", "channel": "production", "satisfied": "true"}) == 1
    assert metric_value(after, "tallinn_rollout_share", {"channel": "production"}) == 0
    assert 'tallinn_rollout_phase{' not in after
    assert metric_value(after, "tallinn_release_info", {"role": "stable", "release": "1"}) == 1
    stable, candidate = rollout.stable.id, rollout.candidate.id
    with store.database.transaction("read") as connection:
        ratings = {(r.release_id, r.prompt, r.rating, r.comment)
                   for r in connection.execute(select(rollout_ratings))}
        signals = connection.execute(select(rollout_signals)).all()
    client = str(client_identity(client_name=name, client_version="1.0"))
    assert ratings == {(stable, "hello", 5, None), (candidate, "bye", 2, "too short")}
    with store.database.transaction("read") as connection:
        assert {r.client for r in connection.execute(select(rollout_ratings))} == {client}
    totals: dict[str, list[int]] = {}
    for row in signals:
        counted = totals.setdefault(row.release_id, [0, 0, 0])
        counted[0] += row.requests
        counted[1] += row.server_errors
        counted[2] += row.client_errors
    # Stable: 2 greetings and the bad call (rate_prompt is not a use); the candidate: one
    # greeting and one resource read.
    assert totals == {stable: [3, 0, 1], candidate: [2, 0, 0]}
    # Every counted request was timed: each batch's latency histogram holds all of them.
    assert all(sum(map(int, row.latency.split(","))) == row.requests for row in signals)
    summed = [sum(column) for column in zip(
        *(map(int, row.latency.split(",")) for row in signals), strict=True)]
    assert latency_quantile(tuple(summed), 0.95) is not None
    # The failed requests are error groups: the missing argument and the bad rating.
    groups = {(g.error_class, g.where): g for g in store.errors.groups(samples=True)}
    assert set(groups) == {("InvalidParams", "hello"), ("ToolError", "rate_prompt")}
    missing = groups[("InvalidParams", "hello")]
    assert (missing.count, missing.shape) == (1, "missing required argument <str>")
    assert [r.release for r in missing.releases] == [stable]
    assert missing.samples[0].client == client


def greet_as(url: str, clients: list[str]) -> dict[str, str]:
    """What `hello` says to each client, named by its X-Tallinn-Client header, over HTTP."""

    async def one(name: str) -> str:
        headers = {"X-Tallinn-Client": name}
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(20), headers=headers) as http:
            transport = streamable_http_client(f"{url}/mcp", http_client=http)
            async with Client(transport, mode="legacy") as client:
                result = await client.get_prompt("hello", {"who": "Ann"})
                return str(result.messages[0].content.text).strip()  # type: ignore[union-attr]

    async def every() -> dict[str, str]:
        said: dict[str, str] = {}

        async def into(name: str) -> None:
            said[name] = await one(name)

        async with anyio.create_task_group() as tg:
            for name in clients:
                tg.start_soon(into, name)
        return said

    return anyio.run(every)


def cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tallinn", *args, "--store", store],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "TALLINN_ACTOR": "test"})


@pytest.mark.slow
def test_an_http_server_splits_clients_by_bucket_and_keeps_them_sticky(
    store: Store, tmp_path: Path, serve_process: StartProcess
) -> None:
    """Over HTTP, the clients named by X-Tallinn-Client whose bucket is below the step's share
    get the candidate and no other client does; a step to 50% (by the CLI, in another
    process) adds clients and moves none back; a bad header is a 400 naming it; /ready shows
    the rollout."""
    rollout = store.rollouts.active("production")
    assert rollout is not None
    key = f"r{rollout.id}"
    names = [f"laptop-{n}" for n in range(60)]

    def expected(share: int) -> dict[str, str]:
        return {name: ("Good morning, Ann." if bucket(key, f"header:{name}") < share
                       else "Hello, Ann.") for name in names}

    server = serve_process(tmp_path, "--from-store", "--channel", "production",
                           "--store-poll", "0.1")
    wait_until(lambda: httpx2.get(f"{server.url}/ready", timeout=5).json()["release"]
               .get("rollout", {}).get("share") == 10, timeout=30)
    at_ten = greet_as(server.url, names)
    assert at_ten == expected(10)
    ready = httpx2.get(f"{server.url}/ready", timeout=5).json()["release"]["rollout"]
    assert (ready["stable"], ready["candidate"], ready["phase"]) == ("1", "2", "running")

    url = f"sqlite:///{tmp_path / 'state.db'}"
    stepped = cli("rollout", "advance", "--channel", "production", "--reason", "fine",
                  store=url)
    assert stepped.returncode == 0, stepped.stderr
    wait_until(lambda: httpx2.get(f"{server.url}/ready", timeout=5).json()["release"]
               ["rollout"]["share"] == 50, timeout=30)
    at_fifty = greet_as(server.url, names)
    assert at_fifty == expected(50)
    assert all(at_fifty[name] == "Good morning, Ann." for name in names
               if at_ten[name] == "Good morning, Ann.")

    bad = httpx2.post(f"{server.url}/mcp", json={}, headers={
        "X-Tallinn-Client": "two words", "Accept": "application/json, text/event-stream"})
    assert bad.status_code == 400
    assert "X-Tallinn-Client" in bad.json()["message"]
