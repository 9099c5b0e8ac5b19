"""Serve a channel of the state store: the release it points at, followed as it moves.

    store = connect_store(url)
    follower = ChannelFollower(store, "production", poll=2.0)
    registry = Registry(follower.start())    # the channel's release, as a FilesSource
    registry.load()
    ... await tg.start(follow_channel, follower, registry, stop)

The follower waits on a `ChangeListener` (on a worker thread, off the event loop). When its
channel's topic is announced, when the listener says `RESYNC`, or when `poll` seconds passed,
it reads where the channel points and the rollout running on it (two small queries); only when
that release is not the one served does it load the release's files, build them and swap the
snapshot in through `Registry.reload`, so connected clients get list_changed as after a
reload. A store that does not answer leaves the last release serving (`problem` says why, for
`/ready`) until a later poll reads it again; a release whose library has errors is refused as
a reload is, and is not built again until the channel moves on.

During a rollout the channel points at the stable release still; the follower builds the
candidate once and hands the rollout's split (its id and the step's share) to `Serving`,
which answers each client from the release its bucket gives it. A step, a pause, an abort or
a rollback changes the split at the next read, and the clients it moves get list_changed.

While it follows, the server counts each release's requests in a `SignalAggregator`, and a
second task writes the finished intervals to the store every `FLUSH_EVERY` seconds (at every
interval when the rollout counts finer), and what is left when the server stops. Batches the
store did not take are kept, bounded, for the next flush.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import anyio
import anyio.abc

from tallinn.library.loader import build_library
from tallinn.library.source import FilesSource
from tallinn.ops.changes import RESYNC, ChangeListener
from tallinn.ops.channels import channel_topic, check_channel
from tallinn.ops.errors import ReleaseError
from tallinn.ops.records import Release
from tallinn.ops.rollout.signals import SignalAggregator
from tallinn.ops.rollouts import Rollout
from tallinn.ops.store import Store
from tallinn.serve._catalog import Snapshot, build_snapshot
from tallinn.serve._failures import (
    FINAL_FLUSH_TIMEOUT,
    FLUSH_EVERY,
    ErrorBuffer,
    replica_name,
    write_errors,
)
from tallinn.serve._registry import Outcome, Registry
from tallinn.serve._split import Serving, Split

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
        self.rollout: Rollout | None = None
        self.serving: Serving | None = None
        self.signals = SignalAggregator(replica_name(), store.rollouts.now)
        self.errors = ErrorBuffer(self.signals.replica, store.rollouts.now)
        self.flushed = 0
        self._refused: str | None = None
        self._candidate: tuple[str, Snapshot] | None = None
        self._refused_candidate: str | None = None

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
        rollout = self.rollout
        split = self.serving.split if self.serving is not None else None
        if rollout is not None:
            body["rollout"] = {
                "id": rollout.id, "phase": str(rollout.state.phase),
                "share": split.share if split is not None else 0,
                "stable": rollout.stable.version, "candidate": rollout.candidate.version,
                "candidate_id": rollout.candidate.id,
            }
        if self.problem:
            body["problem"] = self.problem
        return body

    def attach(self, serving: Serving) -> None:
        """Serve through `serving`: it learns the releases, the split, the signals and where
        ratings go."""
        self.serving = serving
        serving.stable_release = self.release.id if self.release else None
        serving.stable_label = self.release.label if self.release else None
        serving.stable_version = self.release.version if self.release else "folder"
        serving.channel = self.channel
        serving.count_releases()
        serving.signals = self.signals
        serving.errors = self.errors
        serving.ratings = self.store.rollouts

    async def check(self, registry: Registry) -> bool:
        """Read the channel; serve its release if it moved. True when a new release is served."""
        self.checks += 1
        try:
            state = await anyio.to_thread.run_sync(self.store.channels.current, self.channel)
            rollout = await anyio.to_thread.run_sync(self.store.rollouts.active, self.channel)
        except Exception as exc:  # a store that is down: keep serving, say why, poll again
            self._fail(f"cannot read channel {self.channel} from the store: "
                       f"{' '.join(str(exc).split())}")
            return False
        if state is None or (self.release is not None and state.release.id == self.release.id):
            self._recover()
            await self._follow_rollout(rollout)
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
        if self.serving is not None:
            self.serving.stable_release = target.id
            self.serving.stable_label = target.label
            self.serving.stable_version = target.version
            self.serving.count_releases()
        log.info("now serving release %s of channel %s", target.label, self.channel)
        await self._follow_rollout(rollout)
        return True

    async def _follow_rollout(self, rollout: Rollout | None) -> None:
        """Split the clients as `rollout` says now (None, or one ended: nobody is split)."""
        serving = self.serving
        self.rollout = rollout
        if serving is None:
            return
        under_way = rollout is not None and rollout.active
        serving.registry.metrics.rollout_state(
            self.channel, str(rollout.state.phase) if rollout is not None and under_way
            else None, rollout.share if rollout is not None and under_way else 0)
        if rollout is None or not rollout.active or self.release is None \
                or rollout.stable.id != self.release.id:
            if serving.split is not None:
                log.info("rollout ended: every client gets release %s",
                         self.release.label if self.release else "none")
            await serving.set_split(None)
            return
        self.signals.resolution = rollout.plan.resolution
        candidate = await self._candidate_snapshot(rollout.candidate)
        if candidate is None:
            await serving.set_split(None)
            return
        before = serving.split
        await serving.set_split(Split(f"r{rollout.id}", rollout.share, candidate,
                                      rollout.candidate.id, rollout.candidate.label,
                                      rollout.candidate.version))
        if before is None or before.share != rollout.share:
            log.info("rollout %d: release %s to %d%% of clients, %s to the rest", rollout.id,
                     rollout.candidate.label, rollout.share, rollout.stable.label)

    async def _candidate_snapshot(self, release: Release) -> Snapshot | None:
        """The candidate's snapshot, built once per release; None when it cannot be served."""
        if self._candidate is not None and self._candidate[0] == release.id:
            return self._candidate[1]
        if release.id == self._refused_candidate:
            return None
        try:
            library = await anyio.to_thread.run_sync(
                lambda: build_library(release_source(self.store, release)))
        except Exception as exc:
            self._fail(f"cannot read candidate release {release.label} from the store: "
                       f"{' '.join(str(exc).split())}")
            return None
        self.builds += 1
        if library.errors:
            self._refused_candidate = release.id
            self.problem = (f"candidate release {release.label} was refused "
                            f"({len(library.errors)} problem(s)); every client gets "
                            f"{self.release.label if self.release else 'the stable release'}")
            log.error("%s", self.problem)
            return None
        snapshot = await anyio.to_thread.run_sync(build_snapshot, library)
        self._candidate = (release.id, snapshot)
        return snapshot

    async def flush(self, *, everything: bool = False) -> int:
        """Write the finished intervals of the signals, and the failed requests, to the store;
        how many signal batches."""
        await write_errors(self.errors, self.store.errors.record)
        batches = self.signals.drain(everything=everything)
        if not batches:
            return 0
        try:
            await anyio.to_thread.run_sync(self.store.rollouts.record_signals, batches)
        except Exception as exc:  # keep them for the next flush; the bound drops the oldest
            self.signals.restore(batches)
            log.warning("could not write %d signal batch(es) to the store, kept for the next "
                        "flush: %s", len(batches), " ".join(str(exc).split()))
            return 0
        self.flushed += len(batches)
        return len(batches)

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
    serving: Serving | None = None,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve every release `follower`'s channel moves to, until `stop` is set.

    With `serving` (the server's), a rollout on the channel splits the clients, each
    release's requests are counted and flushed to the store, and `rate_prompt` is offered.
    `task_status.started()` is called once the listener runs and the channel was read: a
    move committed after `await tg.start(follow_channel, ...)` is served within one poll.
    """
    if serving is not None:
        follower.attach(serving)
    store_url = follower.store.engine.url
    listener = ChangeListener(store_url, poll=follower.poll)
    if follower.listen:
        listener.start()
    topic = channel_topic(follower.channel)
    mode = "listening and polling" if follower.listen and listener.listens else "polling"
    log.info("following channel %s (%s every %g s)", follower.channel, mode, follower.poll)
    if serving is not None:
        await follower.check(registry)  # a rollout under way splits clients from the start
    task_status.started()
    last = time.monotonic()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on, stop, tg.cancel_scope)
            if serving is not None:
                tg.start_soon(_flush_signals, follower)
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
        if serving is not None:
            # What the replica counted last is kept too, within a bound of its own.
            with anyio.CancelScope(shield=True), anyio.move_on_after(FINAL_FLUSH_TIMEOUT):
                await follower.flush(everything=True)


async def _flush_signals(follower: ChannelFollower) -> None:
    """Write the finished intervals every `FLUSH_EVERY` seconds (finer when the rollout's
    resolution is finer)."""
    while True:
        resolution = follower.signals.resolution
        await anyio.sleep(min(FLUSH_EVERY, max(resolution, timedelta(seconds=1))
                              .total_seconds()))
        await follower.flush()


async def _cancel_on(stop: anyio.Event, scope: anyio.CancelScope) -> None:
    await stop.wait()
    scope.cancel()
