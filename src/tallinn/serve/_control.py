"""The rollout controller inside the servers: the one replica that leads decides every rollout.

    status = ControllerStatus(tick=5.0)          # shown by /ready as its "controller" block
    async with anyio.create_task_group() as tg:
        await tg.start(partial(run_controller, store, stop, tick=5.0, status=status))

Every `tick` seconds each replica tries to lead (`tallinn.ops.leader.Leadership`: an advisory
lock on PostgreSQL, a file lock beside a SQLite file). The leader reads the rollouts under
way and calls `store.rollouts.tick(channel)` for each one that is due: one whose last
decision changed nothing (hold) is decided again at the decision's `next_due` (the plan's
`check_every`, or the end of the hold if sooner), a paused one only once a person changed it.
Every store call runs on a worker thread, off the event loop.

A decision that changed something (advance, complete, roll back, pause) is logged; a person
who acted meanwhile (`RolloutConflictError`) is normal and logged at info; any other failure
(the store down, a channel moved under a completing rollout) is kept in `problem` for /ready
and tried again at the next tick: the controller never stops the server.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from tallinn.ops.errors import StoreError
from tallinn.ops.leader import Leadership
from tallinn.ops.rollout import Action, Decision
from tallinn.ops.rollouts import Rollout, RolloutConflictError

if TYPE_CHECKING:
    from tallinn.ops.store import Store
    from tallinn.serve._config import ServeConfig

log = logging.getLogger("tallinn.serve")

PRUNE_EVERY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long the leader keeps each record (`[serve] *_retention_days`)."""

    errors: timedelta  # error groups and samples, since last seen
    events: timedelta  # security events
    minutes: timedelta  # signal minutes (never those of a step under way)
    hours: timedelta  # the hourly sums the charts over days read

    @classmethod
    def of(cls, config: ServeConfig) -> Retention:
        return cls(timedelta(days=config.error_retention_days),
                   timedelta(days=config.event_retention_days),
                   timedelta(days=config.minute_retention_days),
                   timedelta(days=config.hour_retention_days))


DEFAULT_CONTROLLER_TICK = 5.0
# The decisions that change a rollout; a hold or a wait writes nothing.
CHANGES = frozenset({Action.ADVANCE, Action.COMPLETE, Action.ROLL_BACK, Action.PAUSE})


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class ControllerStatus:
    """What the controller of this replica is doing, for `/ready`.

    `leader` says whether this replica leads; `rounds` counts the ticks and `decided` the
    decisions taken, so that tests count work, not time; `decisions` holds the last decision
    per channel; `problem` why the last tick could not do its work (empty when all is well).
    """

    def __init__(self, *, tick: float = DEFAULT_CONTROLLER_TICK,
                 retention: Retention | None = None) -> None:
        self.tick = tick
        if retention is None:  # the settings' defaults
            from tallinn.serve._config import ServeConfig

            retention = Retention.of(ServeConfig())
        self.retention = retention
        self.leader = False
        self.rounds = 0
        self.decided = 0
        self.last_tick: datetime | None = None
        self.decisions: dict[str, dict[str, Any]] = {}
        self.problem = ""
        self.pruned_at: datetime | None = None  # when the leader last pruned old records
        # When each rollout, at the version its last decision saw, is due again (None:
        # only a person moves it on).
        self.due: dict[tuple[int, int], datetime | None] = {}

    def ready_body(self, *, reasons: bool = True) -> dict[str, object]:
        """What `/ready` says about the controller; without the decisions' `reasons` when
        `reasons` is false (a production `/ready` is open to anyone, and a paused rollout's
        reason is a person's words: `tallinn rollout status` and the audit log have them)."""
        decisions = self.decisions if reasons else {
            channel: {key: value for key, value in decision.items() if key != "reasons"}
            for channel, decision in self.decisions.items()}
        body: dict[str, object] = {
            "leader": self.leader,
            "tick_seconds": self.tick,
            "last_tick": _iso(self.last_tick),
            "rounds": self.rounds,
            "decisions": decisions,
        }
        if self.problem:
            body["problem"] = self.problem
        return body

    def record(self, rollout: Rollout, decision: Decision, at: datetime) -> None:
        self.decided += 1
        self.decisions[rollout.channel] = {
            "rollout": rollout.id,
            "action": str(decision.action),
            "share": decision.share,
            "reasons": list(decision.reasons),
            "at": _iso(at),
            "next_due": _iso(decision.next_due),
        }
        if decision.action not in CHANGES:
            self.due[(rollout.id, rollout.version)] = decision.next_due

    def is_due(self, rollout: Rollout, now: datetime) -> bool:
        key = (rollout.id, rollout.version)
        if key not in self.due:
            return True  # never decided at this version: a person or a decision changed it
        due = self.due[key]
        return due is not None and now >= due

    def set_problem(self, problem: str) -> None:
        if problem and problem != self.problem:
            log.warning("rollout controller: %s; trying again in %g s", problem, self.tick)
        elif not problem and self.problem:
            log.info("rollout controller: working again")
        self.problem = problem


async def prune_if_due(store: Store, status: ControllerStatus) -> None:
    """The leader's housekeeping, once every `PRUNE_EVERY`: error groups and samples, security
    events, signal minutes and hourly sums past their `status.retention`."""
    now = store.rollouts.now()
    if status.pruned_at is not None and now - status.pruned_at < PRUNE_EVERY:
        return
    status.pruned_at = now
    keep = status.retention
    try:
        pruned = await anyio.to_thread.run_sync(store.errors.prune, now - keep.errors)
        events = await anyio.to_thread.run_sync(store.security_events.prune_events,
                                                now - keep.events)
        minutes, hours = await anyio.to_thread.run_sync(partial(
            store.rollouts.prune_signals, minutes_before=now - keep.minutes,
            hours_before=now - keep.hours))
    except StoreError as exc:
        # The store is down: the round says so once for everything; prune in an hour.
        log.debug("rollout controller: could not prune old records: %s", _one_line(exc))
        return
    except Exception as exc:  # anything else is news, but never the end of the loop
        log.warning("rollout controller: could not prune old records (again in an hour): "
                    "%s", _one_line(exc))
        return
    if pruned.groups or pruned.samples or events or minutes or hours:
        log.info("rollout controller: pruned %d error group(s), %d sample(s), %d security "
                 "event(s), %d signal minute(s) and %d hourly sum(s) past their retention",
                 pruned.groups, pruned.samples, events, minutes, hours)


async def control_once(store: Store, leadership: Leadership, status: ControllerStatus) -> None:
    """One tick: lead if no one does, and while leading decide every rollout that is due."""
    status.rounds += 1
    status.last_tick = store.rollouts.now()
    leading = await anyio.to_thread.run_sync(leadership.try_acquire)
    if leading != status.leader:
        if leading:
            log.info("rollout controller: this replica leads now")
        else:
            log.info("rollout controller: this replica no longer leads")
            status.due.clear()  # another leader decided meanwhile: decide afresh when back
        status.leader = leading
    if not leading:
        status.set_problem(leadership.problem)
        return
    await prune_if_due(store, status)
    try:
        under_way = await anyio.to_thread.run_sync(store.rollouts.under_way)
    except StoreError as exc:  # the store down: keep serving, try again next tick
        status.set_problem(_one_line(exc))  # it names the store and what it could not do
        return
    live = {(rollout.id, rollout.version) for rollout in under_way}
    status.due = {key: due for key, due in status.due.items() if key in live}
    problems: list[str] = []
    for rollout in under_way:
        now = store.rollouts.now()
        if not status.is_due(rollout, now):
            continue
        try:
            decision = await anyio.to_thread.run_sync(store.rollouts.tick, rollout.channel)
        except RolloutConflictError as exc:
            log.info("rollout controller: %s", _one_line(exc))
            continue
        except Exception as exc:
            problems.append(f"rollout {rollout.id} on {rollout.channel}: {_one_line(exc)}")
            continue
        if decision is None:
            continue  # it ended between the two reads
        status.record(rollout, decision, now)
        if decision.action in CHANGES:
            log.info("rollout controller: rollout %d on %s: %s, %d%% of clients on %s: %s",
                     rollout.id, rollout.channel, decision.action, decision.share,
                     rollout.candidate.label, "; ".join(decision.reasons))
    status.set_problem("; ".join(problems))


async def run_controller(
    store: Store,
    stop: anyio.Event,
    *,
    tick: float = DEFAULT_CONTROLLER_TICK,
    status: ControllerStatus | None = None,
    leadership: Leadership | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run `control_once` every `tick` seconds until `stop` is set; let go of the lead then.

    `status` (one is made when none is given) is what `/ready` shows; `leadership` defaults to
    one on `store`'s database.
    """
    status = status if status is not None else ControllerStatus(tick=tick)
    leadership = leadership if leadership is not None else Leadership(store.engine.url)
    log.info("rollout controller: deciding every %g s while this replica leads", tick)
    task_status.started()
    try:
        while not stop.is_set():
            began = time.monotonic()
            try:
                await control_once(store, leadership, status)
            except Exception as exc:  # a bug must not end the server; say it once, go on
                problem = f"a tick failed: {_one_line(exc)}"
                if problem != status.problem:
                    log.exception("rollout controller: a tick failed")
                status.problem = problem
            with anyio.move_on_after(max(0.0, tick - (time.monotonic() - began))):
                await stop.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(leadership.close)
        status.leader = False
