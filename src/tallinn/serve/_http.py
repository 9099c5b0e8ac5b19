"""The HTTP app: streamable HTTP MCP at /mcp beside /health, /ready and /metrics.

`/mcp` sits behind `McpGuard`: body size, then (in production) a bearer token, then the
per-client rate limit, then the body itself, read within `body_timeout`, and a check that its
JSON-RPC id is not already in flight on the session. Host and Origin headers are checked by the
SDK's DNS-rebinding protection. `/health`, `/ready` and `/metrics` are open: they are for
probes and scrapers, and tell nothing a token protects. The OAuth discovery URLs that MCP
clients probe after a 401 are answered with a JSON error saying that this server takes a
bearer token instead.

In production, error bodies are short fixed strings: the SDK's own parse and validation errors
quote the input and the pydantic version, so their text and `data` are replaced on the way out
(the detail goes to the log at debug level).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from mcp import types
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tallinn import __version__
from tallinn.ops.rollout.assign import client_identity
from tallinn.ops.rollout.errors import ClientHeaderError
from tallinn.serve._config import ServeConfig
from tallinn.serve._events import (
    CachesTokens,
    EventRecorder,
    RecordsErrors,
    ReportsHealth,
    StoreLike,
)
from tallinn.serve._heap import HeapKeeper
from tallinn.serve._ratelimit import RateLimiter, retry_after
from tallinn.serve._registry import Registry
from tallinn.serve._reload import watch_library
from tallinn.serve._server import build_server
from tallinn.serve._split import CLIENT_KEY, HEADER_KEY

if TYPE_CHECKING:
    from tallinn.serve._control import ControllerStatus
    from tallinn.serve._dashboard import Access
    from tallinn.serve._follow import ChannelFollower

log = logging.getLogger("tallinn.serve")

REALM = 'Bearer realm="tallinn"'
HEADER_HINT = (
    'claude mcp add --transport http NAME URL --header "Authorization: Bearer <token>"'
)
_BEARER_ADVICE = "this server takes a bearer token, not OAuth"
# Single quotes: Claude Code prints this body as it is, and JSON would escape double ones.
_SHELL_HINT = "claude mcp add --transport http NAME URL --header 'Authorization: Bearer <token>'"
# What an MCP client probes after a 401 to find an OAuth server; answered, not left to 404.
OAUTH_PATHS = (
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/.well-known/oauth-authorization-server",
    "/.well-known/oauth-authorization-server/mcp",
    "/.well-known/openid-configuration",
    "/.well-known/openid-configuration/mcp",
    "/mcp/.well-known/openid-configuration",
    "/register",
    "/authorize",
    "/token",
)
# The fixed text of each JSON-RPC error code in production error bodies.
FIXED_MESSAGES = {
    types.PARSE_ERROR: "parse error",
    types.INVALID_REQUEST: "invalid request",
    types.METHOD_NOT_FOUND: "method not found",
    types.INVALID_PARAMS: "invalid params",
    types.INTERNAL_ERROR: "internal error",
}
# A message this long is not one of the server's own short messages: it quotes input.
_LONGEST_MESSAGE = 200
_STORE_TIMEOUT = 2.0
_MAX_USERS = 10_000
# How long the guard trusts a token it has just seen verified, without asking the store.
# Short, so it adds at most a second to the store's own cache (1 s) after a revocation.
_RECENT_SECONDS = 1.0


def _json(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": error, "message": message}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def bearer_token(headers: Headers) -> str | None:
    """Given `Authorization: Bearer abc`, return `abc`; anything else is `None`."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


class _StoreDown(Exception):
    """The store could not say whether a token is valid."""


def jsonrpc_error(
    status: int,
    code: int,
    message: str,
    request_id: Any = None,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON-RPC error body with an HTTP status: `{"jsonrpc": "2.0", "id": 7, "error": ...}`."""
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return Response(
        json.dumps(body).encode(),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def quiet_errors(body: bytes, status: int) -> bytes | None:
    """Given a JSON-RPC answer, return it with production-safe errors, or `None` if unchanged.

    Every error loses its `data`; an error sent with an HTTP error status, or with a message
    longer than the server's own, gets the fixed text of its code.
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    messages = payload if isinstance(payload, list) else [payload]
    changed = False
    for message in messages:
        error = message.get("error") if isinstance(message, dict) else None
        if not isinstance(error, dict):
            continue
        if "data" in error:
            del error["data"]
            changed = True
        text = error.get("message")
        if status >= 400 or not isinstance(text, str) or len(text) > _LONGEST_MESSAGE:
            code = error.get("code")
            fixed = FIXED_MESSAGES.get(code, "error") if isinstance(code, int) else "error"
            if text != fixed:
                log.debug("error answered as %r: %.500s", fixed, text)
                error["message"] = fixed
                changed = True
    return json.dumps(payload).encode() if changed else None


async def read_body(receive: Receive, limit: int, timeout: float) -> bytes | int | None:
    """Read a whole request body: the bytes, or 408/413 for too slow/too large, `None` if gone."""
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return 413
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
    return 408


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then whatever the connection says (a disconnect)."""
    given = False

    async def receive_again() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again


def request_id(body: bytes) -> str | None:
    """Given `{"jsonrpc": "2.0", "id": 7, "method": "ping"}`, return `"7"` as the SDK keys it.

    Notifications, responses, batches and bodies that are not JSON have no id to track.
    """
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):  # deep nesting: the SDK answers it as a parse error
        return None
    if isinstance(message, dict) and "method" in message and message.get("id") is not None:
        return str(message["id"])
    return None


class McpGuard:
    """ASGI middleware in front of the MCP endpoint."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: ServeConfig,
        store: StoreLike,
        recorder: EventRecorder,
    ) -> None:
        self.app = app
        self.config = config
        self.store = store
        self.recorder = recorder
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None
        self._cached = store.cached_token if isinstance(store, CachesTokens) else None
        self._users: dict[str, AuthenticatedUser] = {}  # token name -> the principal
        self._recent: dict[str, tuple[str, float]] = {}  # token -> (name, trusted until)
        self._store_error = ""  # the last failure to verify a token, logged once
        # (session id, request id) of every request being answered on a stateful session: the
        # SDK keys its answer streams by id, so a second request with the same id would take
        # the first one's answer and leave the other unanswered.
        self._in_flight: set[tuple[str, str]] = set()
        self._busy = 0  # POSTs to /mcp with their body in, waiting for their answer to start
        self._streams = 0  # open notification and subscription streams
        self.sessions_opened = 0  # answers that gave a client a new session id
        self._working: anyio.Semaphore | None = None  # POSTs the SDK is working on

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - Starlette routes only http here
            await self.app(scope, receive, send)
            return
        # Shed load before doing any work: past `max_requests` requests waiting for their
        # answer to start, another one would queue behind all of them, and so would /health.
        if scope["method"] == "POST" and self._busy >= self.config.max_requests:
            await self._shed("the server is busy; retry shortly", 1)(scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hand a POST whose body has arrived to the SDK, counted until its answer starts.

        A slow body is not counted (the deadlines bound it), nor is a stream once it has
        started (`subscriptions/listen`): only work that is queued for the CPU. At most
        `max_working` of them are in the SDK at once; the others wait, parked, for a place:
        every task the SDK works on takes its turn in each round of the event loop, so the
        cap bounds how long a round, and with it `/health`, can take under any load.
        """
        self._busy += 1
        counted = True
        streaming = False
        opening = not self.config.stateless and not _has_session(scope["headers"])
        if self._working is None:  # made on first use, inside the event loop
            self._working = anyio.Semaphore(self.config.max_working)
        working = self._working
        holding = False

        async def started(message: Message) -> None:
            nonlocal counted, streaming, holding
            if counted and message["type"] == "http.response.start":
                counted = False
                self._busy -= 1
                if holding:
                    holding = False
                    working.release()
                headers = message.get("headers", ())
                if (b"content-type", b"text/event-stream") in headers:
                    streaming = True
                    self._streams += 1
                if opening and message["status"] == 200 and _has_session(headers):
                    self.sessions_opened += 1
            await send(message)

        try:
            await working.acquire()
            holding = True
            await self.app(scope, receive, started)
        finally:
            if counted:
                self._busy -= 1
            if holding:
                working.release()
            if streaming:
                self._streams -= 1

    def _too_large(self, headers: dict[str, str] | None = None) -> Response:
        limit = self.config.max_body_bytes
        message = f"request body is larger than {limit} bytes"
        return _json(413, "request_too_large", message, headers)

    def _shed(self, message: str, retry_seconds: int) -> Response:
        """A 503 for load the server refuses, counted: `Retry-After` says when to come back."""
        self.recorder.metrics.shed.inc()
        headers = {"Retry-After": str(retry_seconds)}
        return jsonrpc_error(503, types.INTERNAL_ERROR, message, headers=headers)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        client = f"ip:{client_ip(scope)}"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.config.max_body_bytes:
            self.recorder.record("request_too_large", client, f"{length} bytes")
            await self._too_large()(scope, receive, send)
            return
        if self.config.production:
            token = bearer_token(headers)
            try:
                name = await self._verify(token) if token else None
            except _StoreDown:
                # Fail closed, but it is not the client's fault: tell it to come back.
                await _json(
                    503,
                    "unavailable",
                    "cannot check tokens right now; try again shortly",
                    {"Retry-After": "5"},
                )(scope, receive, send)
                return
            if name is None:
                if await self._limited(scope, receive, send, client):
                    return
                self.recorder.record(
                    "auth_failure", client, "invalid token" if token else "no bearer token"
                )
                await unauthorized(token is not None)(scope, receive, send)
                return
            client = f"token:{name}"
            # The SDK binds a stateful session to the principal that opened it: a session id
            # presented with another token is answered as if it did not exist.
            scope["user"] = self._user(name)
        if await self._limited(scope, receive, send, client):
            return
        scope[CLIENT_KEY] = client
        named = headers.get("x-tallinn-client")
        if named is not None and named.strip():
            try:
                client_identity(header=named)
            except ClientHeaderError as exc:
                await _json(400, "bad_client_header", str(exc))(scope, receive, send)
                return
            scope[HEADER_KEY] = named
        send = self._observing(send, client)
        if scope["method"] == "GET":  # the notification stream of a session
            if self._streams >= self.config.max_streams:
                await self._shed("too many open streams; retry later", 5)(scope, receive, send)
                return
            self._streams += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self._streams -= 1
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, self.config.max_body_bytes, self.config.body_timeout)
        if body is None:
            return
        if body == 408:
            self.recorder.metrics.connection_dropped("body_timeout")
            log.warning("closed a request from %s whose body was not sent in time", client)
            await _json(
                408,
                "request_timeout",
                f"the request body was not sent within {self.config.body_timeout:g} s",
                {"Connection": "close"},
            )(scope, receive, send)
            return
        if body == 413:
            await self._too_large({"Connection": "close"})(scope, receive, send)
            return
        assert isinstance(body, bytes)
        # `subscriptions/listen` answers with a stream that stays open: a cheap look at the
        # body keeps streams under their cap, so they can never hold every connection.
        if self._streams >= self.config.max_streams and b"subscriptions/listen" in body:
            await self._shed("too many open streams; retry later", 5)(scope, receive, send)
            return
        receive = replay(body, receive)
        session = None if self.config.stateless else headers.get("mcp-session-id")
        rid = request_id(body) if session else None
        if session is None or rid is None:
            await self._answer(scope, receive, send)
            return
        key = (session, rid)
        if key in self._in_flight:
            self.recorder.metrics.duplicate_ids.inc()
            await jsonrpc_error(
                409,
                types.INVALID_REQUEST,
                "a request with this id is already being answered on this session",
                json.loads(body).get("id"),
            )(scope, receive, send)
            return
        self._in_flight.add(key)
        try:
            await self._answer(scope, receive, send)
        finally:
            self._in_flight.discard(key)

    def _user(self, name: str) -> AuthenticatedUser:
        """The principal of token `name`, built once: the SDK only reads it."""
        user = self._users.get(name)
        if user is None:
            if len(self._users) >= _MAX_USERS:
                self._users.clear()
            user = AuthenticatedUser(AccessToken(token="", client_id=name, scopes=[]))
            self._users[name] = user
        return user

    async def _verify(self, token: str) -> str | None:
        # Within a second of its last check a token is trusted from this dict: every request
        # carries it, and even the store's cache (hashing, parsing, a lock) costs 3% of a
        # request. A token the store verified a moment ago is answered from the store's memory,
        # here on the event loop: the round trip to a worker thread costs more than the check.
        now = time.monotonic()
        recent = self._recent.get(token)
        if recent is not None and recent[1] > now:
            return recent[0]
        name = self._cached(token) if self._cached is not None else None
        if name is None:
            try:
                with anyio.fail_after(_STORE_TIMEOUT):
                    name = await anyio.to_thread.run_sync(
                        self.store.verify_token, token, abandon_on_cancel=True
                    )
            except Exception as exc:  # a store that is down fails every request: log news only
                message = str(exc) or f"no answer within {_STORE_TIMEOUT:g} s"
                if message != self._store_error:
                    log.warning("could not verify a token: %s", message)
                    self._store_error = message
                raise _StoreDown from None
            self._store_error = ""
        if name is not None:
            if len(self._recent) >= _MAX_USERS:
                self._recent.clear()
            self._recent[token] = (name, now + _RECENT_SECONDS)
        return name

    async def _limited(self, scope: Scope, receive: Receive, send: Send, client: str) -> bool:
        if self.limiter is None:
            return False
        wait = self.limiter.take(client)
        if not wait:
            return False
        self.recorder.record("rate_limited", client, f"retry after {wait:.2f}s")
        seconds = retry_after(wait)
        await _json(
            429,
            "rate_limited",
            f"too many requests; retry after {seconds} s",
            {"Retry-After": seconds},
        )(scope, receive, send)
        return True

    def _observing(self, send: Send, client: str) -> Send:
        metrics = self.recorder.metrics
        quiet = self.config.production
        held: list[Message] = []  # a JSON answer's start, kept until its body has been checked
        chunks: list[bytes] = []

        async def observe(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 421:
                    metrics.security_event("invalid_host")
                    log.warning("refused a request from %s with a Host header not allowed", client)
                elif status == 403:
                    metrics.security_event("invalid_origin")
                    log.warning("refused a request from %s with an Origin not allowed", client)
                elif status == 413:
                    self.recorder.record("request_too_large", client, "streamed body")
                if quiet and (b"content-type", b"application/json") in message.get("headers", ()):
                    held.append(message)
                    return
            elif held and message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                start, body = held.pop(), b"".join(chunks)
                chunks.clear()
                # An answer with a result is passed on unread; only errors are rewritten.
                if b'"result"' not in body[:256]:
                    quieter = quiet_errors(body, start["status"])
                    if quieter is not None:
                        body = quieter
                        start = {**start, "headers": _with_length(start["headers"], len(body))}
                await send(start)
                message = {"type": "http.response.body", "body": body, "more_body": False}
            await send(message)

        return observe


class HealthFirst:
    """Answers `GET /health` before routing, guards or the MCP stack: nothing a request to
    `/mcp` holds (its token check, its session, its render) is on the way to the probe.

    Any other method on `/health` gets 405, as a route would answer it.
    """

    def __init__(self, app: ASGIApp, *, body: Callable[[], bytes]) -> None:
        self.app = app
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/health":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _json(405, "method_not_allowed", "GET /health", {"Allow": "GET, HEAD"})(
                scope, receive, send
            )
            return
        body = self.body()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})


def _has_session(headers: Any) -> bool:
    return any(name.lower() == b"mcp-session-id" for name, _ in headers)


def _with_length(headers: Any, length: int) -> list[tuple[bytes, bytes]]:
    kept = [(k, v) for k, v in headers if k.lower() != b"content-length"]
    return [*kept, (b"content-length", str(length).encode())]


def unauthorized(token_sent: bool) -> Response:
    """The 401 of `/mcp`: what to send, in the challenge and in the body.

    MCP clients such as Claude Code read a 401 as "log in with OAuth" and report what the
    OAuth discovery answered; the `error_description` and the body name the header instead.
    """
    error = "invalid_token" if token_sent else "invalid_request"
    advice = f"{_BEARER_ADVICE}: send Authorization: Bearer <token>"
    challenge = f'{REALM}, error="{error}", error_description="{advice}"'
    message = "this bearer token is not valid" if token_sent else "a bearer token is required"
    body = {
        "error": "unauthorized",
        "message": f"{message}; send the header Authorization: Bearer <token>",
        "hint": HEADER_HINT,
    }
    return Response(
        json.dumps(body).encode(),
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": challenge},
    )


async def no_oauth(request: Request) -> Response:
    """What the OAuth discovery and registration URLs answer: there is no OAuth here."""
    body = {
        "error": "oauth_not_supported",
        "error_description": f"{_BEARER_ADVICE}: {_SHELL_HINT}",
    }
    return Response(json.dumps(body).encode(), status_code=404, media_type="application/json")


def build_app(
    registry: Registry,
    store: StoreLike,
    config: ServeConfig | None = None,
    *,
    heap: HeapKeeper | None = None,
    follower: ChannelFollower | None = None,
    dashboard: Access | None = None,
    controller: ControllerStatus | None = None,
) -> Starlette:
    """The Starlette app serving `registry` (which must be loaded) with `config`.

    `heap`, when given, runs the process's full collections while the app runs (a serving
    process passes one; tests and embedders leave the collector as it is). With a `follower`,
    the registry serves a channel of the store and follows it as it moves; with a `controller`
    as well, the rollout controller runs on the follower's store.

    Nothing here runs per request except the guard and the handlers: the library is loaded
    once, the snapshot's MCP views are computed at load, and patterns are compiled up front.
    """
    config = config or ServeConfig()
    metrics = registry.metrics
    recorder = EventRecorder(store, metrics)
    mcp_server = build_server(registry, recorder, config=config)
    manager = StreamableHTTPSessionManager(
        app=mcp_server,
        stateless=config.stateless,
        # One JSON body per POST rather than an SSE stream: no handler sends progress or asks
        # the client anything mid-request, and a body is much cheaper than a stream (see
        # docs/performance.md). Notifications still go out on the GET stream, and
        # `subscriptions/listen` is always a stream.
        json_response=True,
        security_settings=TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=config.host_patterns(),
            allowed_origins=config.origin_patterns(),
        ),
        max_request_body_size=config.max_body_bytes,
        session_idle_timeout=config.session_idle_timeout,
        max_sessions=config.max_sessions,
    )
    # The SDK keeps its sessions in a private dict and has no count to ask for.
    sessions = getattr(manager, "_server_instances", None)
    if isinstance(sessions, dict):
        metrics.sessions.set_function(lambda: len(sessions))
    guard = McpGuard(StreamableHTTPASGIApp(manager), config=config, store=store, recorder=recorder)
    metrics.streams.set_function(lambda: guard._streams)
    if heap is not None and isinstance(sessions, dict):
        heap.ended = lambda: guard.sessions_opened - len(sessions)
    started = time.monotonic()

    def health() -> bytes:
        snapshot = registry.current
        library = snapshot.library if snapshot else None
        return json.dumps(
            {
                "status": "ok",
                "version": __version__,
                "library": library.name if library else None,
                "content_hash": library.content_hash if library else None,
                "commands": len(library.commands) if library else 0,
                "components": len(library.components) if library else 0,
                "loaded_at": _iso(snapshot.loaded_at) if snapshot else None,
                "uptime_seconds": round(time.monotonic() - started, 3),
            },
            separators=(",", ":"),
        ).encode()

    async def ready(request: Request) -> Response:
        body, reasons = await readiness()
        return JSONResponse(body, status_code=503 if reasons else 200)

    async def readiness() -> tuple[dict[str, Any], list[str]]:
        """What /ready says, and why not ready (also kept in the `tallinn_ready` gauge)."""
        reasons: list[str] = []
        snapshot = registry.current
        if snapshot is None:
            reasons.append("no library is loaded")
        store_ok, store_code, store_detail = await _store_health(store)
        if not store_ok:
            reasons.append("the state store does not answer")
        body: dict[str, Any] = {
            "status": "not_ready" if reasons else "ready",
            "library_loaded": snapshot is not None,
            "store": store_ok,
            "reasons": reasons,
        }
        if not store_ok:
            body["store_code"] = store_code
            body["store_error"] = store_detail
        if snapshot is not None:
            body["content_hash"] = snapshot.library.content_hash
            if snapshot.library.errors:
                errors = [str(d) for d in snapshot.library.errors]
                body["library_errors"] = _problems(errors) if config.production else errors
        if registry.reload_error:
            problems = list(registry.reload_error)
            body["reload_error"] = _problems(problems) if config.production else problems
        if follower is not None:
            body["release"] = follower.ready_body()
            if follower.problem and store_ok:
                reasons.append(follower.problem)
                body["status"] = "not_ready"
        if controller is not None:
            body["controller"] = controller.ready_body(reasons=not config.production)
        metrics.ready.set(0 if reasons else 1)
        return body, reasons

    async def metrics_route(request: Request) -> Response:
        await readiness()  # a scrape sees readiness as of now, not as of the last probe
        return Response(metrics.render(), media_type=metrics.content_type)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(recorder.run)
            if heap is not None:
                await tg.start(heap.run)
            if config.reload:
                await tg.start(watch_library, registry, stop)
            if follower is None and isinstance(store, RecordsErrors):
                from tallinn.serve._failures import keep_served_errors

                await tg.start(keep_served_errors, mcp_server.serving, store.record_errors)
            if follower is not None:
                from tallinn.serve._follow import follow_channel

                await tg.start(follow_channel, follower, registry, stop, mcp_server.serving)
                if controller is not None:
                    from tallinn.serve._control import run_controller

                    await tg.start(partial(run_controller, follower.store, stop,
                                           tick=controller.tick, status=controller))
            async with manager.run():
                yield
            stop.set()
            tg.cancel_scope.cancel()

    pages = []
    if follower is not None and dashboard is not None:
        from tallinn.serve._dashboard import dashboard_app

        pages.append(Mount("/dashboard", app=dashboard_app(follower.store, follower.channel,
                                                           access=dashboard)))
    app = Starlette(
        routes=[
            *pages,
            Route("/mcp", endpoint=guard),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
            *(Route(path, no_oauth, methods=["GET", "POST"]) for path in OAUTH_PATHS),
        ],
        lifespan=lifespan,
        middleware=[Middleware(HealthFirst, body=health)],
    )
    app.state.registry = registry
    app.state.metrics = metrics
    app.state.server = mcp_server
    app.state.recorder = recorder
    app.state.config = config
    app.state.heap = heap
    return app


async def _store_health(store: StoreLike) -> tuple[bool, str | None, str]:
    """Whether the store answers, and if not, a code and why: `(False, "store_missing", ...)`."""
    try:
        with anyio.fail_after(_STORE_TIMEOUT):
            if isinstance(store, ReportsHealth):
                health = await anyio.to_thread.run_sync(store.health, abandon_on_cancel=True)
                return health.ok, health.code, health.message
            if await anyio.to_thread.run_sync(store.ping, abandon_on_cancel=True):
                return True, None, ""
            return False, "store_unavailable", "no answer"
    except TimeoutError:
        return False, "store_timeout", f"no answer within {_STORE_TIMEOUT:g} s"
    except Exception as exc:  # a store that raises is one that does not answer
        log.warning("state store check failed: %s", exc)
        return False, "store_unavailable", str(exc)


_CODE = re.compile(r":\d+:\d+: ([A-Z]+[0-9]+) ")


def _problems(lines: list[str]) -> dict[str, Any]:
    """Given `["a.md:3:1: V101 ...", ...]`, return `{"count": 1, "codes": ["V101"]}`.

    In production `/ready` is open to anyone, and a problem's text may quote a file or a
    library value: the count and the codes say enough to alert on, the log has the rest.
    """
    codes = sorted({m.group(1) for line in lines if (m := _CODE.search(line))})
    return {"count": len(lines), "codes": codes}


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
