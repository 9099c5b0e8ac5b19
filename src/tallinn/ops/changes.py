"""Change announcements between processes that share a store.

A writer that moves something every replica must see (a channel's release, a rollout step)
announces it in the same transaction; every replica listening hears it at once on PostgreSQL
(`LISTEN`/`NOTIFY`), and within one poll interval on any database:

    with database.transaction("promote") as connection:
        ...                                   # move the channel
        announce(connection, "channel:production")

    listener = ChangeListener(url, poll=2.0)  # in each replica
    listener.start()
    while serving:
        topics = listener.wait()              # {"channel:production"}, or {RESYNC}, or set()
        ...                                   # read the state from the store, act on it

An announcement is a hint, never the state: whoever hears one (or whose poll is due) reads
the state from the store. PostgreSQL delivers a notification only when its transaction
commits, so a rolled-back change is never heard; a notification lost while a listener was
reconnecting costs at most one poll interval, and the listener says `RESYNC` once it is back.
So the poll is the guarantee and the notification the speed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL, make_url

log = logging.getLogger("tallinn.ops")

CHANNEL = "tallinn_changes"
# Told to the waiter when the listener (re)connected: anything may have changed meanwhile.
RESYNC = "*"
TOPIC_MAX = 200  # PostgreSQL's payload limit is 8,000 bytes; topics are short names
# How long the listening thread blocks at a time, so that close() ends it promptly.
_LISTEN_SLICE = 0.5
_RECONNECT_MAX = 5.0


def announce(connection: Connection, topic: str) -> None:
    """Announce `topic` to every listener when `connection`'s transaction commits.

    On SQLite (one process, or replicas that poll) there is no one to tell, and nothing is done.
    """
    if not topic or len(topic) > TOPIC_MAX:
        raise ValueError(f"a change topic has 1 to {TOPIC_MAX} characters, not {len(topic)}")
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_notify(:channel, :topic)"),
                           {"channel": CHANNEL, "topic": topic})


def _conninfo(url: URL) -> str:
    """A libpq URI for psycopg from a SQLAlchemy URL (which may name its driver)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """Wakes `wait()` when another process announces a change, or when `poll` seconds passed.

    On PostgreSQL a thread holds one connection of its own that `LISTEN`s; it reconnects after
    a failure (waiting at most `_RECONNECT_MAX` seconds between tries) and then reports
    `RESYNC`. On other databases `wait()` is a plain poll.
    """

    def __init__(self, url: URL | str, *, poll: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if poll <= 0:
            raise ValueError(f"the poll interval is a positive number of seconds, not {poll}")
        self.url = make_url(url) if isinstance(url, str) else url
        self.poll = poll
        self._clock = clock
        self._heard: set[str] = set()
        self._condition = threading.Condition()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set while the LISTEN connection is up
        self.reconnects = 0

    @property
    def listens(self) -> bool:
        """Whether changes are heard as they happen (PostgreSQL), not only by polling."""
        return self.url.get_backend_name() == "postgresql"

    def start(self) -> None:
        if self.listens and self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="tallinn-changes",
                                            daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> set[str]:
        """The topics heard since the last call, waiting at most `timeout` (default: `poll`)
        seconds for one; an empty set when the time passed with none."""
        limit = self.poll if timeout is None else timeout
        deadline = self._clock() + limit
        with self._condition:
            while not self._heard and not self._closed.is_set():
                left = deadline - self._clock()
                if left <= 0:
                    break
                self._condition.wait(left)
            heard, self._heard = self._heard, set()
        return heard

    def close(self) -> None:
        self._closed.set()
        with self._condition:
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=_LISTEN_SLICE * 4)
            self._thread = None

    def __enter__(self) -> ChangeListener:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _hear(self, topic: str) -> None:
        with self._condition:
            self._heard.add(topic)
            self._condition.notify_all()

    def _listen(self) -> None:
        import psycopg

        pause = 0.1
        while not self._closed.is_set():
            try:
                with psycopg.connect(_conninfo(self.url), autocommit=True,
                                     connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._hear(RESYNC)
                    pause = 0.1
                    while not self._closed.is_set():
                        for note in connection.notifies(timeout=_LISTEN_SLICE):
                            self._hear(note.payload)
            except psycopg.Error as exc:
                if self._closed.is_set():
                    break
                self.connected.clear()
                self.reconnects += 1
                log.warning("change listener lost its connection (%s); polling until it is "
                            "back", type(exc).__name__)
                self._closed.wait(pause)
                pause = min(pause * 2, _RECONNECT_MAX)
        self.connected.clear()
