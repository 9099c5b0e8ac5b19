"""The server's view of the state store, and security events recorded off the request path.

The store (`tallinn.ops.store`) is synchronous; a request never waits for it to write.
`EventRecorder.record` counts the event in /metrics at once and queues the write for a
background task, which runs it in a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from tallinn.serve._metrics import Metrics

if TYPE_CHECKING:
    from tallinn.ops.error_events import ErrorEvent
    from tallinn.ops.records import StoreHealth
    from tallinn.ops.verifier import DirectTokens

log = logging.getLogger("tallinn.serve")

_QUEUE = 1024
# One write per (kind, client) per interval: a flood of refused requests must not become a
# flood of database writes. /metrics still counts every event.
_RECORD_INTERVAL = 1.0


class StoreLike(Protocol):
    """What the server uses of `tallinn.ops.store.Store`."""

    def ping(self) -> bool: ...

    def verify_token(self, token: str) -> str | None: ...

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class ReportsHealth(Protocol):
    """A store that can say why it does not answer (`Store` can): `(ok, code, message)`."""

    def health(self) -> StoreHealth: ...


@runtime_checkable
class CachesTokens(Protocol):
    """A store that can answer for recently verified tokens from memory (`Store` can)."""

    def cached_token(self, token: str) -> str | None: ...


@runtime_checkable
class RecordsErrors(Protocol):
    """A store that keeps the failed requests of a server (`Store` does)."""

    def record_errors(self, events: list[ErrorEvent]) -> None: ...


class UnavailableStore:
    """Stands in when the store could not be opened: not ready, no tokens, events only logged."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def ping(self) -> bool:
        return False

    def health(self) -> StoreHealth:
        from tallinn.ops.records import StoreHealth

        return StoreHealth(False, "store_unavailable", self.reason)

    def verify_token(self, token: str) -> str | None:
        return None

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        log.warning("security event %s from %s not stored: %s", kind, client, detail)

    def record_errors(self, events: list[ErrorEvent]) -> None:
        log.warning("%d failed request(s) not stored: %s", len(events), self.reason)

    def close(self) -> None:
        return None


class LazyStore:
    """Opens the store the first time it is used, in whichever thread uses it first.

    A stdio server writes to the store only for a security event, which may never come, while
    opening it (SQLAlchemy, the schema check) costs a quarter of a second and 15 MB at start-up.

    >>> store = LazyStore(lambda: open_state_store(None, root, required=False))
    """

    def __init__(self, opener: Callable[[], StoreLike]) -> None:
        self._opener = opener
        self._store: StoreLike | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> bool:
        return self._store is not None

    def _get(self) -> StoreLike:
        with self._lock:
            if self._store is None:
                self._store = self._opener()
            return self._store

    def ping(self) -> bool:
        return self._get().ping()

    def health(self) -> StoreHealth:
        from tallinn.ops.records import StoreHealth

        store = self._get()
        if isinstance(store, ReportsHealth):
            return store.health()
        ok = store.ping()
        return StoreHealth(ok, None if ok else "store_unavailable", "" if ok else "no answer")

    def verify_token(self, token: str) -> str | None:
        return self._get().verify_token(token)

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        self._get().record_event(kind, client=client, detail=detail)

    def record_errors(self, events: list[ErrorEvent]) -> None:
        store = self._get()
        if isinstance(store, RecordsErrors):
            store.record_errors(events)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()


class DirectFirstStore(LazyStore):
    """Tokens and health through the database driver alone; the rest of the store when needed.

    A production server serving a folder checks tokens on its request path, answers /ready,
    records what it refused and the requests that failed: `tokens` (a
    `tallinn.ops.verifier.DirectTokens`) and `errors` (a `DirectErrors` on its connection) do
    all of it without SQLAlchemy. Anything else goes to the full store, which `opener` makes
    at its first use.

    >>> store = DirectFirstStore(DirectTokens(target), lambda: connect_store(url))
    """

    def __init__(self, tokens: DirectTokens, opener: Callable[[], StoreLike]) -> None:
        from tallinn.ops.verifier import DirectErrors

        super().__init__(opener)
        self.tokens = tokens
        self.errors = DirectErrors(tokens.database)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self.tokens.database.url

    def ping(self) -> bool:
        return self.tokens.database.ping()

    def health(self) -> StoreHealth:
        return self.tokens.database.health()

    def verify_token(self, token: str) -> str | None:
        return self.tokens.verify_token(token)

    def cached_token(self, token: str) -> str | None:
        return self.tokens.cached_token(token)

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None:
        self.tokens.record_event(kind, client=client, detail=detail)

    def record_errors(self, events: list[ErrorEvent]) -> None:
        self.errors.record(events)

    def close(self) -> None:
        self.tokens.database.close()
        super().close()


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    client: str | None
    detail: str


class EventRecorder:
    """Counts security events and writes them to the store from a background task."""

    def __init__(self, store: StoreLike, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        # The queue exists while `run` runs: made there and closed there, never left open.
        self._send: MemoryObjectSendStream[Event] | None = None
        self._last: dict[tuple[str, str | None], float] = {}

    def record(self, kind: str, client: str | None, detail: str = "") -> None:
        """Count the event now; queue it for the store unless one like it was just queued."""
        self.metrics.security_event(kind)
        key = (kind, client)
        now = time.monotonic()
        if now - self._last.get(key, -_RECORD_INTERVAL) < _RECORD_INTERVAL:
            return
        log.warning("security event %s from %s: %s", kind, client or "unknown", detail)
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = now
        event = Event(kind, client, detail[:500])
        if self._send is None:
            # No background task (a bare server in tests): write now, best effort.
            self._write(event)
            return
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            log.error("security event queue full; dropped %s from %s", kind, client)

    def _write(self, event: Event) -> None:
        try:
            self.store.record_event(event.kind, client=event.client, detail=event.detail)
        except Exception:
            log.exception("could not store security event %s", event.kind)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write queued events until cancelled; then write what is left."""
        send, receive = anyio.create_memory_object_stream[Event](_QUEUE)
        with send, receive:
            self._send = send
            task_status.started()
            try:
                async for event in receive:
                    await anyio.to_thread.run_sync(self._write, event)
            finally:
                self._send = None
                with anyio.CancelScope(shield=True):
                    while True:
                        try:
                            event = receive.receive_nowait()
                        except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                            break
                        self._write(event)
