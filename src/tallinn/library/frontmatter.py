"""Split a Markdown file into YAML front matter and body, and validate the front matter.

YAML errors are turned into messages that say how to fix the common mistakes that break
other tools silently (an unquoted `: ` in a value, an `argument-hint` starting with `[`,
tabs). Every diagnostic points at the file's own line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tallinn.library.diagnostics import Diagnostic, Severity

if TYPE_CHECKING:
    import yaml

    from tallinn.library.cache import FrontMatterCache

ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FENCE = "---"


class ArgumentSpec(BaseModel):
    """One entry of `arguments:` as written in front matter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    type: Literal["string", "integer", "number", "boolean", "enum"] = "string"
    required: bool = False
    default: str | bool | int | float | None = None
    enum: list[str] | None = None
    pattern: str | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not ARGUMENT_NAME.fullmatch(value):
            raise ValueError(f"'{value}' is not a valid argument name (letters, digits, _ and -)")
        return value

    @field_validator("enum", mode="before")
    @classmethod
    def _enum_as_strings(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if not isinstance(v, bool) else str(v).lower() for v in value]
        return value


class ExampleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    args: dict[str, str | bool | int | float] = Field(default_factory=dict)


class ComponentFrontMatter(BaseModel):
    """Front matter of a component."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    description: str
    arguments: list[ArgumentSpec] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("description must not be empty")
        return value


class CommandFrontMatter(ComponentFrontMatter):
    """Front matter of a command. Claude Code's own keys keep Claude Code's spelling."""

    argument_hint: str | None = Field(default=None, alias="argument-hint")
    allowed_tools: str | list[str] | None = Field(default=None, alias="allowed-tools")
    model: str | None = None
    critical: bool = False
    examples: list[ExampleSpec] = Field(default_factory=list)


COMMAND_KEYS = frozenset(
    {"description", "argument-hint", "arguments", "allowed-tools", "model", "tags", "critical",
     "examples"}
)
COMPONENT_KEYS = frozenset({"description", "arguments", "tags"})


@dataclass(frozen=True, slots=True)
class Parsed:
    """A split and parsed file: front matter data, key positions and where the body starts."""

    data: Mapping[str, Any]
    key_marks: Mapping[str, tuple[int, int]]  # key -> 1-based (line, col) of the key
    value_marks: Mapping[str, tuple[int, int]]
    body: str
    body_line: int


def split(text: str, path: str) -> tuple[str, int, str, int] | Diagnostic:
    """Given `---\\nyaml\\n---\\nbody`, return (yaml, yaml_first_line, body, body_first_line)."""
    if not text.startswith(_FENCE):
        return Diagnostic(
            "V101", "missing front matter: the file must start with a line '---'", path
        )
    lines = text.split("\n")
    if lines[0].strip() != _FENCE:
        return Diagnostic("V101", "the first line must be exactly '---'", path)
    for index in range(1, len(lines)):
        if lines[index].rstrip() == _FENCE:
            yaml_text = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1 :])
            return yaml_text, 2, body, index + 2
    return Diagnostic(
        "V101", "front matter is not closed: add a line '---' after it", path, 1, 1
    )


def parse(text: str, path: str, cache: FrontMatterCache | None = None) -> Parsed | Diagnostic:
    """Split `text` and parse its front matter into plain data, with key positions.

    With a `cache`, front matter parsed before is taken from it and new front matter is
    recorded in it.
    """
    parts = split(text, path)
    if isinstance(parts, Diagnostic):
        return parts
    yaml_text, first_line, body, body_line = parts
    cached = cache.get(yaml_text) if cache is not None else None
    if cached is not None:
        return Parsed(cached[0], cached[1], cached[2], body, body_line)
    parsed = _parse_yaml(yaml_text, first_line, body, body_line, path)
    if cache is not None and isinstance(parsed, Parsed):
        cache.put(yaml_text, (dict(parsed.data), dict(parsed.key_marks), dict(parsed.value_marks)))
    return parsed


def _parse_yaml(
    yaml_text: str, first_line: int, body: str, body_line: int, path: str
) -> Parsed | Diagnostic:
    # Imported here: a load that finds everything in the front-matter cache needs no YAML.
    import yaml

    try:  # libyaml is an order of magnitude faster; PyYAML ships it in its wheels.
        from yaml import CSafeLoader as Loader
    except ImportError:  # pragma: no cover - only on builds without libyaml
        from yaml import SafeLoader as Loader  # type: ignore[assignment]

    try:
        loader = Loader(yaml_text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        return _yaml_diagnostic(exc, yaml_text, first_line, path)
    if not isinstance(data, dict):
        return Diagnostic(
            "V102", "front matter must be a mapping of keys to values", path, first_line, 1
        )
    key_marks: dict[str, tuple[int, int]] = {}
    value_marks: dict[str, tuple[int, int]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_marks[key] = (key_node.start_mark.line + first_line, key_node.start_mark.column + 1)
            value_marks[key] = (
                value_node.start_mark.line + first_line,
                value_node.start_mark.column + 1,
            )
        _argument_pattern_marks(node, first_line, key_marks)
    return Parsed({str(k): v for k, v in data.items()}, key_marks, value_marks, body, body_line)


def _argument_pattern_marks(
    node: yaml.MappingNode, first_line: int, key_marks: dict[str, tuple[int, int]]
) -> None:
    """Record where each `arguments[i].pattern` key is, as `arguments.<i>.pattern`: a pattern
    RE2 refuses is reported there (V115)."""
    import yaml

    for key_node, value_node in node.value:
        if key_node.value != "arguments" or not isinstance(value_node, yaml.SequenceNode):
            continue
        for index, item in enumerate(value_node.value):
            if not isinstance(item, yaml.MappingNode):
                continue
            for item_key, _ in item.value:
                if item_key.value == "pattern":
                    mark = item_key.start_mark
                    key_marks[f"arguments.{index}.pattern"] = (
                        mark.line + first_line, mark.column + 1
                    )


def _yaml_diagnostic(
    exc: yaml.MarkedYAMLError, yaml_text: str, first_line: int, path: str
) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    line = (mark.line if mark else 0) + first_line
    col = (mark.column if mark else 0) + 1
    problem = exc.problem or "invalid YAML"
    source_lines = yaml_text.split("\n")
    row = mark.line if mark else 0
    source_line = source_lines[row] if row < len(source_lines) else ""
    if "\t" in source_line[: max(col, 1)] or (
        "cannot start any token" in problem and source_line[col - 1 : col] == "\t"
    ):
        message = "tabs are not allowed in YAML front matter: indent with spaces"
        return Diagnostic("V102", message, path, line, col)
    if "mapping values are not allowed" in problem:
        key = source_line.split(":", 1)[0].strip() or "this value"
        message = (
            f"the value of '{key}' contains ': ', which YAML reads as a new key; "
            f"quote the whole value: {key}: \"...\""
        )
        return Diagnostic("V102", message, path, line, col)
    return Diagnostic("V102", f"invalid YAML: {problem}", path, line, col)


def validate(
    parsed: Parsed, path: str, *, command: bool
) -> tuple[CommandFrontMatter | ComponentFrontMatter | None, list[Diagnostic]]:
    """Check front matter against the schema; unknown keys are warnings, not dropped."""
    diagnostics: list[Diagnostic] = []
    data = dict(parsed.data)
    hint = data.get("argument-hint")
    if command and isinstance(hint, list):
        line, col = parsed.value_marks.get("argument-hint", (1, 1))
        diagnostics.append(
            Diagnostic(
                "V103",
                "argument-hint starts with '[', so YAML reads it as a list; quote it: "
                "argument-hint: \"[...]\"",
                path, line, col,
            )
        )
        data["argument-hint"] = "[" + ", ".join(str(h) for h in hint) + "]"
    known = COMMAND_KEYS if command else COMPONENT_KEYS
    for key in data:
        if key not in known:
            line, col = parsed.key_marks.get(key, (1, 1))
            diagnostics.append(
                Diagnostic(
                    "V104",
                    f"unknown front-matter key '{key}' (known: {', '.join(sorted(known))})",
                    path, line, col, Severity.WARNING,
                )
            )
    model = CommandFrontMatter if command else ComponentFrontMatter
    try:
        return model.model_validate(data), diagnostics
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            key = str(loc[0]) if loc else "description"
            line, col = parsed.value_marks.get(key) or parsed.key_marks.get(key) or (1, 1)
            where = ".".join(str(p) for p in loc) or "front matter"
            if error["type"] == "missing":
                message = f"'{where}' is required"
            else:
                message = f"'{where}': {error['msg']}"
            diagnostics.append(Diagnostic("V105", message, path, line, col))
        return None, diagnostics
