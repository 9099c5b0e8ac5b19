"""`/dashboard`: one page to watch a channel's rollout and act on it.

    app = dashboard_app(store, "production", access=access)   # mounted at /dashboard

The page is rendered on the server (Jinja2, `templates/dashboard.html`) and readable with
JavaScript off; with it on, `static/dashboard.js` reads `/dashboard/data` every few seconds and
redraws the figures and the charts (uPlot, vendored in `static/uplot/`: nothing is fetched from
elsewhere). Operators pause, resume, abort and roll back from a form, each with a reason, and
each lands in the audit log exactly as the CLI's would, under the operator's name.

Access: in production every route but the sign-in form needs a signed-in user. Signing in
exchanges a token (role `viewer` or above) for a session cookie signed with itsdangerous
(HttpOnly, SameSite=Strict, Secure over HTTPS, expiring after `session_seconds`); every POST
is checked against CSRF by asgi-csrf (a signed double-submit token); a viewer sees no action
buttons and the server refuses an action from anyone below `operator`. Outside production
the page is open and whoever uses it acts as `local` with the operator's role: that mode is
for a laptop.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

import anyio
import jinja2
from asgi_csrf import asgi_csrf
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from tallinn.ops.errors import ReleaseError
from tallinn.ops.overview import MAX_HOURS, channel_overview
from tallinn.ops.store import Store
from tallinn.ops.tokens import ROLES as TOKEN_ROLES

log = logging.getLogger("tallinn.serve")

ROLES = TOKEN_ROLES
VIEWER, OPERATOR = "viewer", "operator"
SESSION_COOKIE = "tallinn_session"
CSRF_COOKIE = "tallinn_csrf"
DEFAULT_SESSION_SECONDS = 8 * 3600
MAX_FORM_BYTES = 16 * 1024  # a sign-in or an action: a token or a reason, never more
MAX_REASON = 2000
ACTIONS = ("pause", "resume", "abort", "rollback")
PREFIX = "/dashboard"

# Given a token, the name and role it has, or None: the store's answer.
TokenRoles = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True, slots=True)
class User:
    """Who is looking: `User("alice", "operator")`."""

    name: str
    role: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


LOCAL = User("local", OPERATOR)


@dataclass(frozen=True, slots=True)
class Access:
    """How the dashboard is entered: production needs a sign-in; `secret` signs the cookies
    (the same on every replica, so a session works on all of them)."""

    production: bool
    token_roles: TokenRoles
    secret: str
    session_seconds: int = DEFAULT_SESSION_SECONDS


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tallinn.serve", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )


def _percent(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, float) else "-"


def _milliseconds(value: object) -> str:
    return f"{value:.1f} ms" if isinstance(value, float) else "-"


class BodyLimit:
    """Refuses a POST body over `limit` bytes with 413 before anything reads it (asgi-csrf
    reads a form whole)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_FORM_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if not length.isdigit() or int(length) > self.limit:
            response = Response(f"a form of at most {self.limit} bytes, with its length",
                                status_code=413 if length.isdigit() else 411)
            await response(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # a body longer than its Content-Length said
                return {"type": "http.disconnect"}
            return message

        await self.app(scope, bounded, send)


def dashboard_app(store: Store, channel: str, *, access: Access) -> ASGIApp:
    """The dashboard of `channel`, to mount at `/dashboard`."""
    templates = _templates()
    templates.filters["percent"] = _percent
    templates.filters["ms"] = _milliseconds
    signer = URLSafeTimedSerializer(access.secret, salt="tallinn-dashboard-session")
    static = StaticFiles(directory=str(resources.files("tallinn.serve") / "static"))

    def user_of(request: Request) -> User | None:
        if not access.production:
            return LOCAL
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            data = signer.loads(cookie, max_age=access.session_seconds)
        except BadSignature:  # forged, or expired (SignatureExpired is one)
            return None
        if not isinstance(data, dict) or data.get("role") not in ROLES:
            return None
        return User(str(data.get("name")), str(data["role"]))

    def guarded(handler: Callable[[Request, User], Awaitable[Response]]
                ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            user = user_of(request)
            if user is None or not user.can(VIEWER):
                if request.url.path.endswith("/data"):
                    return JSONResponse({"error": "sign_in", "message": "sign in first"},
                                        status_code=401)
                return RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
            response = await handler(request, user)
            response.headers["Cache-Control"] = "no-store"
            return response
        return endpoint

    def hours_of(request: Request) -> float:
        try:
            hours = float(request.query_params.get("hours", "6"))
        except ValueError:
            return 6.0
        return min(max(hours, 1 / 60), MAX_HOURS)

    async def overview(hours: float) -> dict[str, Any]:
        return await anyio.to_thread.run_sync(
            lambda: channel_overview(store, channel, hours=hours))

    async def page(request: Request, user: User) -> Response:
        hours = hours_of(request)
        try:
            data = await overview(hours)
        except Exception as exc:
            log.warning("dashboard: cannot read the store: %s", exc)
            data = None
        html = templates.get_template("dashboard.html").render(
            data=data, user=user, production=access.production, hours=hours,
            csrftoken=request.scope["csrftoken"](), actions=ACTIONS,
            done=request.query_params.get("done", "")[:300],
            failed=request.query_params.get("failed", "")[:300],
            )
        return _page(html)

    async def data(request: Request, user: User) -> Response:
        try:
            found = await overview(hours_of(request))
        except Exception as exc:
            log.warning("dashboard: cannot read the store: %s", exc)
            return JSONResponse({"error": "store_unavailable",
                                 "message": "the state store does not answer"},
                                status_code=503)
        return JSONResponse({**found, "user": {"name": user.name, "role": user.role}})

    async def act(request: Request, user: User) -> Response:
        if not user.can(OPERATOR):
            log.warning("dashboard: %s (%s) tried an action", user.name, user.role)
            return Response("operators only", status_code=403)
        form = await request.form()
        action, reason = str(form.get("action", "")), str(form.get("reason", "")).strip()
        if action not in ACTIONS:
            return _back(failed=f"unknown action {action[:40]!r}")
        if not reason or len(reason) > MAX_REASON:
            return _back(failed=f"an action needs a reason of 1 to {MAX_REASON} characters")
        try:
            said = await anyio.to_thread.run_sync(_apply, store, channel, action,
                                                  user.name, reason)
        except ReleaseError as exc:  # nothing under way, changed meanwhile, ...
            return _back(failed=str(exc))
        log.info("dashboard: %s by %s: %s", action, user.name, said)
        return _back(done=said)

    async def sign_in_form(request: Request) -> Response:
        html = templates.get_template("sign_in.html").render(
            csrftoken=request.scope["csrftoken"](),
            failed=request.query_params.get("failed", "") == "1",
            expired=request.query_params.get("expired", "") == "1")
        return _page(html)

    async def sign_in(request: Request) -> Response:
        form = await request.form()
        token = str(form.get("token", "")).strip()
        found = await anyio.to_thread.run_sync(access.token_roles, token) if token else None
        if found is None or found[1] not in ROLES or not User(*found).can(VIEWER):
            return RedirectResponse(f"{PREFIX}/sign-in?failed=1", status_code=303)
        name, role = found
        response = RedirectResponse(f"{PREFIX}/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, signer.dumps({"name": name, "role": role}),
            max_age=access.session_seconds, httponly=True, samesite="strict",
            secure=request.url.scheme == "https", path=PREFIX)
        log.info("dashboard: %s signed in (%s)", name, role)
        return response

    async def sign_out(request: Request) -> Response:
        response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    app = Starlette(routes=[
        Route("/", guarded(page), methods=["GET"]),
        Route("/data", guarded(data), methods=["GET"]),
        Route("/action", guarded(act), methods=["POST"]),
        Route("/sign-in", sign_in_form, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Mount("/static", static),
    ])
    protected = {f"{PREFIX}{path}" for path in ("/action", "/sign-in", "/sign-out")}
    return BodyLimit(asgi_csrf(app, signing_secret=access.secret, cookie_name=CSRF_COOKIE,
                               always_protect=protected, cookie_path=PREFIX,
                               cookie_samesite="Strict"))


def _apply(store: Store, channel: str, action: str, actor: str, reason: str) -> str:
    """Do what the CLI's `rollout pause|resume|abort` or `rollback` does; say what changed."""
    if action == "rollback":
        if store.rollouts.active(channel) is not None:
            rollout = store.rollouts.roll_back(channel, actor=actor, reason=reason)
            return (f"rollout {rollout.id} rolled back: every client gets "
                    f"{rollout.stable.label}")
        moved = store.channels.rollback(channel=channel, actor=actor, reason=reason)
        return f"{channel} rolled back to {moved.to_release.label}"
    change = {"pause": store.rollouts.pause, "resume": store.rollouts.resume,
              "abort": store.rollouts.abort}[action]
    rollout = change(channel, actor=actor, reason=reason)
    return f"rollout {rollout.id} {rollout.state.phase} at {rollout.share}%"


def _back(*, done: str = "", failed: str = "") -> Response:
    query = f"done={quote(done)}" if done else f"failed={quote(failed)}"
    return RedirectResponse(f"{PREFIX}/?{query}", status_code=303)


def _page(html: str) -> HTMLResponse:
    response = HTMLResponse(html)
    # Nothing but this server's own files: no inline script, no frame, no other origin.
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


def dashboard_access(store: Store, *, production: bool, secret: str | None,
                     session_seconds: int = DEFAULT_SESSION_SECONDS) -> Access:
    """How the dashboard of a server over `store` is entered; without a `secret`, one made for
    this process (sign-ins then work on this replica only, until it restarts)."""
    if secret is None and production:
        log.warning("TALLINN_DASHBOARD_SECRET is not set: dashboard sign-ins work on this "
                    "replica only, and end when it restarts")

    def token_roles(token: str) -> tuple[str, str] | None:
        found = store.verify_token_role(token)
        return None if found is None else (found.name, found.role)

    return Access(production, token_roles, secret or secrets.token_urlsafe(32), session_seconds)
