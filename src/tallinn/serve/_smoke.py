"""`tallinn smoke URL`: check a deployed server the way a client would use it.

Health and readiness, the MCP handshake, the prompt list, every `critical` command rendered
with its first example, the component resources, and a clean -32602 for a bad request.
"""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2

from tallinn.wording import plural

MAX_RESOURCES = 20
BAD_PROMPT = "tallinn-smoke-no-such-prompt"
_LEAK = re.compile(r"Traceback|File \"|\bline [0-9]+, in\b|(?:^|[\s'\"(])/(?:[\w.-]+/)+[\w.-]+")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


def endpoints(url: str) -> tuple[str, str]:
    """Given `http://host:8000` or `http://host:8000/mcp`, return (base URL, MCP URL)."""
    base = url.rstrip("/")
    if base.endswith("/mcp"):
        base = base[: -len("/mcp")]
    return base, base + "/mcp"


@dataclass(slots=True)
class _Answers:
    """The status and content type of the last answer from the MCP endpoint: the SDK turns an
    HTTP 401 into "Server returned an error response", so the cause is read from here."""

    mcp_url: str
    token: bool
    status: int | None = None
    content_type: str = ""

    async def record(self, response: httpx2.Response) -> None:
        # An accepted notification (202) or a closed session (DELETE) has no body to judge.
        if (str(response.request.url).rstrip("/") == self.mcp_url
                and response.request.method == "POST" and response.status_code not in (202, 204)):
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "").partition(";")[0]

    def explain(self) -> str | None:
        """Why the MCP endpoint's answers are not MCP, when they say so; else None."""
        if self.status == 401:
            if self.token:
                return "401: the server does not accept this token; check --token"
            return "401: this server needs a token; pass --token (or set TALLINN_TOKEN)"
        if self.status == 403:
            return f"403: the server refused access to {self.mcp_url}"
        if self.status == 404:
            return (f"404: nothing answers MCP at {self.mcp_url}; give the server's address, "
                    "e.g. http://host:8000 or http://host:8000/mcp")
        if self.status is not None and self.status >= 400:
            return f"HTTP {self.status} from {self.mcp_url}"
        if self.status is not None and self.content_type not in _MCP_TYPES:
            shown = self.content_type or "no content type"
            return f"{self.mcp_url} is not an MCP endpoint: it answered {shown}"
        return None


_MCP_TYPES = frozenset({"application/json", "text/event-stream"})


async def run_smoke(url: str, *, token: str | None = None, timeout: float = 10.0) -> list[Check]:
    """Run every check against the server at `url`; never raises for a server problem."""
    base, mcp_url = endpoints(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    checks: list[Check] = []
    answers = _Answers(mcp_url, token=bool(token))
    async with httpx2.AsyncClient(
        headers=headers, timeout=httpx2.Timeout(timeout),
        event_hooks={"response": [answers.record]},
    ) as http:
        checks.append(await _probe(http, f"{base}/health", "GET /health", timeout))
        checks.append(await _probe(http, f"{base}/ready", "GET /ready", timeout))
        try:
            with anyio.fail_after(timeout * 4):
                await _mcp_checks(http, mcp_url, checks)
        except TimeoutError:
            checks.append(Check("MCP session", False, answers.explain() or (
                f"no MCP answer from {mcp_url} within {timeout * 4:g} s; check the URL or "
                "raise --timeout")))
        except Exception as exc:
            checks.append(Check("MCP session", False,
                                answers.explain() or describe(exc, mcp_url, timeout)))
    return checks


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """Given an exception group (nested or not), yield the exceptions inside it; else `exc`."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def describe(exc: BaseException, url: str, timeout: float) -> str:
    """One line a person can act on for a failure to talk to `url`.

    Exception groups (the SDK runs its transport in a task group) are unwrapped to their
    first meaningful exception; connection failures are told apart by their cause.
    """
    found = [e for e in leaves(exc) if not isinstance(e, anyio.get_cancelled_exc_class())]
    first = found[0] if found else exc
    chain = list(_chain(first))
    host = urlsplit(url).hostname or url
    if any(isinstance(e, socket.gaierror) for e in chain):
        return f"cannot find host '{host}' (DNS lookup failed); check the URL"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return f"connection refused at {url}; is the server running on that port?"
    if isinstance(first, httpx2.TimeoutException | TimeoutError):
        return f"no answer from {url} within {timeout:g} s; check the URL or raise --timeout"
    if isinstance(first, httpx2.UnsupportedProtocol):
        return f"{url} is not an http:// or https:// URL; write it as http://{url}"
    if isinstance(first, httpx2.ConnectError):
        return f"cannot connect to {url}: {_short(first)}"
    if isinstance(first, httpx2.HTTPStatusError):
        return f"HTTP {first.response.status_code} from {url}"
    return _short(first)


async def _probe(http: httpx2.AsyncClient, url: str, name: str, timeout: float) -> Check:
    try:
        response = await http.get(url)
    except httpx2.HTTPError as exc:
        return Check(name, False, describe(exc, url, timeout))
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        reasons = body.get("reasons") if isinstance(body, dict) else None
        if response.status_code == 404 and reasons is None:
            return Check(name, False, f"HTTP 404: {url} does not exist; is this a Tallinn "
                                      "server?")
        return Check(name, False, f"HTTP {response.status_code} {reasons or ''}".strip())
    if not isinstance(body, dict):
        kind = response.headers.get("content-type", "").partition(";")[0] or "no content type"
        return Check(name, False, f"{url} answered {kind}, not Tallinn's JSON; is this a "
                                  "Tallinn server?")
    if name.endswith("/health"):
        return Check(
            name,
            True,
            f"{body.get('library')}: {_count(body.get('commands'), 'command')}, "
            f"version {body.get('version')}",
        )
    detail = "ready"
    if isinstance(body, dict) and body.get("reload_error"):
        refused = body["reload_error"]  # a list, or in production {"count": N, "codes": [...]}
        count = refused.get("count") if isinstance(refused, dict) else len(refused)
        detail = f"ready, last reload refused ({plural(int(count or 0), 'problem')})"
    return Check(name, True, detail)


async def _mcp_checks(http: httpx2.AsyncClient, mcp_url: str, checks: list[Check]) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError

    transport = streamable_http_client(mcp_url, http_client=http)
    async with Client(transport, mode="legacy", cache=None) as client:
        info = client.server_info
        checks.append(
            Check(
                "initialize",
                True,
                f"{info.name if info else '?'} {info.version if info else ''}, "
                f"protocol {client.protocol_version}",
            )
        )
        prompts = await client.list_prompts()
        checks.append(
            Check("prompts/list", bool(prompts.prompts), plural(len(prompts.prompts), "prompt"))
        )

        listing = await client.call_tool("list_commands", {})
        commands: list[dict[str, Any]] = []
        if isinstance(listing.structured_content, dict):
            commands = list(listing.structured_content.get("commands", []))
        for command in (c for c in commands if c.get("critical")):
            examples = command.get("examples") or [{}]
            args = {k: _text(v) for k, v in (examples[0].get("args") or {}).items()}
            checks.append(
                await _attempt(
                    f"prompts/get {command['name']}",
                    functools.partial(_get, client, str(command["name"]), args),
                )
            )

        resources = await client.list_resources()
        components = [r for r in resources.resources if r.uri.startswith("tallinn://components/")]
        failed: list[str] = []
        for resource in components[:MAX_RESOURCES]:
            try:
                result = await client.read_resource(resource.uri)
                if not result.contents:
                    failed.append(resource.uri)
            except MCPError as exc:
                failed.append(f"{resource.uri}: {exc.message}")
        read = min(len(components), MAX_RESOURCES)
        checks.append(
            Check(
                "resources/read components",
                not failed,
                f"{read - len(failed)}/{read} read"
                + (f"; failed: {', '.join(failed[:3])}" if failed else ""),
            )
        )

        try:
            await client.get_prompt(BAD_PROMPT, {})
        except MCPError as exc:
            clean = exc.code == -32602 and not _LEAK.search(exc.message + str(exc.data or ""))
            checks.append(
                Check("bad request -> -32602", clean, f"code {exc.code}: {exc.message[:120]}")
            )
        else:
            checks.append(Check("bad request -> -32602", False, "an unknown prompt was accepted"))


async def _get(client: Any, name: str, args: dict[str, str]) -> str:
    result = await client.get_prompt(name, args)
    text = "".join(getattr(m.content, "text", "") for m in result.messages)
    if not text.strip():
        raise ValueError("rendered to empty text")
    return plural(len(text), "character")


async def _attempt(name: str, step: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await step())
    except Exception as exc:
        found = list(leaves(exc))
        return Check(name, False, _short(found[0] if found else exc))


def _count(value: object, word: str) -> str:
    return plural(value, word) if isinstance(value, int) else f"? {word}s"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
