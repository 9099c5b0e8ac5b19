"""The yardstick for bench_serve.py: a bare low-level MCP SDK server, nothing of Tallinn's.

    python benchmarks/bare_server.py --prompts PROMPTS.json stdio
    python benchmarks/bare_server.py --prompts PROMPTS.json http --port 8001 [--stateless] [--json]

`PROMPTS.json` holds what Tallinn would serve for a library, computed by the benchmark:
`{"prompts": [<Prompt>...], "get": {"description": ..., "text": ...}}`. `prompts/list` answers
the list; `prompts/get` answers the one text for any name, as a trivial handler would. The
HTTP server runs under uvicorn with the settings Tallinn's `http_server` uses, with no
middleware, no auth, no metrics and no logging. It imports only the SDK, uvicorn and Starlette.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mcp import types
from mcp.server import Server, ServerRequestContext


def build_server(spec: dict[str, Any]) -> Server[Any]:
    """A low-level server answering prompts/list and prompts/get from `spec`."""
    prompts = [types.Prompt.model_validate(p) for p in spec["prompts"]]
    description = spec["get"]["description"]
    text = spec["get"]["text"]

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=prompts)

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return types.GetPromptResult(
            description=description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )

    return Server("bare", version="0", on_list_prompts=list_prompts, on_get_prompt=get_prompt)


def serve_stdio(server: Server[Any]) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    async def run() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(run)


def serve_http(server: Server[Any], port: int, *, stateless: bool, json_response: bool) -> None:
    import uvicorn
    from mcp.server.streamable_http_manager import (
        StreamableHTTPASGIApp,
        StreamableHTTPSessionManager,
    )
    from starlette.applications import Starlette
    from starlette.routing import Route

    manager = StreamableHTTPSessionManager(
        app=server, stateless=stateless, json_response=json_response
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield

    app = Starlette(
        routes=[Route("/mcp", endpoint=StreamableHTTPASGIApp(manager))], lifespan=lifespan
    )
    # The same settings as tallinn.serve.http_server.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=Path, required=True, help="what to serve (JSON)")
    transports = parser.add_subparsers(dest="transport", required=True)
    transports.add_parser("stdio", help="serve one client over stdin and stdout")
    http = transports.add_parser("http", help="streamable HTTP at http://127.0.0.1:PORT/mcp")
    http.add_argument("--port", type=int, default=8001)
    http.add_argument("--stateless", action="store_true", help="no sessions")
    http.add_argument("--json", action="store_true", help="JSON bodies instead of SSE")
    args = parser.parse_args()
    server = build_server(json.loads(args.prompts.read_text(encoding="utf-8")))
    if args.transport == "stdio":
        serve_stdio(server)
    else:
        serve_http(server, args.port, stateless=args.stateless, json_response=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
