"""/dashboard's routes in-process, on a real SQLite store: bounds on what a client sends, the
data endpoint's window, the open mode for a laptop, and a store that does not answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from tests.serve.test_rollout_serving import release_files

from tallinn.ops.store import Store, open_store
from tallinn.serve._dashboard import Access, dashboard_access, dashboard_app

SECRET = "s" * 40


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        opened.releases.create(release_files("Hello"), actor="test", version="1")
        opened.releases.create(release_files("Hi"), actor="test", version="2")
        opened.channels.promote("1", actor="test", reason="first", channel="production")
        opened.channels.promote("2", actor="test", reason="second", channel="production")
        yield opened


def client(store: Store, *, production: bool) -> httpx2.AsyncClient:
    app = dashboard_app(store, "production",
                        access=dashboard_access(store, production=production, secret=SECRET))
    from starlette.applications import Starlette
    from starlette.routing import Mount

    return httpx2.AsyncClient(transport=httpx2.ASGITransport(
        app=Starlette(routes=[Mount("/dashboard", app=app)])), base_url="http://dashboard.example.com")


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrftoken" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_outside_production_the_page_is_open_and_acts_as_local(store: Store) -> None:
    """Without production, the page needs no sign-in, the data is there, and a rollback from
    the form (with its CSRF token) moves the channel, recorded as `local`."""

    async def run() -> None:
        async with client(store, production=False) as http:
            page = await http.get("/dashboard/")
            assert page.status_code == 200
            assert "local (operator)" in page.text
            assert page.headers["content-security-policy"].startswith("default-src 'self'")
            data = (await http.get("/dashboard/data?hours=abc")).json()
            assert (data["hours"], data["stable"]["version"]) == (6.0, "2")
            assert (await http.get("/dashboard/data?hours=99999")).json()["hours"] == 720
            acted = await http.post("/dashboard/action", data={
                "csrftoken": csrf_of(page.text), "action": "rollback", "reason": "worse"})
            assert acted.status_code == 303
            assert "rolled%20back" in acted.headers["location"]
            refused = await http.post("/dashboard/action", data={
                "csrftoken": csrf_of(page.text), "action": "pause", "reason": "x"})
            assert "failed=" in refused.headers["location"]  # no rollout under way
            empty = await http.post("/dashboard/action", data={
                "csrftoken": csrf_of(page.text), "action": "rollback", "reason": " "})
            assert "failed=" in empty.headers["location"]

    anyio.run(run)
    last = store.audit_log.entries()[-1]
    assert (last.action, last.actor, last.reason) == ("rollback", "local", "worse")
    assert store.channels.current("production").release.version == "1"


def test_a_form_too_large_or_without_a_length_is_refused_unread(store: Store) -> None:
    """A POST body over 16 KiB is 413, one without Content-Length is 411, before anything
    (asgi-csrf included) reads it."""

    async def run() -> None:
        async with client(store, production=False) as http:
            big = await http.post("/dashboard/sign-in", content=b"token=" + b"x" * 20_000,
                                  headers={"content-type": "application/x-www-form-urlencoded"})
            assert big.status_code == 413

            async def chunks() -> Any:
                yield b"token=abc"

            unknown = await http.post("/dashboard/sign-in", content=chunks(),
                                      headers={"content-type":
                                               "application/x-www-form-urlencoded"})
            assert unknown.status_code == 411

    anyio.run(run)


def test_in_production_nothing_is_shown_before_a_sign_in(store: Store) -> None:
    """In production the page redirects to the sign-in form, the data endpoint is 401, a
    forged cookie opens nothing, and a sign-in without the CSRF token is refused."""

    async def run() -> None:
        async with client(store, production=True) as http:
            page = await http.get("/dashboard/")
            assert (page.status_code, page.headers["location"]) == (303, "/dashboard/sign-in")
            assert (await http.get("/dashboard/data")).status_code == 401
            http.cookies.set("tallinn_session", "forged.value.here")
            assert (await http.get("/dashboard/data")).status_code == 401
            http.cookies.delete("tallinn_session")
            form = await http.get("/dashboard/sign-in")
            assert form.status_code == 200
            token = store.create_token("vera", role="viewer")
            no_csrf = await http.post("/dashboard/sign-in", data={"token": token})
            assert no_csrf.status_code == 403
            signed = await http.post("/dashboard/sign-in",
                                     data={"token": token, "csrftoken": csrf_of(form.text)})
            assert signed.status_code == 303
            cookie = signed.headers["set-cookie"]
            assert "HttpOnly" in cookie
            assert "SameSite=strict" in cookie
            answer = await http.get("/dashboard/data")
            assert answer.status_code == 200, (answer.text, cookie, http.cookies)
            assert answer.json()["user"]["role"] == "viewer"

    anyio.run(run)


def test_a_store_that_does_not_answer_is_said_and_the_page_stays_up(store: Store) -> None:
    """The data endpoint answers 503 with a code, and the page says the store is down."""
    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("database is gone")

    store.channels.current = broken  # type: ignore[method-assign]

    async def run() -> None:
        async with client(store, production=False) as http:
            data = await http.get("/dashboard/data")
            assert (data.status_code, data.json()["error"]) == (503, "store_unavailable")
            page = await http.get("/dashboard/")
            assert page.status_code == 200
            assert 'id="store-down"' in page.text

    anyio.run(run)


def test_access_needs_a_viewer_role() -> None:
    """A reader's role opens nothing; a viewer reads; an operator acts."""
    from tallinn.serve._dashboard import User

    assert not User("r", "reader").can("viewer")
    assert User("v", "viewer").can("viewer")
    assert not User("v", "viewer").can("operator")
    assert User("a", "admin").can("operator")
    assert isinstance(Access(True, lambda t: None, SECRET), Access)
