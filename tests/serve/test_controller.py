"""The rollout controller inside the servers: the leading replica decides the rollouts by
itself; on PostgreSQL one of two servers leads, and the other takes over when it is killed."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from sqlalchemy import Engine, func, select
from tests.ops import conftest as store_fixtures
from tests.serve.conftest import StartProcess
from tests.serve.serve_helpers import ServerProcess, free_port, wait_until
from tests.serve.test_serve_from_store import library_files

from tallinn.ops.leader import Leadership
from tallinn.ops.rollout import Phase, ReleaseTotals, RolloutPlan, SignalBatch, parse_plan
from tallinn.ops.rollout.signals import minute_of
from tallinn.ops.rollouts import Rollouts
from tallinn.ops.store import Store, open_store
from tallinn.serve import ControllerStatus, run_controller
from tallinn.serve._control import control_once

_SEQ = count(1)
pg_database = store_fixtures.pg_database  # a fresh PostgreSQL database, when there is one


def quick_plan(**options: str) -> RolloutPlan:
    """10%, 50%, 100%, holding a second at each step, judged on 100 requests a release,
    decided every second."""
    values = {"steps": "10,50,100", "hold": "1s", "min_requests": "100", "min_ratings": "0",
              **options}
    return replace(parse_plan("2", channel="production", **values),
                   check_every=timedelta(seconds=1))


def seed(store: Store, plan: RolloutPlan | None = None) -> None:
    """Releases 1 and 2, the channel at 1, and a rollout of 2 under way."""
    store.releases.create(library_files("Hello"), actor="test", version="1")
    store.releases.create(library_files("Good morning"), actor="test", version="2")
    store.channels.promote("1", actor="test", reason="first release")
    store.rollouts.start(plan or quick_plan(), actor="test", reason="a warmer greeting")


def feed(store: Store, *, requests: int = 500) -> None:
    """What the replicas would flush: healthy traffic for both releases in the current step's
    first whole minute (the window's minutes start there)."""
    rollout = store.rollouts.active("production")
    assert rollout is not None
    since = rollout.state.step_started_at
    minute = minute_of(since) + timedelta(minutes=1)
    store.rollouts.record_signals([
        SignalBatch("test", next(_SEQ), release.id, minute, ReleaseTotals(requests=requests))
        for release in (rollout.stable, rollout.candidate)])


def by_controller(store: Store, action: str) -> list[Any]:
    return [entry for entry in store.audit_log.entries()
            if entry.actor == "controller" and entry.action == action]


def ready(server: ServerProcess) -> dict[str, Any]:
    return dict(httpx2.get(f"{server.url}/ready", timeout=5).json())


# -- a real server --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_server_advances_a_rollout_by_itself(tmp_path: Path,
                                               serve_process: StartProcess) -> None:
    """A `--from-store` server leads alone and takes the rollout through its steps as the
    signals come in, to completion, then serves the candidate; /ready shows the decisions."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        seed(store)
        feed(store)
        server = serve_process(tmp_path, "--from-store", "--store-poll", "0.2",
                               "--controller-tick", "0.1")
        wait_until(lambda: by_controller(store, "rollout-advance"), timeout=60, step=0.05)
        rollout = store.rollouts.active("production")
        assert rollout is not None
        assert rollout.share == 50
        feed(store)
        wait_until(lambda: by_controller(store, "rollout-complete"), timeout=60, step=0.05)
        assert store.channels.current("production").release.version == "2"
        advance = by_controller(store, "rollout-advance")[0]
        assert (advance.from_ref, advance.to_ref) == ("2 at 10%", "2 at 50%")
    body = wait_until(lambda: (b := ready(server))["release"]["version"] == "2" and b,
                      timeout=30, step=0.05)
    controller = body["controller"]
    assert controller["leader"] is True
    assert controller["tick_seconds"] == 0.1
    assert controller["decisions"]["production"]["action"] == "complete"
    assert "problem" not in controller


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_replica_with_no_controller_never_leads(tmp_path: Path,
                                                  serve_process: StartProcess) -> None:
    """`--no-controller`: /ready has no controller block and the lead stays free for others."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        seed(store)
    server = serve_process(tmp_path, "--from-store", "--no-controller")
    assert "controller" not in ready(server)
    with Leadership(url) as other:
        assert other.try_acquire()


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_stdio_server_advances_a_rollout_by_itself(tmp_path: Path) -> None:
    """Over stdio too, a `--from-store` server runs the controller while its client is
    connected: the rollout advances with no one acting."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        seed(store)
        feed(store)
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "tallinn", "serve", "--library", str(tmp_path), "--from-store",
                  "--controller-tick", "0.1"],
            env={**os.environ, "TALLINN_STORE_URL": url})
        async with Client(params, mode="legacy", read_timeout_seconds=30) as client:
            assert [p.name for p in (await client.list_prompts()).prompts] == ["hello"]
            with anyio.fail_after(60):
                while not by_controller(store, "rollout-advance"):
                    await anyio.sleep(0.05)


def test_the_cli_gives_the_controller_its_tick(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path, library_dir: Path) -> None:
    """`tallinn serve --from-store` runs a controller with `--controller-tick`;
    `--no-controller`, or a server not serving from the store, runs none."""
    from tests.serve.test_serve_cli import _capture, runner

    from tallinn.cli import app

    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        seed(store)
    seen = _capture(monkeypatch)
    for args, tick in ((["--from-store", "--controller-tick", "0.5"], 0.5),
                       (["--from-store"], 5.0), (["--from-store", "--no-controller"], None),
                       (["--library", str(library_dir), "--no-reload"], None)):
        for transport in ([], ["--http", "--port", str(free_port())]):
            result = runner.invoke(app, ["serve", "--store", url, *transport, *args])
            assert result.exit_code == 0, result.output
            controller = seen["controller"]
            assert (None if controller is None else controller.tick) == tick, args


@pytest.mark.parametrize(("value", "said"), [
    (0.01, "[serve] controller_tick must be at least 0.05, got 0.01"),
    (4000, "[serve] controller_tick must be at most 3600, got 4000"),
    ("5s", "[serve] controller_tick must be a number of seconds, got '5s'"),
])
def test_controller_tick_is_bounded(value: object, said: str) -> None:
    """`[serve] controller_tick` is checked with the other bounds: from 0.05 to 3600 seconds,
    5 by default, and the option wins over the table."""
    from tallinn.serve import ConfigError, resolve

    with pytest.raises(ConfigError) as raised:
        resolve({"controller_tick": value})
    assert str(raised.value) == said
    assert resolve({}).controller_tick == 5.0
    assert resolve({"controller_tick": 7}, controller_tick=0.5).controller_tick == 0.5


# -- two servers on PostgreSQL --------------------------------------------------------------


@pytest.fixture
def pg_servers() -> Iterator[Callable[[Path, str], ServerProcess]]:
    started: list[ServerProcess] = []

    def start(library: Path, url: str) -> ServerProcess:
        server = ServerProcess(["--library", str(library), "--from-store", "--store-poll",
                                "0.2", "--controller-tick", "0.1"],
                               {"TALLINN_STORE_URL": url}, free_port())
        started.append(server)
        server.wait_healthy(timeout=60)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_one_of_two_postgresql_servers_leads_and_the_other_takes_over(
    tmp_path: Path, pg_database: str, pg_servers: Callable[[Path, str], ServerProcess]
) -> None:
    """Two servers on one PostgreSQL: exactly one leads (its /ready says so); SIGKILLed, the
    other leads and goes on deciding: it advances the rollout (takeover time printed)."""
    with open_store(pg_database) as store:
        seed(store)
        servers = [pg_servers(tmp_path, pg_database), pg_servers(tmp_path, pg_database)]

        def leaders() -> list[bool] | None:
            bodies = [ready(server)["controller"] for server in servers]
            if any(body["rounds"] < 3 for body in bodies):
                return None  # both have tried to lead a few times
            return [body["leader"] for body in bodies]

        roles = wait_until(leaders, timeout=60, step=0.05)
        assert sorted(roles) == [False, True]
        leader, other = (servers[0], servers[1]) if roles[0] else (servers[1], servers[0])
        assert ready(leader)["controller"]["decisions"]["production"]["action"] == "hold"
        assert not by_controller(store, "rollout-advance")

        sent = time.monotonic()
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(timeout=30)
        wait_until(lambda: ready(other)["controller"]["leader"], timeout=60, step=0.02)
        print(f"two servers on PostgreSQL: the other leads {time.monotonic() - sent:.3f} s "
              "after SIGKILL")
        feed(store)
        wait_until(lambda: by_controller(store, "rollout-advance"), timeout=60, step=0.05)
        rounds = ready(other)["controller"]["rounds"]
        wait_until(lambda: ready(other)["controller"]["rounds"] > rounds, timeout=30)


# -- the controller's tick, in this process -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[Store, Clock]]:
    clock = Clock()
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened, \
            Store(opened.engine, clock=clock) as store:
        yield store, clock


async def run_rounds(store: Store, status: ControllerStatus, rounds: int) -> None:
    """Run the controller until it has ticked `rounds` times (at most 30 s), then stop it."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        await tg.start(lambda task_status: run_controller(
            store, stop, tick=status.tick, status=status, task_status=task_status))
        with anyio.fail_after(30):
            while status.rounds < rounds:
                await anyio.sleep(0.01)
        stop.set()


def tick_once(store: Store, status: ControllerStatus) -> None:
    """One tick of the controller, leading on `store`'s database."""

    async def once() -> None:
        with Leadership(store.engine.url) as leadership:
            await control_once(store, leadership, status)

    anyio.run(once)


def test_a_hold_is_decided_again_only_when_it_is_due(clocked: tuple[Store, Clock]) -> None:
    """A rollout that holds (its sample is short) is not decided again before its decision's
    `next_due`, and is once the store's clock passes it."""
    store, clock = clocked
    seed(store)
    status = ControllerStatus(tick=1)
    tick_once(store, status)
    assert status.decided == 1
    tick_once(store, status)
    tick_once(store, status)
    assert (status.decided, status.rounds) == (1, 3)
    clock.now += timedelta(seconds=1)
    tick_once(store, status)
    assert status.decided == 2
    assert status.decisions["production"]["action"] == "hold"
    assert status.leader
    assert not status.problem


def test_a_paused_rollout_waits_until_a_person_resumes_it(
        clocked: tuple[Store, Clock]) -> None:
    """A paused rollout is decided once (wait), then not again until a person changes it."""
    store, clock = clocked
    seed(store)
    store.rollouts.pause("production", actor="bob", reason="looks odd")
    status = ControllerStatus(tick=1)
    tick_once(store, status)
    clock.now += timedelta(days=1)
    tick_once(store, status)
    assert status.decided == 1
    store.rollouts.resume("production", actor="bob", reason="fine after all")
    tick_once(store, status)
    assert status.decided == 2
    assert [d["action"] for d in status.decisions.values()] == ["hold"]


class PersonActsMeanwhile(Rollouts):
    """The store's rollouts, with a person pausing the rollout while the controller reads
    its signals: the race between the read and the compare-and-set, made certain."""

    def __init__(self, store: Store, engine: Engine) -> None:
        super().__init__(store.database, store.audit_log, store.releases, store.channels,
                         clock=store.rollouts.now)
        self._person = Store(engine)

    def window(self, rollout: Any, until: datetime | None = None) -> Any:
        if rollout.state.phase is Phase.RUNNING:
            self._person.rollouts.pause("production", actor="bob", reason="looks odd")
        return super().window(rollout, until)


def test_a_person_acting_meanwhile_is_normal(clocked: tuple[Store, Clock],
                                              caplog: pytest.LogCaptureFixture) -> None:
    """A decision overtaken by a person's change is not applied, is logged at info and is no
    problem; the rollout stays as the person left it."""
    store, clock = clocked
    seed(store)
    feed(store)
    clock.now += timedelta(minutes=5)
    store.rollouts = PersonActsMeanwhile(store, store.engine)
    status = ControllerStatus(tick=1)
    with caplog.at_level(logging.INFO, logger="tallinn.serve"):
        tick_once(store, status)
    assert "changed meanwhile" in caplog.text
    assert not status.problem
    rollout = store.rollouts.active("production")
    assert rollout is not None
    assert rollout.state.phase is Phase.PAUSED
    assert not by_controller(store, "rollout-advance")


def test_a_store_that_fails_is_a_problem_and_the_controller_goes_on(
        clocked: tuple[Store, Clock], caplog: pytest.LogCaptureFixture) -> None:
    """With the store closed under it, each tick says why in `problem` and the loop keeps
    ticking until stopped; then it lets go of the lead."""
    store, _ = clocked
    seed(store)
    store.close()
    status = ControllerStatus(tick=0.05)

    with caplog.at_level(logging.WARNING, logger="tallinn.serve"):
        anyio.run(run_rounds, store, status, 3)
    assert "cannot read the rollouts under way" in status.problem
    assert "is closed" in status.problem
    assert caplog.text.count("is closed") == 1  # said once, not at every tick
    assert not status.leader
    with Leadership(store.engine.url) as other:
        assert other.try_acquire()


def test_a_production_ready_body_leaves_the_reasons_out(clocked: tuple[Store, Clock]) -> None:
    """`/ready`'s controller block keeps a decision's reasons out when asked (production),
    and has them otherwise."""
    store, _ = clocked
    seed(store)
    store.rollouts.pause("production", actor="bob", reason="Bob's private words")
    status = ControllerStatus(tick=1)
    tick_once(store, status)
    assert "Bob's private words" in str(status.ready_body())
    hidden = status.ready_body(reasons=False)
    assert "Bob's private words" not in str(hidden)
    assert hidden["decisions"] == {"production": {
        key: value for key, value in status.decisions["production"].items()
        if key != "reasons"}}
    assert status.decisions["production"]["action"] == "wait"


def test_a_tick_that_fails_unexpectedly_is_said_once_and_the_loop_goes_on(
        clocked: tuple[Store, Clock], caplog: pytest.LogCaptureFixture) -> None:
    """A stored rollout that cannot be read (its plan is not JSON) makes each tick fail: the
    traceback is logged once, `problem` says why, and the controller keeps ticking."""
    from sqlalchemy import update

    from tallinn.ops.schema import rollouts

    store, _ = clocked
    seed(store)
    with store.engine.begin() as connection:
        connection.execute(update(rollouts).values(plan="{not json"))
    status = ControllerStatus(tick=0.05)

    with caplog.at_level(logging.WARNING, logger="tallinn.serve"):
        anyio.run(run_rounds, store, status, 3)
    assert status.problem.startswith("a tick failed: ")
    assert caplog.text.count("a tick failed") == 1
    assert "Traceback" in caplog.text


def test_the_leader_prunes_old_records_once_an_hour(clocked: tuple[Store, Clock]) -> None:
    """The leading controller removes error groups, security events, signal minutes and
    hourly sums past the retention it was given, at its first round and then at most once an
    hour."""
    from tallinn.ops.error_log import ErrorEvent
    from tallinn.ops.rollout import ReleaseTotals, SignalBatch
    from tallinn.ops.rollout.signals import minute_of
    from tallinn.ops.schema import release_hours, rollout_signals
    from tallinn.serve._control import PRUNE_EVERY, Retention

    store, clock = clocked
    day = timedelta(days=1)
    keep = Retention(errors=10 * day, events=5 * day, minutes=2 * day, hours=20 * day)
    release = store.releases.create({"tallinn.toml": b"pruned"}, actor="test").id
    store.errors.record([ErrorEvent.capture("boom", at=clock.now - 11 * day, where="x",
                                            error_class="E")])
    store.errors.record([ErrorEvent.capture("bang", at=clock.now - 2 * day, where="y",
                                            error_class="E")])
    store.rollouts.record_signals([
        SignalBatch("r", seq, release, minute_of(clock.now - age * day), ReleaseTotals(1))
        for seq, age in enumerate((25, 3, 1))])
    store.security_events.record_event("auth_failure", client="ip:1", detail="old")
    clock.now += 6 * day  # the event is old now; the signals are 31, 9 and 7 days old
    status = ControllerStatus(tick=1, retention=keep)
    tick_once(store, status)
    assert [g.where for g in store.errors.groups()] == ["y"]  # seen 8 days ago, kept 10
    assert store.security_events.events() == []
    with store.database.transaction("read") as connection:
        assert connection.execute(select(func.count()).select_from(rollout_signals)).scalar() == 0
        hours = connection.execute(select(func.count()).select_from(release_hours)).scalar()
    assert hours == 2  # the 9- and 7-day-old hours are kept 20 days; the 31-day-old one went
    store.errors.record([ErrorEvent.capture("boom", at=clock.now - 11 * day, where="x",
                                            error_class="E")])
    clock.now += PRUNE_EVERY / 2
    tick_once(store, status)
    assert len(store.errors.groups()) == 2  # not yet: pruned half an hour ago
    clock.now += PRUNE_EVERY
    tick_once(store, status)
    assert [g.where for g in store.errors.groups()] == ["y"]
