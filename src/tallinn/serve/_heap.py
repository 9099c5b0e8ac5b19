"""The garbage collector of a serving process: full collections only when they can find garbage.

CPython runs a full collection whenever the objects promoted to its oldest generation since the
last one exceed a quarter of that generation. A server promotes the objects of every request
still in flight at a young collection, and almost all of them are freed by reference counting
moments later; the count does not drop when they are. Under 500 requests a second with 500
open sessions that meant a full collection every second, walking the sessions' 120,000
objects for 50 ms (250 ms on a busy machine), finding nothing (benchmarks/soak.py measured
it: every one collected 0 objects), while every request and `/health` waited.

`HeapKeeper` turns CPython's automatic full collections off and looks, every `interval`
seconds, at how many objects the oldest generation really holds (`gc.get_objects(2)`, a few
milliseconds). Old garbage appears when sessions end (their tasks and streams are cycles): the
keeper runs a full collection when sessions have ended since the last one and the oldest
generation has grown by more than `growth` times the live heap (the frozen start-up heap plus
the oldest generation after the last full collection). Whatever else may leave old garbage (a
stateless server, a reload) is caught once the oldest generation has grown by twice the live
heap. Live growth (sessions opening, requests piling up under overload) costs no collection:
500 sessions opening at once hold about as many objects as the frozen start-up heap.
Young collections are left as they are: they are short and free what requests leave.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus

log = logging.getLogger("tallinn.serve")

# A threshold the oldest generation's counter (young collections since the last full one)
# never reaches: CPython then never starts a full collection by itself.
_NEVER = 2**31 - 1
# Growth by this many times the live heap is collected even if no session ended.
_ANY_GROWTH = 2.0
# Growth below this many objects is not worth a full collection however small the heap.
_SMALLEST_GROWTH = 10_000
# CPython's thresholds while no keeper runs; keepers may overlap (two servers in one process).
_saved: list[tuple[int, int, int]] = []
_running = 0


@dataclass(slots=True)
class HeapKeeper:
    """Runs the full collections of a serving process; `full_collections` counts them.

    keeper = HeapKeeper(interval=5.0, growth=0.25, ended=lambda: sessions_ended)
    keeper.start()          # CPython's own full collections off
    keeper.check()          # a full collection if the oldest generation grew enough
    keeper.stop()           # CPython's thresholds back

    `ended` says how many sessions have ended so far (none can, without it).
    """

    interval: float = 5.0
    growth: float = 0.25
    ended: Callable[[], int] | None = None
    full_collections: int = 0
    collected: int = 0  # objects the full collections freed
    _baseline: int = 0
    _ended: int = 0  # sessions ended by the last full collection
    _started: bool = field(default=False, repr=False)

    def start(self) -> None:
        global _running
        if not self._started:
            self._started = True
            if _running == 0:
                _saved.append(gc.get_threshold())
                young, middle, _ = _saved[-1]
                gc.set_threshold(young, middle, _NEVER)
            _running += 1
        self._baseline = self._old_objects()
        self._ended = self._sessions_ended()

    def stop(self) -> None:
        global _running
        if self._started:
            self._started = False
            _running -= 1
            if _running == 0:
                gc.set_threshold(*_saved.pop())

    def due(self) -> bool:
        """Whether a full collection may find old garbage: the oldest generation has grown by
        `growth` of the live heap since the last one and sessions ended, or by twice the heap."""
        grown = self._old_objects() - self._baseline
        live = gc.get_freeze_count() + self._baseline
        if grown <= max(_SMALLEST_GROWTH, self.growth * live):
            return False
        return self._sessions_ended() > self._ended or grown > _ANY_GROWTH * live

    def check(self) -> bool:
        """Run a full collection if it is due; return whether one ran."""
        if not self.due():
            return False
        self._ended = self._sessions_ended()
        found = gc.collect()
        self.full_collections += 1
        self.collected += found
        self._baseline = self._old_objects()
        log.debug("full collection freed %d objects; %d remain", found, self._baseline)
        return True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """`start`, then `check` every `interval` seconds until cancelled; then `stop`."""
        self.start()
        task_status.started()
        try:
            while True:
                await anyio.sleep(self.interval)
                self.check()
        finally:
            self.stop()

    def _sessions_ended(self) -> int:
        return self.ended() if self.ended is not None else 0

    @staticmethod
    def _old_objects() -> int:
        return len(gc.get_objects(generation=2))
