"""The MCP Inspector CLI (an independent client) against `tallinn serve`, over stdio and HTTP."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.timeout(1200)]

FIXTURE_LIBRARY = Path(__file__).resolve().parent / "fixture-library"
PROMPTS = {"code-review", "test_prompt_with_arguments", "test_simple_prompt"}
RESOURCES = {
    "tallinn://components/reporting/findings",
    "tallinn://commands/code-review",
    "tallinn://commands/test_prompt_with_arguments",
    "tallinn://commands/test_simple_prompt",
}
TOOLS = {"search_prompts", "render_prompt", "list_commands"}
TOOL_ERROR_EXIT = 5  # the Inspector CLI's exit code for a tools/call answered with isError


@dataclass(frozen=True, slots=True)
class Answer:
    """What one Inspector CLI run printed: `{"result": ...}` on stdout or `{"error": ...}`."""

    exit_code: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    stderr: str


class Inspector:
    """Runs `mcp-inspector --cli --format json` against one server."""

    def __init__(self, node_tools: Any, target: list[str], cwd: Path) -> None:
        self.node_tools = node_tools
        self.target = target
        self.cwd = cwd

    def __call__(self, method: str, *options: str) -> Answer:
        done = self.node_tools.run(
            "mcp-inspector",
            "--cli",
            "--format",
            "json",
            "--connect-timeout",
            "30000",
            "--method",
            method,
            *options,
            *self.target,
            timeout=90,
            cwd=self.cwd,
        )
        result = error = None
        if done.stdout.strip():
            result = json.loads(done.stdout).get("result")
        # stderr mixes the stdio server's log with the CLI's one-line JSON error envelope.
        for line in done.stderr.splitlines():
            if line.startswith('{"error"'):
                error = json.loads(line)["error"]
        return Answer(done.returncode, result, error, done.stderr)

    def ok(self, method: str, *options: str) -> dict[str, Any]:
        answer = self(method, *options)
        assert answer.exit_code == 0, f"{method} failed (exit {answer.exit_code}):\n{answer.stderr}"
        assert answer.result is not None, f"{method} printed no result:\n{answer.stderr}"
        return answer.result


@pytest.fixture(params=["stdio", "http"])
def inspector(request: pytest.FixtureRequest, node_tools: Any, fixture_library: Path) -> Inspector:
    """The Inspector CLI pointed at a stdio server it spawns, or at the session's HTTP server."""
    if request.param == "stdio":
        target = [
            "--transport",
            "stdio",
            "--cwd",
            str(fixture_library),
            "--",
            sys.executable,
            "-m",
            "tallinn",
            "serve",
            "--library",
            str(fixture_library),
        ]
    else:
        server = request.getfixturevalue("http_server")
        target = ["--transport", "http", server.url]
    return Inspector(node_tools, target, fixture_library)


def test_prompts_list(inspector: Inspector) -> None:
    """prompts/list names every command, with its declared arguments."""
    prompts = {p["name"]: p for p in inspector.ok("prompts/list")["prompts"]}
    assert set(prompts) == PROMPTS
    review = prompts["code-review"]
    assert review["description"] == "Review a change for correctness, security and readability"
    arguments = {a["name"]: a for a in review["arguments"]}
    assert arguments["path"]["required"] is True
    assert arguments["focus"]["required"] is False
    assert "security" in arguments["focus"]["description"]
    assert prompts["test_simple_prompt"].get("arguments", []) == []


def test_prompts_get_with_arguments(inspector: Inspector) -> None:
    """prompts/get renders the command with the given arguments and its include resolved."""
    result = inspector.ok(
        "prompts/get",
        "--prompt-name",
        "code-review",
        "--prompt-args",
        "path=src/auth.py",
        "focus=security",
    )
    [message] = result["messages"]
    assert message["role"] == "user"
    assert message["content"]["type"] == "text"
    text = message["content"]["text"]
    assert "Review `src/auth.py`, focusing on security." in text
    assert "<output_format>" in text  # from components/reporting/findings
    assert "{{" not in text
    assert "<include" not in text


def test_prompts_get_applies_defaults(inspector: Inspector) -> None:
    """An omitted optional argument takes its declared default."""
    result = inspector.ok(
        "prompts/get", "--prompt-name", "code-review", "--prompt-args", "path=app.py"
    )
    assert "focusing on correctness" in result["messages"][0]["content"]["text"]


def test_prompts_get_rejects_a_missing_argument(inspector: Inspector) -> None:
    """A missing required argument is a protocol error naming it, not a half-rendered prompt."""
    answer = inspector("prompts/get", "--prompt-name", "code-review")
    assert answer.exit_code != 0
    assert answer.error is not None, answer.stderr
    assert "missing required argument 'path'" in answer.error["message"]


def test_resources_list(inspector: Inspector) -> None:
    """resources/list has every component and every command source, as Markdown."""
    resources = inspector.ok("resources/list")["resources"]
    assert {r["uri"] for r in resources} == RESOURCES
    assert all(r["mimeType"] == "text/markdown" and r["name"] for r in resources)


def test_resources_read(inspector: Inspector) -> None:
    """resources/read returns a component's file exactly as it is on disk."""
    uri = "tallinn://components/reporting/findings"
    [content] = inspector.ok("resources/read", "--uri", uri)["contents"]
    assert content["uri"] == uri
    assert content["mimeType"] == "text/markdown"
    on_disk = (FIXTURE_LIBRARY / "components" / "reporting" / "findings.md").read_text("utf-8")
    assert content["text"] == on_disk


def test_resources_read_unknown(inspector: Inspector) -> None:
    """Reading a URI outside the library is an error, not an empty result."""
    answer = inspector("resources/read", "--uri", "tallinn://components/../../etc/passwd")
    assert answer.exit_code != 0
    assert answer.error is not None, answer.stderr


def test_tools_list(inspector: Inspector) -> None:
    """tools/list offers the three library tools, each with an object input schema."""
    tools = {t["name"]: t for t in inspector.ok("tools/list")["tools"]}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool["description"]
        assert tool["inputSchema"]["type"] == "object"
    assert tools["search_prompts"]["inputSchema"]["required"] == ["query"]


def test_tools_call_search_prompts(inspector: Inspector) -> None:
    """search_prompts ranks the matching command first, with a score in [0, 1]."""
    result = inspector.ok(
        "tools/call", "--tool-name", "search_prompts", "--tool-arg", "query=review"
    )
    assert result.get("isError") is not True
    hits = result["structuredContent"]["results"]
    assert hits[0]["name"] == "code-review"
    assert all(0 <= h["score"] <= 1 for h in hits)
    assert result["content"][0]["type"] == "text"


def test_tools_call_render_prompt(inspector: Inspector) -> None:
    """render_prompt returns the same text as prompts/get for the same arguments."""
    arguments = {"name": "code-review", "arguments": {"path": "src/a.py", "focus": "readability"}}
    result = inspector.ok(
        "tools/call", "--tool-name", "render_prompt", "--tool-args-json", json.dumps(arguments)
    )
    assert result.get("isError") is not True
    rendered = result["structuredContent"]
    assert rendered["name"] == "code-review"
    assert "Review `src/a.py`, focusing on readability." in rendered["text"]
    prompt = inspector.ok(
        "prompts/get",
        "--prompt-name",
        "code-review",
        "--prompt-args",
        "path=src/a.py",
        "focus=readability",
    )
    assert prompt["messages"][0]["content"]["text"] == rendered["text"]


def test_tools_call_list_commands(inspector: Inspector) -> None:
    """list_commands lists every command, and filters by category."""
    result = inspector.ok("tools/call", "--tool-name", "list_commands")
    listing = result["structuredContent"]
    assert {c["name"] for c in listing["commands"]} == PROMPTS
    assert set(listing["categories"]) == {"conformance", "review"}
    only = inspector.ok(
        "tools/call", "--tool-name", "list_commands", "--tool-arg", "category=review"
    )["structuredContent"]
    assert [c["name"] for c in only["commands"]] == ["code-review"]


def test_tools_call_error_is_a_tool_result(inspector: Inspector) -> None:
    """A render that fails is a tool result with isError, telling the model what to fix."""
    answer = inspector(
        "tools/call", "--tool-name", "render_prompt", "--tool-arg", "name=code-review"
    )
    assert answer.exit_code == TOOL_ERROR_EXIT, answer.stderr
    assert answer.result is not None, answer.stderr
    assert answer.result["isError"] is True
    assert "missing required argument 'path'" in answer.result["content"][0]["text"]
