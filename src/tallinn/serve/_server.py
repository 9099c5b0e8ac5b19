"""The MCP server: the SDK's low-level `Server` with handlers over a `Registry`.

Every handler answers from the one snapshot picked for its request (`Serving.served()`: the
registry's, or during a rollout the release the client is assigned to). Problems the client caused
are JSON-RPC errors with code -32602 (INVALID_PARAMS) and a message naming the problem; any
other failure is logged in full and answered with a short "internal error".
"""

from __future__ import annotations

import logging
import time
import weakref
from typing import Any

import anyio
from mcp import types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated,
    ServerEvent,
    ToolsListChanged,
)
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from tallinn import __version__
from tallinn.library import ArgType, RenderError, render
from tallinn.library.errors import ArgumentError
from tallinn.ops.rollout.signals import Outcome as Signal
from tallinn.serve._catalog import Snapshot, UriError, parse_uri
from tallinn.serve._config import ConfigError, ServeConfig, resolve
from tallinn.serve._events import EventRecorder
from tallinn.serve._limits import RenderPool, RequestLimits, check_sizes, render_work
from tallinn.serve._logging import REQUEST, next_request_id
from tallinn.serve._registry import Registry
from tallinn.serve._split import CLIENT_KEY, Served, Serving, Split, assigned, identity_of
from tallinn.serve._tools import (
    RATE_TOOL,
    TOOL_NAMES,
    TOOLS,
    call_tool,
    rating_arguments,
    tool_error,
    tool_work,
)
from tallinn.wording import close_matches

log = logging.getLogger("tallinn.serve")

INVALID_PARAMS = types.INVALID_PARAMS
INTERNAL_ERROR = types.INTERNAL_ERROR
_NOTIFY_ALL = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
_NOTIFY_TIMEOUT = 2.0
_MAX_COMPLETIONS = 100
_MAX_SUGGESTED_NAME = 200
_BOOLEANS = ("false", "true")
_IDENTITY = "tallinn.identity"
# The requests a release's error rate is about; lists and completions cannot fail by the
# release's fault, and a rating is the client's word, not a use.
_COUNTED = frozenset({"prompts/get", "resources/read", "tools/call"})
INSTRUCTIONS = (
    "Prompts of a Tallinn prompt library. Every command is a prompt; its source and every "
    "component are resources under tallinn://. Use search_prompts to find a command and "
    "render_prompt to fill it in."
)


class TallinnServer(Server[dict[str, Any]]):
    """The low-level server, advertising `listChanged` for prompts, resources and tools.

    The streamable HTTP manager builds initialization options itself, with no notification
    options, so the default lives here rather than at each call site.
    """

    notifier: Notifier
    renders: RenderPool
    serving: Serving

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or _NOTIFY_ALL, experimental_capabilities, extensions
        )

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        return super().get_capabilities(
            notification_options or _NOTIFY_ALL,
            experimental_capabilities,
            extensions,
            protocol_version=protocol_version,
        )


class Notifier:
    """Tells connected clients that the lists changed after a reload.

    Handshake-era sessions (stdio, stateful HTTP) get `notifications/*/list_changed` on their
    standalone channel; 2026-era clients get the same events on their `subscriptions/listen`
    streams through the bus.
    """

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self.listen = ListenHandler(self.bus)
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()

    def track(self, ctx: ServerRequestContext[Any, Any]) -> None:
        # The SDK hands handlers a per-request session, not the Connection it wraps (its
        # `Context` type does expose `.connection`, but the runner does not build one yet).
        connection = getattr(ctx.session, "_connection", None)
        if not isinstance(connection, Connection) or not connection.has_standalone_channel:
            return
        if connection not in self._connections:
            # Kept for a rollout's moves: a client's identity does not change on its session.
            connection.state[_IDENTITY] = str(identity_of(ctx))
            self._connections.add(connection)
            connection.exit_stack.callback(self._connections.discard, connection)

    @property
    def sessions(self) -> int:
        return len(self._connections)

    async def changed(self, previous: Snapshot | None, current: Snapshot) -> None:
        events: list[ServerEvent] = [
            PromptsListChanged(),
            ResourcesListChanged(),
            ToolsListChanged(),
        ]
        if previous is not None:
            events += [
                ResourceUpdated(uri)
                for uri, text in previous.texts.items()
                if current.texts.get(uri, text) != text
            ]
        for event in events:
            await self.bus.publish(event)
        connections = list(self._connections)
        if not connections:
            return
        async with anyio.create_task_group() as tg:
            for connection in connections:
                tg.start_soon(self._notify, connection)

    async def moved(self, before: Split | None, after: Split | None) -> None:
        """A rollout's split changed: the sessions now served another release get
        list_changed (2026-era listeners, which are not tied to a client, all get it)."""
        for event in (PromptsListChanged(), ResourcesListChanged(), ToolsListChanged()):
            await self.bus.publish(event)
        moved = [connection for connection in list(self._connections)
                 if _release_of(before, connection) != _release_of(after, connection)]
        if not moved:
            return
        async with anyio.create_task_group() as tg:
            for connection in moved:
                tg.start_soon(self._notify, connection)

    @staticmethod
    async def _notify(connection: Connection) -> None:
        with anyio.move_on_after(_NOTIFY_TIMEOUT):
            try:
                await connection.send_prompt_list_changed()
                await connection.send_resource_list_changed()
                await connection.send_tool_list_changed()
            except Exception:
                log.debug("could not notify a session", exc_info=True)


def _release_of(split: Split | None, connection: Connection) -> str | None:
    """The candidate's id when `split` gives it to the session's client, else None."""
    identity = connection.state.get(_IDENTITY)
    if split is None or not isinstance(identity, str) or not assigned(split, identity):
        return None
    return split.candidate_release


def client_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """Who sent the request: the HTTP guard's client key, else `stdio`."""
    request = ctx.request
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict):
        return str(scope.get(CLIENT_KEY) or "unknown")
    return "stdio"


def invalid(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message)


class Observe:
    """Server middleware: metrics for every request, and no internal detail on the wire."""

    def __init__(self, serving: Serving, notifier: Notifier) -> None:
        self.serving = serving
        self.registry = serving.registry
        self.notifier = notifier

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        method = ctx.method
        if ctx.request_id is None:  # a notification
            if method == "notifications/initialized":
                self.notifier.track(ctx)
            return await call_next(ctx)
        started = time.perf_counter()
        outcome = "ok"
        failure: tuple[str, str] | None = None  # (error class, message) of a failed request
        served, entered = self.serving.enter(ctx)
        logged = REQUEST.set((next_request_id(), served.version))
        try:
            result = await call_next(ctx)
            failed = result.get("isError") if isinstance(result, dict) else getattr(
                result, "is_error", False)
            if failed:
                outcome = "tool_error"
                failure = ("ToolError", _result_text(result))
            return result
        except MCPError as exc:
            outcome = "invalid_params" if exc.code == INVALID_PARAMS else "error"
            failure = ("InvalidParams" if exc.code == INVALID_PARAMS else "MCPError",
                       exc.error.message)
            raise
        except ValidationError as exc:
            outcome = "invalid_params"
            failure = ("InvalidParams", f"{exc.error_count()} invalid parameter(s)")
            raise
        except Exception as exc:
            outcome = "error"
            failure = (type(exc).__name__, str(exc))
            log.exception("internal error answering %s", method)
            raise MCPError(code=INTERNAL_ERROR, message="internal error") from None
        finally:
            REQUEST.reset(logged)
            self.serving.leave(entered)
            if served.fault:
                outcome = "release_error"
            took = time.perf_counter() - started
            self.registry.metrics.observe_request(
                method, self._prompt_label(ctx, served), outcome, took,
                served.version, self.serving.channel,
            )
            self._count(ctx, served, outcome, took)
            if failure is not None and self.serving.errors is not None \
                    and method in _COUNTED:
                if served.fault:
                    failure = ("RenderError", failure[1])
                self.serving.errors.add(ctx, served, *failure)

    def _count(self, ctx: ServerRequestContext[Any, Any], served: Served, outcome: str,
               seconds: float) -> None:
        """Count the request for its release's signals (serving from the store only)."""
        signals = self.serving.signals
        if signals is None or served.release is None or ctx.method not in _COUNTED:
            return
        if ctx.method == "tools/call" and (ctx.params or {}).get("name") == RATE_TOOL.name:
            return
        if outcome in ("release_error", "error"):
            signals.record(served.release, Signal.SERVER_ERROR, seconds)
        elif outcome in ("invalid_params", "tool_error"):
            signals.record(served.release, Signal.CLIENT_ERROR, seconds)
        else:
            signals.record(served.release, Signal.OK, seconds)

    @staticmethod
    def _prompt_label(ctx: ServerRequestContext[Any, Any], served: Served) -> str:
        if ctx.method != "prompts/get" or not ctx.params:
            return ""
        name = ctx.params.get("name")
        if isinstance(name, str) and name in served.snapshot.library.commands:
            return name
        return "_unknown"


def _result_text(result: Any) -> str:
    """The text of a tool result that is an error (a model or its wire form)."""
    content = result.get("content") if isinstance(result, dict) else getattr(result, "content",
                                                                              None)
    for item in content or []:
        text = item.get("text") if isinstance(item, dict) else getattr(item, "text", None)
        if isinstance(text, str):
            return text
    return ""


def _unknown_prompt(snapshot: Snapshot, name: str) -> MCPError:
    close = _close_matches(name, list(snapshot.library.commands))
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    shown = name if len(name) <= 80 else name[:77] + "..."
    return invalid(f"unknown prompt '{shown}'{hint}")


def _close_matches(name: str, names: list[str]) -> list[str]:
    # difflib's work grows with the name's length; no name much longer than any command's
    # is close to one.
    if len(name) > _MAX_SUGGESTED_NAME:
        return []
    return close_matches(name, names, n=3, cutoff=0.6)


def _library_config(registry: Registry) -> ServeConfig:
    """The `[serve]` settings of the served library (stdio has no other source)."""
    try:
        return resolve(registry.snapshot().library.config.table("serve"))
    except ConfigError:  # the CLI refuses such a table before serving; defaults otherwise
        return ServeConfig()


def _envelope(result: types.Result) -> dict[str, Any]:
    """The fields an empty result carries on the wire (cache hints, result type), from the SDK."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


_LIST_PROMPTS = _envelope(types.ListPromptsResult(prompts=[]))
_LIST_RESOURCES = _envelope(types.ListResourcesResult(resources=[]))
_GET_PROMPT = _envelope(types.GetPromptResult(messages=[]))


def build_server(
    registry: Registry,
    recorder: EventRecorder,
    *,
    name: str = "tallinn",
    config: ServeConfig | None = None,
    serving: Serving | None = None,
) -> TallinnServer:
    """Build the low-level MCP server over `registry`; security events go to `recorder`.

    Request limits come from `config`, else from the library's `[serve]` table. `serving`
    (over the same registry) splits clients between two releases during a rollout; without
    it every client gets the registry's library.
    """
    notifier = Notifier()
    serving = serving or Serving(registry)
    config = config or _library_config(registry)
    limits = RequestLimits.of(config)
    renders = RenderPool(config.render_threads)

    async def list_prompts(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> HandlerResult:
        return {**_LIST_PROMPTS, "prompts": list(serving.served().snapshot.prompts)}

    async def get_prompt(
        ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> HandlerResult:
        served = serving.served()
        snapshot = served.snapshot
        command = snapshot.library.commands.get(params.name)
        if command is None:
            raise _unknown_prompt(snapshot, params.name)
        arguments = params.arguments or {}
        too_large = check_sizes(arguments, limits)
        if too_large is not None:
            raise invalid(too_large)
        work = render_work(command, snapshot.library.templates[command.name], arguments)
        try:
            text = await renders.run(work, render, snapshot.library, command, arguments)
        except RenderError as exc:
            # A bad argument is the client's; a command that cannot render is the release's.
            served.fault = not isinstance(exc, ArgumentError)
            raise invalid(str(exc)) from None
        # The wire form of a GetPromptResult: the SDK validates a result against the protocol
        # on its way out, so building the models first would only validate it twice.
        return {
            **_GET_PROMPT,
            "description": command.description,
            "messages": [{"role": "user", "content": {"type": "text", "text": text}}],
        }

    async def list_resources(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> HandlerResult:
        return {**_LIST_RESOURCES, "resources": list(serving.served().snapshot.resources)}

    async def read_resource(
        ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        snapshot = serving.served().snapshot
        uri = params.uri
        try:
            parse_uri(uri)
        except UriError as exc:
            if exc.traversal:
                recorder.record("path_traversal", client_of(ctx), f"resources/read {uri[:200]!r}")
            raise invalid(str(exc)) from None
        text = snapshot.texts.get(uri)
        if text is None:
            raise invalid(f"unknown resource {uri[:120]!r}")
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="text/markdown", text=text)]
        )

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        offered = [*TOOLS, RATE_TOOL] if serving.ratings is not None else list(TOOLS)
        return types.ListToolsResult(tools=offered)

    async def call(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        ratings = serving.ratings
        if params.name == RATE_TOOL.name and ratings is not None:
            return await rate(ctx, ratings, params.arguments or {})
        if params.name not in TOOL_NAMES:
            names = TOOL_NAMES | {RATE_TOOL.name} if ratings is not None else TOOL_NAMES
            raise invalid(
                f"unknown tool '{params.name[:80]}' (tools: {', '.join(sorted(names))})"
            )
        served = serving.served()
        snapshot = served.snapshot
        arguments = params.arguments or {}
        work = tool_work(snapshot, params.name, arguments)

        def fault() -> None:
            served.fault = True

        return await renders.run(work, call_tool, snapshot, params.name, arguments, limits,
                                 fault)

    async def rate(ctx: ServerRequestContext[Any, Any], ratings: Any,
                   arguments: dict[str, Any]) -> types.CallToolResult:
        served = serving.served()
        try:
            prompt, stars, comment = rating_arguments(served.snapshot, arguments)
        except ValueError as exc:
            return tool_error(str(exc))
        release = served.release
        if release is None:  # a server whose library is a folder offers no rate_prompt
            return tool_error("ratings are recorded only by a server serving a release")
        client = str(identity_of(ctx))
        try:
            await anyio.to_thread.run_sync(
                lambda: ratings.rate(release, prompt, stars, client=client, comment=comment))
        except Exception:
            log.exception("could not record a rating of %s", prompt)
            return tool_error("the rating could not be recorded right now; try again later")
        registry.metrics.rated(served.version, serving.channel, stars)
        label = (serving.split.candidate_label if serving.split is not None
                 and release == serving.split.candidate_release else serving.stable_label)
        data = {"name": prompt, "rating": stars, "release": label or release[:12]}
        return types.CallToolResult(
            content=[types.TextContent(text=f"recorded {stars} of 5 for {prompt} "
                                       f"(release {data['release']}); thank you")],
            structured_content=data)

    async def complete(
        ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        ref = params.ref
        if not isinstance(ref, types.PromptReference):
            return types.CompleteResult(completion=types.Completion(values=[]))
        snapshot = serving.served().snapshot
        command = snapshot.library.commands.get(ref.name)
        if command is None:
            raise _unknown_prompt(snapshot, ref.name)
        argument = command.argument(params.argument.name)
        if argument is None:
            raise invalid(f"prompt '{command.name}' has no argument '{params.argument.name[:80]}'")
        if argument.type is ArgType.ENUM:
            choices: tuple[str, ...] = argument.enum
        elif argument.type is ArgType.BOOLEAN:
            choices = _BOOLEANS
        else:
            choices = ()
        prefix = params.argument.value
        values = [c for c in choices if c.startswith(prefix)]
        return types.CompleteResult(
            completion=types.Completion(
                values=values[:_MAX_COMPLETIONS],
                total=len(values),
                has_more=len(values) > _MAX_COMPLETIONS,
            )
        )

    server = TallinnServer(
        name,
        version=__version__,
        title="Tallinn prompt library",
        instructions=INSTRUCTIONS,
        on_read_resource=read_resource,
        on_list_tools=list_tools,
        on_call_tool=call,
        on_completion=complete,
        on_subscriptions_listen=notifier.listen,
    )
    # These three answer with their wire form (the list views are held as wire data, see
    # Snapshot): the generic registration takes any result the SDK accepts, and the
    # capabilities follow from the methods registered, as with `on_list_prompts`.
    server.add_request_handler("prompts/list", types.PaginatedRequestParams, list_prompts)
    server.add_request_handler("prompts/get", types.GetPromptRequestParams, get_prompt)
    server.add_request_handler("resources/list", types.PaginatedRequestParams, list_resources)
    server.middleware.append(Observe(serving, notifier))
    registry.subscribe(notifier.changed)
    serving.subscribe(notifier.moved)
    server.notifier = notifier
    server.serving = serving
    server.renders = renders
    return server
