"""Bounded work per request: catastrophic patterns answer promptly over the real transports,
over-long arguments are client errors, and large renders leave the event loop free."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters, types
from mcp.shared.exceptions import MCPError
from tests.bounded import BOUNDED_PREFIX, CATASTROPHIC, python_bounded
from tests.helpers import write_files
from tests.serve.serve_helpers import FakeStore

from tallinn.library.patterns import compile_pattern
from tallinn.serve import EventRecorder, Registry, ServeConfig, build_server
from tallinn.serve._config import (
    DEFAULT_MAX_ARGUMENT_CHARS,
    DEFAULT_MAX_ARGUMENTS_CHARS,
    ConfigError,
    resolve,
)
from tallinn.serve._limits import INLINE_WORK, RequestLimits, check_sizes, render_work, value_chars
from tallinn.serve._tools import MAX_QUERY_CHARS

pytestmark = pytest.mark.timeout(120)

# The largest program Tallinn's RE2 budget takes, and the longest value a server takes: a
# render that checks one against the other is the slowest single check a client can ask for.
BIG_PROGRAM = "(.*a){1000}"
WORST_VALUE = "a" * (DEFAULT_MAX_ARGUMENT_CHARS - 1) + "b"


def _command(description: str, pattern: str) -> str:
    return (
        "---\n"
        f"description: {description}\n"
        "arguments:\n"
        f"  - {{name: value, description: checked, required: true, pattern: '{pattern}'}}\n"
        "---\n"
        "got [{{value}}]\n"
    )


def pattern_library(root: Path, serve_table: str = "") -> Path:
    files = {f"commands/patterns/p{index}.md": _command(f"Pattern {index}", pattern)
             for index, (pattern, _, _) in enumerate(CATASTROPHIC)}
    files["commands/patterns/big.md"] = _command("The largest program", BIG_PROGRAM)
    files["commands/plain/echo.md"] = (
        "---\ndescription: Echo\narguments:\n  - {name: text, description: t}\n---\n{{text}}\n"
    )
    files["tallinn.toml"] = '[library]\nname = "patterns"\n' + serve_table
    return write_files(root, files)


@pytest.fixture
def patterns_dir(tmp_path: Path) -> Path:
    return pattern_library(tmp_path / "library")


def _server(library: Path, config: ServeConfig | None = None) -> Any:
    registry = Registry(library)
    registry.load()
    assert registry.snapshot().library.errors == ()
    return build_server(registry, EventRecorder(FakeStore(), registry.metrics), config=config)


def _text(result: types.GetPromptResult) -> str:
    content = result.messages[0].content
    assert isinstance(content, types.TextContent)
    return content.text


async def _invalid(call: Any) -> MCPError:
    with pytest.raises(MCPError) as caught:
        await call
    assert caught.value.code == types.INVALID_PARAMS
    return caught.value


# --- the real transports, in CPU-capped server processes ----------------------------------


@pytest.mark.slow
async def test_catastrophic_patterns_answer_promptly_over_stdio(patterns_dir: Path) -> None:
    """Through the SDK's real stdio client, against a server whose CPU time is capped, each
    catastrophic pattern's almost-matching value is an invalid-params no-match in prompts/get
    and an isError result in render_prompt, and each matching value renders."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", BOUNDED_PREFIX + "from tallinn.cli import main\nmain()\n",
              "serve", "--library", str(patterns_dir), "--no-reload"],
        env={**os.environ, "TALLINN_STORE_URL": "sqlite://"},
    )
    async with Client(params, mode="legacy", read_timeout_seconds=60) as client:
        for index, (pattern, attack, match) in enumerate(CATASTROPHIC):
            name = f"p{index}"
            refused = await _invalid(client.get_prompt(name, {"value": attack}))
            assert f"argument 'value': does not match pattern {pattern}" in refused.message
            assert _text(await client.get_prompt(name, {"value": match})) == f"got [{match}]\n"
            tool = await client.call_tool("render_prompt",
                                          {"name": name, "arguments": {"value": attack}})
            assert tool.is_error
            assert "does not match pattern" in tool.content[0].text  # type: ignore[union-attr]
            tool = await client.call_tool("render_prompt",
                                          {"name": name, "arguments": {"value": match}})
            assert not tool.is_error
            assert tool.structured_content == {"name": name, "text": f"got [{match}]\n"}


_ATTACK = """
import itertools, json, sys, threading

import anyio, httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import tallinn.serve._server as server_module
from tallinn.serve import Registry, ServeConfig, build_app
from tests.serve.serve_helpers import FakeStore, ThreadServer, free_port
from tests.serve.test_serve_patterns import WORST_VALUE

ATTACKERS, ROUNDS = 6, 2
events, lock, numbers = [], threading.Lock(), itertools.count()


def record(kind, number=0):
    with lock:
        events.append((kind, number))


real_render = server_module.render


def observed_render(*args):
    # Wherever the server runs a render, record when it starts and ends.
    number = next(numbers)
    record("render-started", number)
    try:
        return real_render(*args)
    finally:
        record("render-finished", number)


server_module.render = observed_render
registry = Registry(sys.argv[1])
registry.load()
port = free_port()
server = ThreadServer(build_app(registry, FakeStore(), ServeConfig(port=port)), port).start()


async def main():
    refused = []

    async def attack(client):
        for _ in range(ROUNDS):
            try:
                await client.get_prompt("big", {"value": WORST_VALUE})
            except MCPError as exc:
                refused.append(exc.message)

    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(120)) as attacker_http,
        httpx2.AsyncClient(timeout=httpx2.Timeout(120)) as other_http,
    ):
        async with (
            Client(streamable_http_client(server.url + "/mcp", http_client=attacker_http),
                   mode="legacy") as attacker,
            Client(streamable_http_client(server.url + "/mcp", http_client=other_http),
                   mode="legacy") as other,
            anyio.create_task_group() as tg,
        ):
            for _ in range(ATTACKERS):
                tg.start_soon(attack, attacker)
            with anyio.fail_after(60):  # until the server is rendering an attack
                while not any(kind == "render-started" for kind, _ in events):
                    await anyio.sleep(0.01)
            record("health-sent")
            health = await other_http.get(server.url + "/health")
            record("health-answered")
            record("list-sent")
            prompts = (await other.list_prompts()).prompts
            record("list-answered")
    return {"events": events, "refused": refused, "health": health.status_code,
            "prompts": [p.name for p in prompts]}


result = anyio.run(main)
server.stop()
print(json.dumps(result))
"""


@pytest.mark.slow
def test_health_and_prompts_list_are_answered_during_an_attack(patterns_dir: Path) -> None:
    """While one client sends the slowest render it can (the largest RE2 program against the
    longest value) twelve times, six at once, a second client's /health and prompts/list are
    answered while a render that started before they were sent is still running: the event
    loop never does that work. Real uvicorn and the SDK's HTTP client, in a CPU-capped child."""
    done = python_bounded(_ATTACK, str(patterns_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["health"] == 200
    assert "big" in result["prompts"]
    assert len(result["refused"]) == 12
    assert all("does not match pattern" in message for message in result["refused"])
    order = {tuple(event): index for index, event in enumerate(result["events"])}
    renders = [n for kind, n in result["events"] if kind == "render-started"]
    assert len(renders) == 12
    for probe in ("health", "list"):
        sent, answered = order[(f"{probe}-sent", 0)], order[(f"{probe}-answered", 0)]
        spanning = [n for n in renders if order[("render-started", n)] < sent
                    and order[("render-finished", n)] > answered]
        assert spanning, f"no render was running while {probe} was answered: {result['events']}"


# --- limits -------------------------------------------------------------------------------


async def test_an_over_long_value_is_invalid_params(patterns_dir: Path) -> None:
    """A value one character over the limit is refused as invalid params naming the argument
    and the limit, before any pattern runs; one at the limit is rendered."""
    server = _server(patterns_dir)
    async with Client(server, mode="legacy") as client:
        error = await _invalid(
            client.get_prompt("echo", {"text": "x" * (DEFAULT_MAX_ARGUMENT_CHARS + 1)}))
        assert error.message == (f"argument 'text' is {DEFAULT_MAX_ARGUMENT_CHARS + 1} characters "
                                 f"long; the limit is {DEFAULT_MAX_ARGUMENT_CHARS}")
        at_limit = "x" * DEFAULT_MAX_ARGUMENT_CHARS
        assert _text(await client.get_prompt("echo", {"text": at_limit})) == at_limit + "\n"
        many = {f"n{i}": "x" * 15_000 for i in range(5)}
        error = await _invalid(client.get_prompt("echo", many))
        assert error.message.startswith("the arguments are 75010 characters long together; "
                                        f"the limit is {DEFAULT_MAX_ARGUMENTS_CHARS}")
        tool = await client.call_tool("render_prompt", {
            "name": "echo", "arguments": {"text": "x" * (DEFAULT_MAX_ARGUMENT_CHARS + 1)}})
        assert tool.is_error
        assert "characters long; the limit is" in tool.content[0].text  # type: ignore[union-attr]
        tool = await client.call_tool("search_prompts", {"query": "a " * 200})
        assert tool.is_error
        assert tool.content[0].text == (  # type: ignore[union-attr]
            f"'query' is 400 characters long; the limit is {MAX_QUERY_CHARS}")
        found = await client.call_tool("search_prompts", {"query": "pattern " * 30})
        assert not found.is_error


async def test_limits_follow_the_config_and_the_library_serve_table(tmp_path: Path) -> None:
    """A server built without a config takes its limits from the library's [serve] table (as
    over stdio); an explicit config wins."""
    library = pattern_library(tmp_path / "lib", "[serve]\nmax_argument_chars = 10\n")
    async with Client(_server(library), mode="legacy") as client:
        error = await _invalid(client.get_prompt("echo", {"text": "x" * 11}))
        assert error.message.endswith("the limit is 10")
        assert _text(await client.get_prompt("echo", {"text": "x" * 10})) == "x" * 10 + "\n"
    config = ServeConfig(max_argument_chars=100, max_arguments_chars=50)
    async with Client(_server(library, config), mode="legacy") as client:
        assert _text(await client.get_prompt("echo", {"text": "x" * 11})) == "x" * 11 + "\n"
        error = await _invalid(client.get_prompt("echo", {"text": "x" * 47}))
        assert error.message == "the arguments are 51 characters long together; the limit is 50"


def test_serve_table_limits_are_checked() -> None:
    """[serve] limits must be positive whole numbers; good ones reach the ServeConfig."""
    config = resolve({"max_argument_chars": 50, "max_arguments_chars": 500, "render_threads": 3})
    assert (config.max_argument_chars, config.max_arguments_chars, config.render_threads) == (
        50, 500, 3)
    for key in ("max_argument_chars", "max_arguments_chars", "render_threads"):
        for bad in (0, -1, "10", True, 1.5):
            with pytest.raises(ConfigError, match=f"\\[serve\\] {key} must be a positive whole"):
                resolve({key: bad})


async def test_large_renders_go_to_a_worker_and_small_ones_do_not(patterns_dir: Path) -> None:
    """A render whose work count is over the inline budget runs on a worker thread, a typical
    one on the loop: counted by the server's render pool."""
    server = _server(patterns_dir)
    async with Client(server, mode="legacy") as client:
        assert _text(await client.get_prompt("echo", {"text": "short"})) == "short\n"
        assert _text(await client.get_prompt("p0", {"value": "aaaa"})) == "got [aaaa]\n"
        assert server.renders.offloaded == 0
        await _invalid(client.get_prompt("big", {"value": "a" * 200 + "b"}))
        assert server.renders.offloaded == 1
        tool = await client.call_tool("render_prompt",
                                      {"name": "big", "arguments": {"value": "a" * 1200}})
        assert not tool.is_error
        assert server.renders.offloaded == 2
        await client.call_tool("render_prompt", {"name": "echo", "arguments": {"text": "t"}})
        await client.call_tool("search_prompts", {"query": "pattern"})
        assert server.renders.offloaded == 2


def test_work_is_counted_linearly_in_value_and_program(patterns_dir: Path) -> None:
    """The work count of a render is the value's length times (1 + the pattern's instructions)
    plus the characters its slots copy: doubling the value doubles it."""
    registry = Registry(patterns_dir)
    library = registry.load().library
    big = library.commands["big"]
    template = library.templates["big"]
    program = compile_pattern(BIG_PROGRAM).program_size
    for size in (10, 1_000, 16_384):
        assert render_work(big, template, {"value": "a" * size}) == size * (1 + program) + size
    echo = library.commands["echo"]
    assert render_work(echo, library.templates["echo"], {"text": "abc"}) == 3 + 3
    assert render_work(echo, library.templates["echo"], {}) == 0
    assert render_work(big, template, {"value": WORST_VALUE}) > INLINE_WORK
    assert render_work(library.commands["p0"], library.templates["p0"],
                       {"value": "aaaa"}) <= INLINE_WORK


@pytest.mark.parametrize(
    ("value", "chars"),
    [("abc", 3), (True, 4), (False, 5), (12, 2), (-1.5, 4), (None, 0), (["x" * 99], 0),
     (10 ** 5000, sys.maxsize)],
    ids=["str", "true", "false", "int", "float", "none", "list", "huge-int"],
)
def test_value_chars(value: object, chars: int) -> None:
    """A value counts as many characters as its text form; an unprintable integer, as too many."""
    assert value_chars(value) == chars


def test_check_sizes_names_the_argument_shortened() -> None:
    """An over-long value's message names its argument, shortened to 80 characters."""
    limits = RequestLimits(5, 100)
    assert check_sizes({"a": "12345"}, limits) is None
    message = check_sizes({"n" * 200: "123456"}, limits)
    assert message == f"argument '{'n' * 77}...' is 6 characters long; the limit is 5"
    assert check_sizes({"a": 10 ** 5000}, limits) == (
        "argument 'a' is more than 4300 characters long; the limit is 5")


async def test_what_a_client_sent_is_quoted_short(patterns_dir: Path) -> None:
    """Unknown names and categories are quoted in at most 80 characters, and a name too long to
    be close to any command gets no suggestions (difflib is not run on it)."""
    server = _server(patterns_dir)
    async with Client(server, mode="legacy") as client:
        error = await _invalid(client.get_prompt("echo" + "x" * 300, {}))
        assert error.message == f"unknown prompt '{'echo' + 'x' * 73}...'"
        error = await _invalid(client.get_prompt("eccho", {}))
        assert error.message == "unknown prompt 'eccho' (did you mean echo?)"
        tool = await client.call_tool("render_prompt", {"name": "n" * 300})
        assert tool.is_error
        assert tool.content[0].text.startswith(  # type: ignore[union-attr]
            f"unknown prompt '{'n' * 77}...' (use")
        tool = await client.call_tool("list_commands", {"category": "c" * 300})
        assert tool.is_error
        assert tool.content[0].text.startswith(f"no category '{'c' * 77}...' (categories:")  # type: ignore[union-attr]


async def test_a_broken_serve_table_falls_back_to_the_defaults(tmp_path: Path) -> None:
    """A server built without a config over a library whose [serve] table is invalid (which
    `tallinn serve` refuses before serving) uses the default limits."""
    library = pattern_library(tmp_path / "lib", "[serve]\nmax_argument_chars = 'many'\n")
    server = _server(library)
    assert server.renders.threads == ServeConfig().render_threads
    async with Client(server, mode="legacy") as client:
        error = await _invalid(
            client.get_prompt("echo", {"text": "x" * (DEFAULT_MAX_ARGUMENT_CHARS + 1)}))
        assert error.message.endswith(f"the limit is {DEFAULT_MAX_ARGUMENT_CHARS}")
