"""The MCP server in-process, over the SDK's in-memory client, in both protocol eras."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError
from tests.serve.serve_helpers import FakeStore, metric_value

from tallinn.serve import Registry, TallinnServer

pytestmark = pytest.mark.timeout(30)

MODES = ["legacy", "auto"]  # the 2025 handshake, and the 2026-07-28 per-request envelope


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _error(call: Any) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await call
    return caught.value


async def test_capabilities_advertise_list_changed(mode: str, server: TallinnServer) -> None:
    """Prompts, resources and tools all advertise listChanged, and completions are offered."""
    async with Client(server, mode=mode) as client:
        caps = client.server_capabilities
        assert caps.prompts is not None
        assert caps.prompts.list_changed
        assert caps.resources is not None
        assert caps.resources.list_changed
        assert caps.tools is not None
        assert caps.tools.list_changed
        assert caps.completions is not None
        assert client.server_info is not None
        assert client.server_info.name == "tallinn"


async def test_every_command_is_a_prompt_with_its_arguments(
    mode: str, server: TallinnServer
) -> None:
    """prompts/list carries each command's name, description and arguments."""
    async with Client(server, mode=mode) as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert sorted(prompts) == ["code-review", "explain-code", "threat-model", "write-tests"]
        review = prompts["code-review"]
        assert review.description == "Review a change for correctness, security and readability"
        args = {a.name: a for a in review.arguments or []}
        assert args["path"].required is True
        assert args["path"].description == "File or folder to review"
        assert args["focus"].required is False
        assert "one of: correctness, security, readability" in (args["focus"].description or "")
        assert "default correctness" in (args["focus"].description or "")
        service = (prompts["threat-model"].arguments or [])[0]
        assert service.description == "The service to model (matching [a-z][a-z0-9-]*)"
        count = {a.name: a for a in prompts["write-tests"].arguments or []}["count"]
        assert "integer" in (count.description or "")


async def test_list_views_are_answered_whole_and_left_unchanged(
    mode: str, server: TallinnServer, registry: Registry
) -> None:
    """The held wire data is the answer each time; serving it never alters it."""
    held = copy.deepcopy((registry.snapshot().prompts, registry.snapshot().resources))
    async with Client(server, mode=mode) as client:
        for _ in range(2):
            prompts = (await client.list_prompts()).prompts
            resources = (await client.list_resources()).resources
            assert [p.model_dump(by_alias=True, exclude_none=True) for p in prompts] == list(
                held[0]
            )
            assert [r.model_dump(by_alias=True, exclude_none=True) for r in resources] == list(
                held[1]
            )
    assert (registry.snapshot().prompts, registry.snapshot().resources) == held


async def test_get_prompt_renders_one_user_message(mode: str, server: TallinnServer) -> None:
    """A good prompts/get returns the rendered text, includes expanded, as one user message."""
    async with Client(server, mode=mode) as client:
        result = await client.get_prompt("code-review", {"path": "src/app.py", "focus": "security"})
        assert len(result.messages) == 1
        message = result.messages[0]
        assert message.role == "user"
        assert isinstance(message.content, types.TextContent)
        assert message.content.text.startswith("Review `src/app.py`, focusing on security.")
        assert "Report each finding" in message.content.text
        assert result.description.startswith("Review a change")


async def test_defaults_and_coercion_apply(mode: str, server: TallinnServer) -> None:
    """String values are coerced to the declared types and defaults fill the rest."""
    async with Client(server, mode=mode) as client:
        result = await client.get_prompt(
            "write-tests", {"module": "m.py", "count": " 7 ", "property": "yes"}
        )
        text = result.messages[0].content.text  # type: ignore[union-attr]
        assert text == "Write 7 tests for m.py (property-based: true).\n"
        result = await client.get_prompt("write-tests", {"module": "m.py"})
        assert "Write 3 tests" in result.messages[0].content.text  # type: ignore[union-attr]


async def test_argument_values_stay_literal(mode: str, server: TallinnServer) -> None:
    """A value containing template syntax is inserted as written, never expanded."""
    async with Client(server, mode=mode) as client:
        value = '{{focus}} $ARGUMENTS <include component="style/tone"/>'
        result = await client.get_prompt("code-review", {"path": value})
        text = result.messages[0].content.text  # type: ignore[union-attr]
        assert f"Review `{value}`, focusing on correctness." in text
        assert "Be brief and kind" not in text


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("no-such-prompt", {}, "unknown prompt 'no-such-prompt'"),
        ("code-reveiw", {"path": "x"}, "did you mean code-review?"),
        ("code-review", {}, "missing required argument 'path'"),
        ("code-review", {"path": "x", "focus": "speed"}, "'speed' is not one of correctness"),
        ("code-review", {"path": "x", "tone": "dry"}, "unknown argument 'tone'"),
        ("write-tests", {"module": "m", "count": "five"}, "argument 'count': expected an integer"),
        ("write-tests", {"module": "m", "property": "maybe"}, "expected true or false"),
        ("threat-model", {"service": "Bad Name"}, "does not match pattern [a-z][a-z0-9-]*"),
    ],
)
async def test_bad_prompt_requests_are_invalid_params(
    mode: str, server: TallinnServer, name: str, args: dict[str, str], message: str
) -> None:
    """Unknown prompts and bad arguments are -32602 errors naming the problem."""
    async with Client(server, mode=mode) as client:
        error = await _error(client.get_prompt(name, args))
        assert error.code == types.INVALID_PARAMS
        assert message in error.message


async def test_resources_list_components_and_command_sources(
    mode: str, server: TallinnServer
) -> None:
    """Every component and every command source is a text/markdown resource."""
    async with Client(server, mode=mode) as client:
        resources = {r.uri: r for r in (await client.list_resources()).resources}
        assert set(resources) == {
            "tallinn://components/reporting/findings",
            "tallinn://components/style/tone",
            "tallinn://commands/code-review",
            "tallinn://commands/explain-code",
            "tallinn://commands/threat-model",
            "tallinn://commands/write-tests",
        }
        findings = resources["tallinn://components/reporting/findings"]
        assert findings.mime_type == "text/markdown"
        assert findings.description == "How to report findings"
        assert "Threat" in (resources["tallinn://commands/threat-model"].description or "") or (
            "threat model" in (resources["tallinn://commands/threat-model"].description or "")
        )


async def test_read_resource_returns_the_source(
    mode: str, server: TallinnServer, library_dir: Path
) -> None:
    """Reading a resource returns the file as written, front matter included."""
    async with Client(server, mode=mode) as client:
        result = await client.read_resource("tallinn://commands/code-review")
        content = result.contents[0]
        assert isinstance(content, types.TextResourceContents)
        assert content.mime_type == "text/markdown"
        expected = (library_dir / "commands/review/code-review.md").read_text(encoding="utf-8")
        assert content.text == expected
        component = await client.read_resource("tallinn://components/style/tone")
        assert "Be brief and kind." in component.contents[0].text  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "uri",
    [
        "tallinn://components/nope/missing",
        "tallinn://commands/no-such-command",
        "tallinn://elsewhere/x",
        "https://example.com/x",
        "tallinn://components/",
    ],
)
async def test_unknown_resources_are_invalid_params(
    mode: str, server: TallinnServer, store: FakeStore, uri: str
) -> None:
    """An unknown URI is a clean -32602, not a security event."""
    async with Client(server, mode=mode) as client:
        error = await _error(client.read_resource(uri))
        assert error.code == types.INVALID_PARAMS
        assert "unknown resource" in error.message
        assert store.events == []


@pytest.mark.parametrize(
    "uri",
    [
        "tallinn://components/../../etc/passwd",
        "tallinn://components/%2e%2e/%2e%2e/etc/passwd",
        "tallinn://components/%252e%252e/secrets",
        "tallinn://commands/..",
        "tallinn://components//etc/passwd",
        "/etc/passwd",
        "file:///etc/passwd",
        "tallinn://components/a\\..\\b",
        "C:\\Windows\\win.ini",
    ],
)
async def test_traversal_is_refused_and_recorded(
    mode: str, server: TallinnServer, store: FakeStore, registry: Registry, uri: str
) -> None:
    """A path-traversing URI is a clean -32602 and a path_traversal security event."""
    async with Client(server, mode=mode) as client:
        error = await _error(client.read_resource(uri))
        assert error.code == types.INVALID_PARAMS
        assert error.message == "invalid resource URI"
        assert store.kinds() == ["path_traversal"]
        text = registry.metrics.render().decode()
        assert metric_value(text, "tallinn_security_events_total", {"kind": "path_traversal"}) == 1


async def test_tools_are_listed_with_schemas(mode: str, server: TallinnServer) -> None:
    """The three tools are listed with input and output schemas."""
    async with Client(server, mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert sorted(tools) == ["list_commands", "render_prompt", "search_prompts"]
        for tool in tools.values():
            assert tool.input_schema["type"] == "object"
            assert tool.output_schema is not None
        assert tools["search_prompts"].input_schema["required"] == ["query"]


async def test_search_ranks_by_name_tags_and_description(mode: str, server: TallinnServer) -> None:
    """search_prompts puts the best match first and scores every hit from 0 to 1."""
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("search_prompts", {"query": "security"})
        assert not result.is_error
        hits = result.structured_content["results"]  # type: ignore[index]
        assert [h["name"] for h in hits] == ["threat-model", "code-review"]
        assert hits[0]["score"] > hits[1]["score"] > 0
        assert all(0 < h["score"] <= 1 for h in hits)
        exact = await client.call_tool("search_prompts", {"query": "write-tests"})
        assert exact.structured_content["results"][0]["name"] == "write-tests"  # type: ignore[index]
        limited = await client.call_tool(
            "search_prompts", {"query": "code review security", "limit": 1}
        )
        assert len(limited.structured_content["results"]) == 1  # type: ignore[index]
        none = await client.call_tool("search_prompts", {"query": "kubernetes"})
        assert none.structured_content == {"query": "kubernetes", "results": []}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"query": "   "}, "'query' must be a non-empty string"),
        ({"query": "x", "limit": 0}, "'limit' must be an integer from 1 to 50"),
        ({"query": "x", "limit": True}, "'limit' must be an integer"),
        ({"query": "x", "sort": "name"}, "unknown argument(s) sort"),
    ],
)
async def test_search_argument_problems_are_tool_errors(
    mode: str, server: TallinnServer, args: dict[str, Any], message: str
) -> None:
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("search_prompts", args)
        assert result.is_error
        assert message in result.content[0].text  # type: ignore[union-attr]


async def test_render_prompt_tool(mode: str, server: TallinnServer) -> None:
    """render_prompt renders with typed arguments; problems come back with isError."""
    async with Client(server, mode=mode) as client:
        ok = await client.call_tool(
            "render_prompt", {"name": "write-tests", "arguments": {"module": "m", "count": 2}}
        )
        assert not ok.is_error
        assert ok.structured_content == {
            "name": "write-tests",
            "text": "Write 2 tests for m (property-based: false).\n",
        }
        assert ok.content[0].text == ok.structured_content["text"]  # type: ignore[union-attr,index]
        missing = await client.call_tool("render_prompt", {"name": "code-review", "arguments": {}})
        assert missing.is_error
        assert "missing required argument 'path'" in missing.content[0].text  # type: ignore[union-attr]
        unknown = await client.call_tool("render_prompt", {"name": "nope"})
        assert unknown.is_error
        assert "unknown prompt 'nope'" in unknown.content[0].text
        for bad in ({"name": ""}, {"name": "code-review", "arguments": ["x"]}):
            assert (await client.call_tool("render_prompt", bad)).is_error


async def test_list_commands_tool(mode: str, server: TallinnServer) -> None:
    """list_commands lists all commands, or one category's; an unknown category is an error."""
    async with Client(server, mode=mode) as client:
        everything = await client.call_tool("list_commands", {})
        data = everything.structured_content
        assert data["categories"] == ["docs", "review", "security", "testing"]  # type: ignore[index]
        assert len(data["commands"]) == 4  # type: ignore[index]
        review = await client.call_tool("list_commands", {"category": "review"})
        (only,) = review.structured_content["commands"]  # type: ignore[index]
        assert only["name"] == "code-review"
        assert only["critical"] is True
        assert only["examples"][0]["args"] == {"path": "src/auth.py", "focus": "security"}
        focus = only["arguments"][1]
        assert focus["enum"] == ["correctness", "security", "readability"]
        assert focus["default"] == "correctness"
        bad = await client.call_tool("list_commands", {"category": "nope"})
        assert bad.is_error
        assert "categories: docs, review" in bad.content[0].text
        assert (await client.call_tool("list_commands", {"category": 3})).is_error


async def test_unknown_tool_is_invalid_params(mode: str, server: TallinnServer) -> None:
    async with Client(server, mode=mode) as client:
        error = await _error(client.call_tool("drop_tables", {}))
        assert error.code == types.INVALID_PARAMS
        assert "unknown tool 'drop_tables'" in error.message


async def test_completion_of_enum_and_boolean_values(mode: str, server: TallinnServer) -> None:
    """completion/complete offers enum values (and true/false) that start with the prefix."""
    async with Client(server, mode=mode) as client:
        ref = types.PromptReference(name="code-review")
        result = await client.complete(ref, {"name": "focus", "value": "re"})
        assert result.completion.values == ["readability"]
        everything = await client.complete(ref, {"name": "focus", "value": ""})
        assert everything.completion.values == ["correctness", "security", "readability"]
        assert everything.completion.total == 3
        boolean = await client.complete(
            types.PromptReference(name="write-tests"), {"name": "property", "value": "t"}
        )
        assert boolean.completion.values == ["true"]
        free_text = await client.complete(ref, {"name": "path", "value": "sr"})
        assert free_text.completion.values == []
        template = await client.complete(
            types.ResourceTemplateReference(uri="tallinn://commands/{name}"),
            {"name": "name", "value": ""},
        )
        assert template.completion.values == []


async def test_completion_of_unknown_prompt_or_argument(mode: str, server: TallinnServer) -> None:
    async with Client(server, mode=mode) as client:
        unknown = await _error(
            client.complete(types.PromptReference(name="x"), {"name": "a", "value": ""})
        )
        assert unknown.code == types.INVALID_PARAMS
        assert "unknown prompt 'x'" in unknown.message
        argument = await _error(
            client.complete(
                types.PromptReference(name="code-review"), {"name": "nope", "value": ""}
            )
        )
        assert argument.code == types.INVALID_PARAMS
        assert "has no argument 'nope'" in argument.message


async def test_requests_are_counted_by_method_prompt_and_outcome(
    mode: str, server: TallinnServer, registry: Registry
) -> None:
    async with Client(server, mode=mode) as client:
        await client.get_prompt("code-review", {"path": "a"})
        await _error(client.get_prompt("code-review", {}))
        await _error(client.get_prompt("attacker-chosen-name", {}))
        await client.call_tool("render_prompt", {"name": "nope"})
        text = registry.metrics.render().decode()
        count = "tallinn_mcp_requests_total"
        assert (
            metric_value(
                text, count, {"method": "prompts/get", "prompt": "code-review", "outcome": "ok"}
            )
            == 1
        )
        assert (
            metric_value(
                text,
                count,
                {"method": "prompts/get", "prompt": "code-review", "outcome": "invalid_params"},
            )
            == 1
        )
        assert (
            metric_value(
                text,
                count,
                {"method": "prompts/get", "prompt": "_unknown", "outcome": "invalid_params"},
            )
            == 1
        )
        assert metric_value(text, count, {"method": "tools/call", "outcome": "tool_error"}) == 1
        assert "attacker-chosen-name" not in text
        assert (
            metric_value(
                text, "tallinn_mcp_request_duration_seconds_count", {"method": "prompts/get"}
            )
            == 3
        )


async def test_internal_errors_say_nothing_inside(
    mode: str, server: TallinnServer, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that is not the client's fault is a short error; the detail stays in the log."""
    async with Client(server, mode=mode) as client:

        def explode(*args: Any, **kwargs: Any) -> str:
            raise OSError("/secret/path/to/library: disk on fire")

        monkeypatch.setattr("tallinn.serve._server.render", explode)
        error = await _error(client.get_prompt("code-review", {"path": "a"}))
        assert error.code == types.INTERNAL_ERROR
        assert error.message == "internal error"
        assert "secret" not in str(error.data or "")
        text = registry.metrics.render().decode()
        assert metric_value(text, "tallinn_mcp_requests_total", {"outcome": "error"}) == 1


async def test_handshake_sessions_hear_list_changed_on_reload(
    server: TallinnServer, registry: Registry, library_dir: Path
) -> None:
    """After a reload, a 2025-era session gets prompts, resources and tools list_changed."""
    received: list[str] = []
    seen_all = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ServerNotification):
            received.append(message.method)
            if len(received) >= 3:
                seen_all.set()

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        await client.list_prompts()
        assert server.notifier.sessions == 1
        _add_command(library_dir)
        await registry.reload()
        with anyio.fail_after(5):
            await seen_all.wait()
        names = [p.name for p in (await client.list_prompts()).prompts]
    assert "brand-new" in names
    assert sorted(received) == [
        "notifications/prompts/list_changed",
        "notifications/resources/list_changed",
        "notifications/tools/list_changed",
    ]


async def test_modern_listeners_hear_list_changed_on_reload(
    server: TallinnServer, registry: Registry, library_dir: Path
) -> None:
    """After a reload, a 2026-era client listening for changes gets the events."""
    from mcp.shared.subscriptions import PromptsListChanged, ResourceUpdated

    async with Client(server) as client:
        async with client.listen(
            prompts_list_changed=True,
            resource_subscriptions=["tallinn://components/style/tone"],
        ) as subscription:
            _add_command(library_dir)
            (library_dir / "components/style/tone.md").write_text(
                "---\ndescription: The tone\n---\nBe terse.\n", encoding="utf-8"
            )
            await registry.reload()
            events: list[Any] = []
            with anyio.fail_after(5):
                async for event in subscription:
                    events.append(event)
                    if len(events) == 2:
                        break
        assert PromptsListChanged() in events
        assert ResourceUpdated("tallinn://components/style/tone") in events
        assert "brand-new" in [p.name for p in (await client.list_prompts()).prompts]


def _add_command(library_dir: Path) -> None:
    path = library_dir / "commands/docs/brand-new.md"
    path.write_text("---\ndescription: A new command\n---\nHello.\n", encoding="utf-8")


def test_search_scoring(registry: Registry) -> None:
    """Name, tag prefix, description words and phrases all count; nothing matches nothing."""
    snapshot = registry.snapshot()
    assert snapshot.search("!!!", 10) == []
    assert [h.command.name for h in snapshot.search("secur", 10)][:1] == ["threat-model"]
    phrase = snapshot.search("threat model", 10)
    assert phrase[0].command.name == "threat-model"
    words = snapshot.search("model service", 10)[0]
    assert words.score < phrase[0].score
    partial = snapshot.search("correct", 10)
    assert [h.command.name for h in partial] == ["code-review"]
