"""The failed requests of a server, kept redacted and bounded, and written to the store.

    buffer = ErrorBuffer(replica_name(), clock)      # the server adds each failed request
    await tg.start(keep_served_errors, serving, store.record_errors)  # a folder's server

A server that follows a channel writes them with its signals (`tallinn.serve._follow`); one
that serves a folder runs `keep_errors`, which writes them every `FLUSH_EVERY` seconds and
what is left when it stops. A store that does not answer keeps nothing lost but the bound.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from tallinn.ops.error_events import ErrorEvent
from tallinn.serve._split import Served, Serving, identity_of

if TYPE_CHECKING:
    from mcp.server import ServerRequestContext

log = logging.getLogger("tallinn.serve")

FLUSH_EVERY = 10.0
FINAL_FLUSH_TIMEOUT = 5.0
REPLICA_CHARS = 128


def replica_name() -> str:
    """This process's name in the signals and errors it writes: `web-3-4127` (host and pid)."""
    host = "".join(c if c.isalnum() or c in "._-" else "_" for c in socket.gethostname())
    return f"{host or 'host'}-{os.getpid()}"[-REPLICA_CHARS:]


class ErrorBuffer:
    """The failed requests of one server, kept (redacted, bounded) until the next flush.

    At most `limit` are kept between two flushes; past that they are counted in `dropped`
    only, so a client failing on purpose costs a counter, not memory.
    """

    def __init__(self, replica: str, clock: Callable[[], datetime], limit: int = 1000) -> None:
        self.replica = replica
        self.clock = clock
        self.limit = limit
        self.dropped = 0
        self._events: list[ErrorEvent] = []

    def add(self, ctx: ServerRequestContext[Any, Any], served: Served, error_class: str,
            message: str) -> None:
        """Keep the failure of the request of `ctx`, answered by `served`."""
        if len(self._events) >= self.limit:
            self.dropped += 1
            return
        params = ctx.params or {}
        where = params.get("name") or params.get("uri") or ctx.method
        arguments = params.get("arguments")
        values = [str(v) for v in arguments.values()] if isinstance(arguments, dict) else []
        self._events.append(ErrorEvent.capture(
            message, at=self.clock(), where=str(where)[:200], arguments=values,
            release=served.release, client=str(identity_of(ctx)), replica=self.replica,
            error_class=error_class))

    def drain(self) -> list[ErrorEvent]:
        events, self._events = self._events, []
        return events

    def restore(self, events: list[ErrorEvent]) -> None:
        """Take back what a flush could not write, within the bound."""
        room = max(0, self.limit - len(self._events))
        self.dropped += max(0, len(events) - room)
        self._events = events[:room] + self._events


async def write_errors(buffer: ErrorBuffer, record: Callable[[list[ErrorEvent]], object]) -> int:
    """Write what `buffer` holds with `record` (in a worker thread); what cannot be written
    goes back into it. How many were written."""
    failed = buffer.drain()
    if not failed:
        return 0
    try:
        await anyio.to_thread.run_sync(record, failed)
    except Exception as exc:
        buffer.restore(failed)
        log.warning("could not write %d error(s) to the store, kept for the next flush: %s",
                    len(failed), " ".join(str(exc).split()))
        return 0
    return len(failed)


async def keep_errors(buffer: ErrorBuffer, record: Callable[[list[ErrorEvent]], object], *,
                      every: float = FLUSH_EVERY,
                      task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
                      ) -> None:
    """Write `buffer` every `every` seconds until cancelled, then what is left (within
    `FINAL_FLUSH_TIMEOUT`)."""
    task_status.started()
    try:
        while True:
            await anyio.sleep(every)
            await write_errors(buffer, record)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(FINAL_FLUSH_TIMEOUT):
            await write_errors(buffer, record)


async def keep_served_errors(serving: Serving, record: Callable[[list[ErrorEvent]], object], *,
                             task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
                             ) -> None:
    """Keep the failed requests of a server that serves a folder, written with `record`."""
    buffer = serving.errors = ErrorBuffer(replica_name(), lambda: datetime.now(UTC))
    await keep_errors(buffer, record, task_status=task_status)
