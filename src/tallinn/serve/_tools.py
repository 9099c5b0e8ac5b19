"""The MCP tools: search_prompts, render_prompt, list_commands, and rate_prompt.

`rate_prompt` is offered only by a server that serves releases from the store: a rating is
recorded against the release that served the client (see `tallinn.serve._split`).

A problem with a tool's arguments is a tool result with `isError` (the model can read it and
try again); only an unknown tool is a protocol error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from mcp import types

from tallinn.library import RenderError, render
from tallinn.library.errors import ArgumentError
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
COMMENT_MAX = 2000
STARS = 5
RATE_TOOL = types.Tool(
    name="rate_prompt",
    title="Rate a prompt",
    description="Rate a command of the prompt library from 1 (useless) to 5 (excellent), "
    "with an optional comment, after using it. Ratings decide whether a new release of the "
    "library is rolled out further.",
    input_schema={
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "Command name."},
            "rating": {"type": "integer", "minimum": 1, "maximum": STARS,
                       "description": "1 to 5 stars; 4 and 5 count as satisfied."},
            "comment": {"type": "string", "maxLength": COMMENT_MAX,
                        "description": "What worked or did not (optional)."},
        },
        "required": ["name", "rating"],
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"name": {"type": "string"}, "rating": {"type": "integer"},
                       "release": {"type": "string"}},
        "required": ["name", "rating", "release"],
    },
    annotations=types.ToolAnnotations(read_only_hint=False, idempotent_hint=False),
)


def rating_arguments(snapshot: Snapshot, arguments: Mapping[str, Any]
                     ) -> tuple[str, int, str | None]:
    """Given `rate_prompt`'s arguments, return (command name, stars, comment), checked;
    `ToolArgumentError` names what is wrong."""
    _only(arguments, {"name", "rating", "comment"})
    name = arguments.get("name")
    if not isinstance(name, str) or not name:
        raise ToolArgumentError("'name' must be a command name")
    command = snapshot.library.commands.get(name.lstrip("/"))
    if command is None:
        raise ToolArgumentError(
            f"unknown prompt '{_shorten(name)}' (use search_prompts or list_commands)")
    rating = arguments.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= STARS:
        raise ToolArgumentError(f"'rating' must be a whole number of stars from 1 to {STARS}")
    comment = arguments.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise ToolArgumentError("'comment' must be a string")
    if comment is not None and len(comment) > COMMENT_MAX:
        raise ToolArgumentError(
            f"'comment' is {len(comment):,} characters long; the limit is {COMMENT_MAX:,}")
    return command.name, rating, comment or None


def tool_error(message: str) -> types.CallToolResult:
    """A tool result the model can read: `isError` with `message`."""
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def call_tool(
    snapshot: Snapshot,
    name: str,
    arguments: Mapping[str, Any],
    limits: RequestLimits = _DEFAULT_LIMITS,
    on_fault: Callable[[], None] | None = None,
) -> types.CallToolResult:
    """Run tool `name`; argument and render problems come back as `isError` results.

    `on_fault` is called when the problem is the library's (a command that cannot be
    rendered whatever the arguments), not the caller's.
    """
    handler = _HANDLERS[name]
    try:
        data = handler(snapshot, arguments, limits)
    except (ToolArgumentError, RenderError) as exc:
        if on_fault is not None and not isinstance(exc, (ToolArgumentError, ArgumentError)):
            on_fault()
        return tool_error(str(exc))
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
