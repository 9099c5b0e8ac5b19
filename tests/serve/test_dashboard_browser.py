"""/dashboard in a real headless Chromium (Debian's, installed by scripts/chromium.sh, driven
by Playwright) against a real production server over a store seeded with known figures."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.integration.rollout_cycle import Server
from tests.serve.serve_helpers import free_port, wait_until
from tests.serve.test_rollout_serving import release_files

from tallinn.ops.error_log import ErrorEvent
from tallinn.ops.rollout import RolloutPlan, SignalBatch
from tallinn.ops.rollout.signals import ReleaseTotals, minute_of, window_start
from tallinn.ops.store import Store, open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "chromium.sh")], capture_output=True,
                          text=True, timeout=900, check=False)
    assert done.returncode == 0, f"scripts/chromium.sh failed: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Root in a container has no user namespaces for Chromium's sandbox.
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


class Seeded:
    """A SQLite store: release 1 stable on production, release 2 rolling out at 10%, with
    the signals and ratings of the step so far, and a viewer's and an operator's tokens."""

    def __init__(self, folder: Path) -> None:
        self.url = f"sqlite:///{folder / 'state.db'}"
        with open_store(self.url) as store:
            store.releases.create(release_files("Hello"), actor="test", version="1")
            store.releases.create(release_files("Good morning", extra=True), actor="test",
                                  version="2")
            store.channels.promote("1", actor="test", reason="first", channel="production")
            rollout = store.rollouts.start(
                RolloutPlan("2", channel="production", steps=(10, 50, 100),
                            holds=(timedelta(hours=1),) * 2, resolution=SECOND),
                actor="test", reason="warmer greeting")
            self.stable, self.candidate = rollout.stable.id, rollout.candidate.id
            store.errors.record([ErrorEvent.capture(
                "command 'hello' could not render", at=datetime.now(UTC), where="hello",
                release=self.candidate, error_class="RenderError")])
            self.viewer = store.create_token("vera", role="viewer")
            self.operator = store.create_token("otto", role="operator")
            self.seq = 0
            self.minute = minute_of(rollout.state.step_started_at, SECOND) + 2 * SECOND
            self.signals(store, self.candidate, 40, 2)
            self.signals(store, self.stable, 360, 0)
            # The step's window starts at its first whole second: rate inside it.
            opens = window_start(rollout.state.step_started_at, SECOND)
            wait_until(lambda: datetime.now(UTC) >= opens, timeout=10)
            for stars, comment in ((5, None), (5, None), (2, "too short")):
                store.rollouts.rate(self.candidate, "hello", stars, client="c",
                                    comment=comment)

    def signals(self, store: Store, release: str, requests: int, errors: int) -> None:
        self.seq += 1
        store.rollouts.record_signals([SignalBatch(
            "seed", self.seq, release, self.minute, ReleaseTotals(requests, errors))])


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    return Seeded(tmp_path)


def start(seeded: Seeded, tmp_path: Path, name: str, **env: str) -> Server:
    os.environ.update(env)  # the server process inherits them
    try:
        server = Server(seeded.url, free_port(), tmp_path / f"{name}.log", "--production",
                        "--store-poll", "0.2", "--no-controller")
    finally:
        for key in env:
            del os.environ[key]
    server.wait_healthy()
    return server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(f"{url}/dashboard/")
    assert page.url.endswith("/dashboard/sign-in")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_selector("body[data-live=yes]", timeout=30_000)


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_the_dashboard_shows_the_rollout_updates_live_and_lets_only_operators_act(
    seeded: Seeded, tmp_path: Path, servers: list[Server], browser: Any,
) -> None:
    """Signed in as a viewer, the page shows the seeded figures, a new flush appears without
    a reload, there is no action to take and a forged one is refused; signed out, the page
    needs a sign-in again; an operator rolls back from the page, with a reason, and the audit
    log has it under the operator's name; a post without the CSRF token is refused; and no
    page logged a console error. A screenshot is written."""
    server = start(seeded, tmp_path, "server")
    servers.append(server)
    problems: list[str] = []

    def watch(page: Any) -> Any:
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        return page

    viewer = browser.new_context()
    page = watch(viewer.new_page())
    sign_in(page, server.url, seeded.viewer)
    assert page.text_content("#stable") == "1"
    assert page.text_content("#candidate") == "2"
    assert page.text_content("#phase") == "running"
    assert "10% of clients" in page.text_content("#share")
    candidate = '#figures tr[data-side="candidate"]'
    assert page.text_content(f"{candidate} .requests") == "40"
    assert page.text_content(f"{candidate} .error_rate") == "5.0%"
    assert page.text_content(f"{candidate} .ratings") == "3"
    assert page.text_content(f"{candidate} .satisfaction") == "66.7%"
    assert page.text_content('#figures tr[data-side="stable"] .requests') == "360"
    assert "too short" in page.text_content("#feedback")
    assert "RenderError" in page.text_content("#errors")
    assert "rollout-start" in page.text_content("#audit")
    assert page.query_selector("#act") is None  # a viewer has no buttons

    with open_store(seeded.url) as store:
        seeded.signals(store, seeded.candidate, 60, 0)
    # Playwright's own waits: the page's CSP rightly forbids evaluating strings in it.
    expect(page.locator(f"{candidate} .requests")).to_have_text("100", timeout=30_000)
    assert page.text_content(f"{candidate} .error_rate") == "2.0%"

    token = page.get_attribute("input[name=csrftoken]", "value")
    forged = page.request.post(f"{server.url}/dashboard/action",
                               form={"csrftoken": token, "action": "rollback",
                                     "reason": "a viewer tries"})
    assert forged.status == 403
    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"dashboard screenshot: {shot}")

    page.click("#sign-out")
    page.wait_for_url(f"{server.url}/dashboard/sign-in")
    page.goto(f"{server.url}/dashboard/")
    assert page.url.endswith("/dashboard/sign-in")
    assert page.request.get(f"{server.url}/dashboard/data").status == 401

    operator = browser.new_context()
    page = watch(operator.new_page())
    sign_in(page, server.url, seeded.operator)
    no_token = page.request.post(f"{server.url}/dashboard/action",
                                 form={"action": "pause", "reason": "no csrf token"})
    assert no_token.status == 403
    page.fill("#reason", "the candidate's errors")
    page.click("#action-rollback")
    page.wait_for_selector("#done")
    assert "rolled back" in page.text_content("#done")
    with open_store(seeded.url) as store:
        last = store.audit_log.entries()[-1]
        assert (last.action, last.actor, last.reason) == (
            "rollout-rollback", "otto", "the candidate's errors")
        assert store.rollouts.active("production") is None
    expect(page.locator("#phase")).to_have_text("rolled_back", timeout=30_000)
    assert "otto" in page.text_content("#audit")
    assert problems == []


def test_a_dashboard_session_expires(
    seeded: Seeded, tmp_path: Path, servers: list[Server], browser: Any,
) -> None:
    """With TALLINN_DASHBOARD_SESSION=2, a sign-in stops opening the page after 2 seconds:
    the live page goes back to the sign-in form by itself."""
    server = start(seeded, tmp_path, "short", TALLINN_DASHBOARD_SESSION="2")
    servers.append(server)
    page = browser.new_context().new_page()
    signed_in = datetime.now(UTC)
    sign_in(page, server.url, seeded.viewer)
    page.wait_for_url(f"{server.url}/dashboard/sign-in?expired=1", timeout=60_000)
    assert datetime.now(UTC) - signed_in >= 2 * SECOND
    assert page.request.get(f"{server.url}/dashboard/data").status == 401


def test_a_wrong_token_does_not_sign_in(
    seeded: Seeded, tmp_path: Path, servers: list[Server], browser: Any,
) -> None:
    """A token that is not one, or one of the role reader, is refused with a message."""
    with open_store(seeded.url) as store:
        reader = store.create_token("rita", role="reader")
    server = start(seeded, tmp_path, "server")
    servers.append(server)
    page = browser.new_context().new_page()
    for token in ("not-a-token", reader):
        page.goto(f"{server.url}/dashboard/sign-in")
        page.fill("#token", token)
        page.click("#sign-in")
        page.wait_for_selector("#sign-in-failed")
    wait_until(lambda: page.request.get(f"{server.url}/dashboard/data").status == 401)
