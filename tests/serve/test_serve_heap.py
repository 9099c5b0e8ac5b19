"""The heap keeper: a serving process runs full collections only when the old heap has grown."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from tests.serve.conftest import StartEdge
from tests.serve.serve_helpers import INIT, MCP_HEADERS, wait_until

from tallinn.serve._heap import HeapKeeper


@pytest.fixture
def full_collections() -> Iterator[list[int]]:
    """Counts the full collections that start while the test runs, whoever starts them."""
    started: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start" and info["generation"] == 2:
            started.append(1)

    gc.callbacks.append(count)
    yield started
    gc.callbacks.remove(count)


def _old_objects(count: int) -> list[list[int]]:
    """`count` live lists, pushed into the oldest generation by two young collections."""
    kept = [[n] for n in range(count)]
    gc.collect(1)
    gc.collect(1)
    return kept


def _old_cycles(count: int) -> int:
    """Make `count` two-list cycles in the oldest generation, then drop them: garbage that
    only a full collection frees. Return the objects they hold."""
    cycles = []
    for _ in range(count):
        a: list[Any] = []
        b: list[Any] = [a]
        a.append(b)
        cycles.append(a)
    gc.collect(1)
    gc.collect(1)
    cycles.clear()
    return 2 * count


def test_no_full_collection_runs_by_itself_while_the_keeper_runs(
    full_collections: list[int],
) -> None:
    """While a keeper runs, young collections promote objects without ever starting a full
    collection, and CPython's thresholds come back when it stops."""
    before = gc.get_threshold()
    keeper = HeapKeeper()
    keeper.start()
    try:
        kept = []
        for _ in range(30):  # far more than CPython's 10 young collections per full one
            kept.append(_old_objects(5_000))
            gc.collect(0)
        assert full_collections == []
        assert keeper.full_collections == 0
    finally:
        keeper.stop()
    assert gc.get_threshold() == before


def test_the_keeper_collects_once_sessions_ended_and_the_old_generation_grew(
    full_collections: list[int],
) -> None:
    """Growth of the oldest generation past `growth` of the live heap starts a full collection
    only once sessions have ended, and that collection frees the old cycles."""
    ended = [0]
    ballast = _old_objects(200_000)  # a live heap large enough that a third of it is not all
    keeper = HeapKeeper(growth=0.25, ended=lambda: ended[0])
    keeper.start()
    full_collections.clear()  # making the ballast may have started CPython's own
    try:
        assert not keeper.check()
        live = gc.get_freeze_count() + len(gc.get_objects(generation=2))
        garbage = _old_cycles(live // 6 + 10_000)  # a third of the live heap, in pairs
        assert not keeper.due()  # grown, but no session ended: live growth, most likely
        ended[0] = 1
        assert keeper.check()
        assert keeper.full_collections == 1
        assert len(full_collections) == 1
        assert keeper.collected >= garbage
        _old_cycles(live // 6 + 10_000)
        assert not keeper.check()  # grown again, but no session ended since
        assert keeper.full_collections == 1
    finally:
        keeper.stop()
    assert len(ballast) == 200_000


def test_the_keeper_collects_once_the_old_generation_tripled(
    full_collections: list[int],
) -> None:
    """Without sessions ending, a full collection runs once the oldest generation has grown by
    twice the live heap, so old garbage of any origin is freed in the end."""
    keeper = HeapKeeper(growth=0.25)
    keeper.start()
    full_collections.clear()
    try:
        live = gc.get_freeze_count() + len(gc.get_objects(generation=2))
        _old_cycles(live // 2 + 20_000)  # the whole live heap and more: not yet
        assert not keeper.check()
        garbage = _old_cycles(live // 2 + 20_000)
        assert keeper.check()
        assert keeper.collected >= garbage
        assert len(full_collections) == 1
    finally:
        keeper.stop()


def test_a_server_counts_the_sessions_that_ended(edge: StartEdge) -> None:
    """The keeper of a running server sees a session end when its client deletes it."""
    server = edge()
    keeper = server.server.config.app.state.heap
    sessions = []
    for _ in range(3):
        opened = httpx2.post(f"{server.url}/mcp", json=INIT, headers=MCP_HEADERS, timeout=10)
        assert opened.status_code == 200
        sessions.append(opened.headers["mcp-session-id"])
    assert keeper.ended() == 0
    headers = {**MCP_HEADERS, "mcp-session-id": sessions[0], "mcp-protocol-version": "2025-11-25"}
    assert httpx2.delete(f"{server.url}/mcp", headers=headers, timeout=10).status_code == 200
    wait_until(lambda: keeper.ended() == 1)


def test_overlapping_keepers_restore_the_thresholds_once_the_last_stops() -> None:
    """Two servers in one process: the thresholds stay changed until both keepers stop."""
    before = gc.get_threshold()
    first, second = HeapKeeper(), HeapKeeper()
    first.start()
    second.start()
    first.stop()
    assert gc.get_threshold() != before
    second.stop()
    assert gc.get_threshold() == before


async def test_the_keeper_runs_its_checks_until_cancelled() -> None:
    """`run` starts the keeper, checks every interval, and stops it when cancelled."""
    import anyio

    before = gc.get_threshold()
    keeper = HeapKeeper(interval=0.01, growth=0.01, ended=itertools.count().__next__)  # always more
    async with anyio.create_task_group() as tasks:
        await tasks.start(keeper.run)
        assert gc.get_threshold() != before
        garbage = _old_cycles(30_000)
        with anyio.fail_after(30):
            while keeper.collected < garbage:
                await anyio.sleep(0.01)
        tasks.cancel_scope.cancel()
    assert keeper.full_collections >= 1
    assert gc.get_threshold() == before
