"""The whole release and rollout cycle, against real processes, as a team would run it.

Release 1 is created and served from the store; release 2 is rolled out 10% -> 50% -> 100% by
the controller on its own while clients use it and rate it well; release 3, whose prompt the
clients dislike, is rolled back by the controller on its own; a person rolls back by hand;
every step is in the audit log, whose chain verifies. On SQLite with one server, and on
PostgreSQL with two replicas behind nginx, where both replicas give a client the same release
and a rollback reaches both within the measured time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.integration.rollout_cycle import (
    Server,
    Traffic,
    audit,
    clients_for,
    library,
    releases_seen,
    tallinn,
)
from tests.ops.conftest import pg_database  # noqa: F401 (a fixture)
from tests.serve.serve_helpers import free_port, wait_until
from tests.serve.test_dashboard_browser import (  # noqa: F401 (fixtures)
    browser,
    chromium,
    expect,
)
from tests.serve.test_serve_nginx import Nginx, nginx_binary  # noqa: F401 (a fixture)

from tallinn.ops.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# Holds of seconds, signals per second, and samples a few dozen clients fill in a second or
# two: the guards' thresholds are loose enough for such samples to be evidence.
ROLLOUT = ("--steps", "10,50,100", "--hold", "2s", "--resolution", "1s", "--check-every", "1s",
           "--max-error-rate", "50%", "--min-satisfaction", "50%",
           "--min-requests", "20", "--min-ratings", "10")
SERVER = ("--store-poll", "0.2", "--controller-tick", "0.3")


def liked(version: int) -> int:
    """The clients' rating: release 3's prompt is the one they dislike."""
    return 1 if version == 3 else 5


def run_cycle(store: str, tmp_path: Path, servers: list[Server], start: Callable[[], None],
              front: str, page: Any = None) -> None:
    """The cycle through `front` (a server, or nginx before several), checked step by step;
    `start` starts the servers into `servers` once the channel has a release. With a browser
    `page`, the automatic rollback is watched on the first server's /dashboard, live."""
    names = clients_for(["r1", "r2"])
    for version in (1, 2, 3):
        library(tmp_path / f"library-{version}", version)

    tallinn("release", "create", "--library", str(tmp_path / "library-1"), "--version", "1",
            "--notes", "first", store=store)
    tallinn("promote", "1", "--reason", "first release", store=store)
    start()
    urls = [server.url for server in servers]
    for server in servers:
        server.wait_healthy()
    assert set(releases_seen(urls, names[:5]).values()) == {1}

    # Release 2 goes out by itself while the clients like it.
    tallinn("release", "create", "--library", str(tmp_path / "library-2"), "--version", "2",
            store=store)
    with Traffic(front, names, liked) as traffic:
        tallinn("rollout", "start", "2", *ROLLOUT, "--reason", "clearer explanations",
                store=store)
        with open_store(store) as state:
            wait_until(lambda: state.channels.current("production").release.version == "2",
                       timeout=180, step=0.2)
    assert traffic.served[2] > 0
    assert set(releases_seen(urls, names).values()) == {2}

    # Release 3 is disliked: the controller rolls it back by itself.
    tallinn("release", "create", "--library", str(tmp_path / "library-3"), "--version", "3",
            store=store)
    if page is not None:
        page.goto(f"{servers[0].url}/dashboard/")
        page.wait_for_selector("body[data-live=yes]", timeout=30_000)
    with Traffic(front, names, liked) as traffic:
        tallinn("rollout", "start", "3", *ROLLOUT, "--reason", "shorter explanations",
                store=store)
        with open_store(store) as state:
            wait_until(lambda: state.rollouts.latest("production").state.phase == "rolled_back",
                       timeout=180, step=0.2)
            assert state.channels.current("production").release.version == "2"
    if page is not None:  # seen on the page that was opened before: no reload
        expect(page.locator("#phase")).to_have_text("rolled_back", timeout=30_000)
        expect(page.locator('#figures tr[data-side="candidate"] .label')).to_have_text(
            "candidate 3")
        expect(page.locator("#audit")).to_contain_text("rollout-rollback", timeout=30_000)
        assert "controller" in page.text_content("#audit")
        page.screenshot(path=str(tmp_path / "dashboard-rollback.png"), full_page=True)
    assert traffic.served[3] > 0
    wait_until(lambda: set(releases_seen(urls, names).values()) == {2}, timeout=30)

    # A person rolls back to release 1.
    tallinn("rollback", "--reason", "release 2 confused new starters", store=store)
    wait_until(lambda: set(releases_seen(urls, names).values()) == {1}, timeout=30)

    entries = audit(store)
    steps = [(e["action"], e["actor"]) for e in entries]
    assert steps.count(("release", "ops")) == 3
    assert ("promote", "ops") in steps
    assert steps.count(("rollout-start", "ops")) == 2
    assert ("rollout-advance", "controller") in steps
    assert ("rollout-complete", "controller") in steps
    automatic = [e for e in entries if e["action"] == "rollout-rollback"]
    assert [e["actor"] for e in automatic] == ["controller"]
    figures = automatic[0]["details"]["figures"]
    assert any(key.startswith("satisfaction") and value == "broken"
               for key, value in figures.items()), figures
    assert steps[-1] == ("rollback", "ops")
    assert tallinn("audit-log", "verify", store=store).returncode == 0


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def test_the_cycle_on_sqlite_with_one_server(tmp_path: Path, servers: list[Server],
                                             browser: Any) -> None:  # noqa: F811
    """On SQLite, one server follows the store through two rollouts and two rollbacks; its
    dashboard, open in Chromium, shows the automatic rollback as it happens."""
    store = f"sqlite:///{tmp_path / 'state.db'}"
    port = free_port()
    page = browser.new_context().new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    run_cycle(store, tmp_path, servers, lambda: servers.append(
        Server(store, port, tmp_path / "server.log", *SERVER)), f"http://127.0.0.1:{port}",
        page)
    assert problems == []


@pytest.mark.postgres
def test_the_cycle_on_postgresql_with_two_replicas_behind_nginx(
    tmp_path: Path, servers: list[Server], pg_database: str,  # noqa: F811
    nginx_binary: str,  # noqa: F811
) -> None:
    """On PostgreSQL, two stateless replicas behind nginx run the cycle; before the end, a
    client gets the same release from either replica during a rollout, the leader is killed
    and the other takes over, and a rollback reaches both (the time is printed)."""
    store = pg_database
    ports = [free_port(), free_port()]

    def start() -> None:
        for n, port in enumerate(ports, 1):
            servers.append(Server(store, port, tmp_path / f"replica-{n}.log", *SERVER,
                                  "--stateless"))

    nginx = Nginx(nginx_binary, tmp_path / "nginx", ports[0], more=ports[1:])
    try:
        run_cycle(store, tmp_path, servers, start, nginx.url)
        replicas_agree_and_a_rollback_reaches_both(store, tmp_path, servers)
    finally:
        nginx.stop()


def replicas_agree_and_a_rollback_reaches_both(store: str, tmp_path: Path,
                                               servers: list[Server]) -> None:
    """During a rollout both replicas give every client the same release; the leader is
    killed and the other replica leads; a rollback is served by the survivor at once."""
    names = clients_for(["r3"], others=30)
    tallinn("rollout", "start", "2", "--steps", "50,100", "--hold", "1h", "--reason",
            "again", store=store)
    urls = [server.url for server in servers]
    wait_until(lambda: all(s.ready()["release"].get("rollout", {}).get("share") == 50
                           for s in servers), timeout=30)
    seen = releases_seen(urls, names)
    for name in names:
        assert seen[(urls[0], name)] == seen[(urls[1], name)], name
    assert set(seen.values()) == {1, 2}

    leader = next(s for s in servers if s.ready().get("controller", {}).get("leader"))
    other = next(s for s in servers if s is not leader)
    killed = time.monotonic()
    leader.kill()
    wait_until(lambda: other.ready()["controller"]["leader"], timeout=60, step=0.05)
    print(f"takeover: the other replica led {time.monotonic() - killed:.2f} s after SIGKILL")

    with open_store(store) as state:
        moved = time.monotonic()
        state.rollouts.roll_back("production", actor="ops", reason="measure propagation")
        wait_until(lambda: "rollout" not in other.ready()["release"], timeout=30, step=0.005)
        print(f"propagation: rollback served {(time.monotonic() - moved) * 1000:.0f} ms "
              "after its commit")
    assert set(releases_seen([other.url], names).values()) == {1}
    assert httpx2.get(f"{other.url}/ready", timeout=5).json()["status"] == "ready"
