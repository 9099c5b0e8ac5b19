"""Serve a channel of the state store: the release it points at, followed as it moves.

    store = connect_store(url)
    follower = ChannelFollower(store, "production", poll=2.0)
    registry = Registry(follower.start())    # the channel's release, as a FilesSource
    registry.load()
    ... await tg.start(follow_channel, follower, registry, stop)

The follower waits on a `ChangeListener` (on a worker thread, off the event loop). When its
channel's topic is announced, when the listener says `RESYNC`, or when `poll` seconds passed,
it reads where the channel points (one small query); only when that release is not the one
served does it load the release's files, build them and swap the snapshot in through
`Registry.reload`, so connected clients get list_changed as after a reload. A store that does
not answer leaves the last release serving (`problem` says why, for `/ready`) until a later
poll reads it again; a release whose library has errors is refused as a reload is, and is
not built again until the channel moves on.
"""

from __future__ import annotations

import logging
import time

import anyio
import anyio.abc

from tallinn.library.source import FilesSource
from tallinn.ops.changes import RESYNC, ChangeListener
from tallinn.ops.channels import channel_topic, check_channel
from tallinn.ops.errors import ReleaseError
from tallinn.ops.records import Release
from tallinn.ops.store import Store
from tallinn.serve._registry import Outcome, Registry

log = logging.getLogger("tallinn.serve")

DEFAULT_STORE_POLL = 2.0


class NoRelease(ReleaseError):
    """The channel has no release to serve: `NoRelease("channel staging has no release ...")`."""


def release_source(store: Store, release: Release) -> FilesSource:
    """The stored files of `release`, labelled `release 3 (ab12cd34ef56)`."""
    return FilesSource(store.releases.files(release.id), label=f"release {release.label}")


class ChannelFollower:
    """What a server following `channel` of `store` serves, and why it may be behind.

    `release` is the release served; `problem` is why the channel could not be read or its
    new release not served (empty when all is well); `checks` counts the reads of the
    channel and `builds` the releases built, so that tests count work, not time.
    """

    def __init__(self, store: Store, channel: str, *, poll: float = DEFAULT_STORE_POLL,
                 listen: bool = True) -> None:
        self.store = store
        self.channel = check_channel(channel)
        self.poll = poll
        self.listen = listen
        self.release: Release | None = None
        self.problem = ""
        self.checks = 0
        self.builds = 0
        self._refused: str | None = None

    def start(self) -> FilesSource:
        """The source of the release the channel points at now; `NoRelease` when there is none.

        Store errors (`StoreError`) pass through: a replica that cannot read its channel at
        start has nothing to serve.
        """
        state = self.store.channels.current(self.channel)
        if state is None:
            raise NoRelease(
                f"channel {self.channel} has no release to serve: promote one first with "
                f"'tallinn promote RELEASE --channel {self.channel}'")
        self.release = state.release
        self.builds += 1
        return release_source(self.store, state.release)

    @property
    def described(self) -> str:
        """`release 3 (ab12cd34ef56) of channel production`, for the start-up line."""
        shown = self.release.label if self.release else "none"
        return f"release {shown} of channel {self.channel}"

    def ready_body(self) -> dict[str, object]:
        """What `/ready` says about the channel and the release served."""
        release = self.release
        body: dict[str, object] = {
            "channel": self.channel,
            "version": release.version if release else None,
            "id": release.id if release else None,
        }
        if self.problem:
            body["problem"] = self.problem
        return body

    async def check(self, registry: Registry) -> bool:
        """Read the channel; serve its release if it moved. True when a new release is served."""
        self.checks += 1
        try:
            state = await anyio.to_thread.run_sync(self.store.channels.current, self.channel)
        except Exception as exc:  # a store that is down: keep serving, say why, poll again
            self._fail(f"cannot read channel {self.channel} from the store: "
                       f"{' '.join(str(exc).split())}")
            return False
        if state is None or (self.release is not None and state.release.id == self.release.id):
            self._recover()
            return False
        target = state.release
        if target.id == self._refused:
            return False  # built once and refused: wait for the channel to move on
        try:
            source = await anyio.to_thread.run_sync(release_source, self.store, target)
        except Exception as exc:
            self._fail(f"cannot read release {target.label} from the store: "
                       f"{' '.join(str(exc).split())}")
            return False
        self.builds += 1
        result = await registry.reload(source=source)
        if result.outcome is Outcome.REFUSED:
            self._refused = target.id
            self.problem = (f"release {target.label} of channel {self.channel} was refused "
                            f"({len(result.problems)} problem(s)); serving "
                            f"{self.release.label if self.release else 'nothing new'}")
            log.error("%s", self.problem)
            return False
        self.release = target
        self._refused = None
        self.problem = ""
        log.info("now serving release %s of channel %s", target.label, self.channel)
        return True

    def _fail(self, problem: str) -> None:
        if problem != self.problem:
            log.warning("%s; serving release %s until it answers", problem,
                        self.release.label if self.release else "none")
        self.problem = problem

    def _recover(self) -> None:
        if self.problem and self._refused is None:
            log.info("channel %s can be read again", self.channel)
            self.problem = ""


async def follow_channel(
    follower: ChannelFollower,
    registry: Registry,
    stop: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every release `follower`'s channel moves to, until `stop` is set.

    `task_status.started()` is called once the listener runs: a move committed after
    `await tg.start(follow_channel, ...)` is served within one poll at most.
    """
    store_url = follower.store.engine.url
    listener = ChangeListener(store_url, poll=follower.poll)
    if follower.listen:
        listener.start()
    topic = channel_topic(follower.channel)
    mode = "listening and polling" if follower.listen and listener.listens else "polling"
    log.info("following channel %s (%s every %g s)", follower.channel, mode, follower.poll)
    task_status.started()
    last = time.monotonic()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on, stop, tg.cancel_scope)
            while True:
                left = max(0.0, follower.poll - (time.monotonic() - last))
                heard = await anyio.to_thread.run_sync(
                    listener.wait, left, abandon_on_cancel=True)
                due = time.monotonic() - last >= follower.poll
                if due or topic in heard or RESYNC in heard:
                    last = time.monotonic()
                    await follower.check(registry)
    finally:
        listener.close()


async def _cancel_on(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()
