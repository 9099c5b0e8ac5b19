"""Run store work in several threads at once, each thread with a store of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable

from tallinn.ops.store import Store, open_store


def race(store_url: str, count: int, act: Callable[[Store, int], object]) -> list[object]:
    """Run `act(store, i)` in `count` threads at once, each with its own store."""
    stores = [open_store(store_url) for _ in range(count)]
    barrier = threading.Barrier(count)
    outcomes: list[object] = [None] * count

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[i] = act(stores[i], i)
        except Exception as exc:  # the outcome the test inspects
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    for opened in stores:
        opened.close()
    return outcomes
