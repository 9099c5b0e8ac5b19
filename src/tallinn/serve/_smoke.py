"""`tallinn smoke URL`: check a deployed server the way a client would use it.

Health and readiness, the MCP handshake, the prompt list, every `critical` command rendered
with its first example, the component resources, and a clean -32602 for a bad request.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

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


async def run_smoke(url: str, *, token: str | None = None, timeout: float = 10.0) -> list[Check]:
    """Run every check against the server at `url`; never raises for a server problem."""
    base, mcp_url = endpoints(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    checks: list[Check] = []
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout)) as http:
        checks.append(await _probe(http, f"{base}/health", "GET /health"))
        checks.append(await _probe(http, f"{base}/ready", "GET /ready"))
        try:
            with anyio.fail_after(timeout * 4):
                await _mcp_checks(http, mcp_url, checks)
        except TimeoutError:
            checks.append(Check("MCP session", False, f"timed out after {timeout * 4:g} s"))
        except Exception as exc:
            checks.append(Check("MCP session", False, _short(exc)))
    return checks


async def _probe(http: httpx2.AsyncClient, url: str, name: str) -> Check:
    try:
        response = await http.get(url)
    except httpx2.HTTPError as exc:
        return Check(name, False, _short(exc))
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        reasons = body.get("reasons") if isinstance(body, dict) else None
        return Check(name, False, f"HTTP {response.status_code} {reasons or ''}".strip())
    if name.endswith("/health") and isinstance(body, dict):
        return Check(
            name,
            True,
            f"{body.get('library')}: {body.get('commands')} commands, "
            f"version {body.get('version')}",
        )
    detail = "ready"
    if isinstance(body, dict) and body.get("reload_error"):
        detail = f"ready, last reload refused ({len(body['reload_error'])} problem(s))"
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
            Check("prompts/list", bool(prompts.prompts), f"{len(prompts.prompts)} prompts")
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
    return f"{len(text)} characters"


async def _attempt(name: str, step: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await step())
    except Exception as exc:
        return Check(name, False, _short(exc))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
