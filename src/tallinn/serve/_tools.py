"""The three MCP tools: search_prompts, render_prompt, list_commands.

A problem with a tool's arguments is a tool result with `isError` (the model can read it and
try again); only an unknown tool is a protocol error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from mcp import types

from tallinn.library import RenderError, render
from tallinn.serve._catalog import Snapshot, command_summary
from tallinn.serve._config import ServeConfig
from tallinn.serve._limits import RequestLimits, check_sizes, render_work

DEFAULT_LIMIT = 10
MAX_LIMIT = 50
# A search compares every term with every command: the query's length bounds the terms.
MAX_QUERY_CHARS = 256
_DEFAULT_LIMITS = RequestLimits.of(ServeConfig())


class ToolArgumentError(ValueError):
    """A tool was called with arguments that do not fit its input schema."""


_ARG_VALUE = {"type": ["string", "number", "integer", "boolean"]}
_SUMMARY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "category": {"type": "string"},
        "description": {"type": "string"},
        "argument_hint": {"type": ["string", "null"]},
        "arguments": {"type": "array", "items": {"type": "object"}},
        "tags": {"type": "array", "items": {"type": "string"}},
        "critical": {"type": "boolean"},
        "examples": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["name", "category", "description", "arguments", "tags", "critical"],
}

TOOLS: tuple[types.Tool, ...] = (
    types.Tool(
        name="search_prompts",
        title="Search prompts",
        description="Find commands of the prompt library by words in their names, descriptions "
        "and tags. Returns the best matches first, each with a relevance score from 0 to 1.",
        input_schema={
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_QUERY_CHARS,
                    "description": "Words to look for.",
                },
                "limit": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                    "description": "Most results to return.",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "query": {"type": "string"},
                "results": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "category": {"type": "string"},
                            "description": {"type": "string"},
                            "tags": {"type": "array", "items": {"type": "string"}},
                            "score": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                        "required": ["name", "category", "description", "tags", "score"],
                    },
                },
            },
            "required": ["query", "results"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    ),
    types.Tool(
        name="render_prompt",
        title="Render a prompt",
        description="Render a command of the prompt library with arguments and return the "
        "prompt text. Arguments are checked against the command's declared types.",
        input_schema={
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 1, "description": "Command name."},
                "arguments": {
                    "type": "object",
                    "additionalProperties": _ARG_VALUE,
                    "description": "Argument values by name.",
                },
            },
            "required": ["name"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"name": {"type": "string"}, "text": {"type": "string"}},
            "required": ["name", "text"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    ),
    types.Tool(
        name="list_commands",
        title="List commands",
        description="List the commands of the prompt library with their arguments, optionally "
        "only one category.",
        input_schema={
            "type": "object",
            "properties": {
                "category": {"type": "string", "description": "Only commands of this category."},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "categories": {"type": "array", "items": {"type": "string"}},
                "commands": {"type": "array", "items": _SUMMARY},
            },
            "required": ["categories", "commands"],
        },
        annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    ),
)
TOOL_NAMES = frozenset(t.name for t in TOOLS)


def call_tool(
    snapshot: Snapshot,
    name: str,
    arguments: Mapping[str, Any],
    limits: RequestLimits = _DEFAULT_LIMITS,
) -> types.CallToolResult:
    """Run tool `name`; argument and render problems come back as `isError` results."""
    handler = _HANDLERS[name]
    try:
        data = handler(snapshot, arguments, limits)
    except (ToolArgumentError, RenderError) as exc:
        return types.CallToolResult(content=[types.TextContent(text=str(exc))], is_error=True)
    text = data["text"] if name == "render_prompt" else json.dumps(data, ensure_ascii=False)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=data)


def _only(arguments: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(arguments) - allowed)
    if extra:
        raise ToolArgumentError(
            f"unknown argument(s) {', '.join(extra)}; expected {', '.join(sorted(allowed))}"
        )


def tool_work(snapshot: Snapshot, name: str, arguments: Mapping[str, Any]) -> int:
    """The work count of a tool call (see `render_work`): a render's, else none to speak of."""
    if name != "render_prompt":
        return 0
    command_name, values = arguments.get("name"), arguments.get("arguments")
    if not isinstance(command_name, str) or not isinstance(values, Mapping):
        return 0
    command = snapshot.library.commands.get(command_name.lstrip("/"))
    template = snapshot.library.templates.get(command.name) if command is not None else None
    if command is None or template is None:
        return 0
    return render_work(command, template, values)


def _search(
    snapshot: Snapshot, arguments: Mapping[str, Any], limits: RequestLimits
) -> dict[str, Any]:
    _only(arguments, {"query", "limit"})
    query = arguments.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ToolArgumentError("'query' must be a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise ToolArgumentError(
            f"'query' is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}"
        )
    limit = arguments.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ToolArgumentError(f"'limit' must be an integer from 1 to {MAX_LIMIT}")
    results = [
        {
            "name": hit.command.name,
            "category": hit.command.category,
            "description": hit.command.description,
            "tags": list(hit.command.tags),
            "score": hit.score,
        }
        for hit in snapshot.search(query, limit)
    ]
    return {"query": query, "results": results}


def _render(
    snapshot: Snapshot, arguments: Mapping[str, Any], limits: RequestLimits
) -> dict[str, Any]:
    _only(arguments, {"name", "arguments"})
    name = arguments.get("name")
    if not isinstance(name, str) or not name:
        raise ToolArgumentError("'name' must be a command name")
    values = arguments.get("arguments") or {}
    if not isinstance(values, Mapping):
        raise ToolArgumentError("'arguments' must be an object of argument values")
    too_large = check_sizes(values, limits)
    if too_large is not None:
        raise ToolArgumentError(too_large)
    command = snapshot.library.commands.get(name.lstrip("/"))
    if command is None:
        raise ToolArgumentError(
            f"unknown prompt '{_shorten(name)}' (use search_prompts or list_commands)"
        )
    text = render(snapshot.library, command, values)
    return {"name": command.name, "text": text}


def _list(
    snapshot: Snapshot, arguments: Mapping[str, Any], limits: RequestLimits
) -> dict[str, Any]:
    _only(arguments, {"category"})
    library = snapshot.library
    category = arguments.get("category")
    if category is not None and not isinstance(category, str):
        raise ToolArgumentError("'category' must be a string")
    commands = [c for c in library.commands.values() if category is None or c.category == category]
    if category is not None and not commands:
        known = ", ".join(library.categories()) or "none"
        raise ToolArgumentError(f"no category '{_shorten(category)}' (categories: {known})")
    return {
        "categories": library.categories(),
        "commands": [command_summary(c) for c in commands],
    }


def _shorten(text: str) -> str:
    """A client's text as an error message quotes it: at most 80 characters."""
    return text if len(text) <= 80 else text[:77] + "..."


_HANDLERS: dict[str, Callable[[Snapshot, Mapping[str, Any], RequestLimits], dict[str, Any]]] = {
    "search_prompts": _search,
    "render_prompt": _render,
    "list_commands": _list,
}
