"""Split a Markdown file into YAML front matter and body, and validate the front matter.

YAML errors are turned into messages that say how to fix the common mistakes that break
other tools silently (an unquoted `: ` in a value, an `argument-hint` starting with `[`,
tabs). Every diagnostic points at the file's own line and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tallinn.library.diagnostics import Diagnostic, LineIndex, Severity
from tallinn.library.files import Limits

if TYPE_CHECKING:
    import yaml

    from tallinn.library.cache import FrontMatterCache

ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_FENCE = "---"
_FENCE_LINE = re.compile(r"^---", re.MULTILINE)


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
    # Claude Code's: only a person may run the command; the model may not pick it on its own.
    disable_model_invocation: bool | None = Field(default=None,
                                                  alias="disable-model-invocation")
    critical: bool = False
    examples: list[ExampleSpec] = Field(default_factory=list)


COMMAND_KEYS = frozenset(
    {"description", "argument-hint", "arguments", "allowed-tools", "model",
     "disable-model-invocation", "tags", "critical", "examples"}
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
    # Whether JSON gives `data` back exactly (see `yamlsafe.load_plain`); False when unknown.
    plain: bool = field(default=False, compare=False)


def split(text: str, path: str) -> tuple[str, int, str, int] | Diagnostic:
    """Given `---\\nyaml\\n---\\nbody`, return (yaml, yaml_first_line, body, body_first_line)."""
    if not text.startswith(_FENCE):
        return Diagnostic(
            "V101", "missing front matter: the file must start with a line '---'", path
        )
    first_end = text.find("\n")
    if first_end == -1:
        first_end = len(text)
    if text[:first_end].strip() != _FENCE:
        return Diagnostic("V101", "the first line must be exactly '---'", path)
    # Only the lines that start with `---` are looked at; the file is not split into lines.
    for found in _FENCE_LINE.finditer(text, first_end + 1):
        start = found.start()
        end = text.find("\n", start)
        if end == -1:
            end = len(text)
        if text[start:end].rstrip() == _FENCE:
            yaml_text = text[first_end + 1 : max(start - 1, first_end + 1)]
            body = text[end + 1 :]
            return yaml_text, 2, body, text.count("\n", 0, start) + 2
    return Diagnostic(
        "V101", "front matter is not closed: add a line '---' after it", path, 1, 1
    )


# (data, key marks, value marks) by limits and front-matter text, within `parsed_once()`.
_Marked = tuple[Mapping[str, Any], Mapping[str, tuple[int, int]], Mapping[str, tuple[int, int]]]
_ONCE: ContextVar[dict[str, _Marked] | None] = ContextVar("tallinn_front_matter_once",
                                                          default=None)


@contextmanager
def parsed_once() -> Iterator[None]:
    """Within the block, front matter is parsed once: `parse` of the same text (within the
    same limits) again returns what the first parse found, without parsing it again.

    One run of the quality gates wraps its load and every gate in it, so the loader, the
    security audit and the docs gate share one parse of each file; what is kept goes with the
    block, so a long-lived process (a server reloading its library) keeps nothing. A block
    inside another shares the outer one's.
    """
    if _ONCE.get() is not None:  # inside an outer block: share its parses
        yield
        return
    token = _ONCE.set({})
    try:
        yield
    finally:
        _ONCE.reset(token)


def parse(
    text: str, path: str, cache: FrontMatterCache | None = None, limits: Limits | None = None
) -> Parsed | Diagnostic:
    """Split `text` and parse its front matter into plain data, with key positions.

    With a `cache`, front matter parsed before is taken from it and new front matter is
    recorded in it. YAML is parsed within `limits` (see `tallinn.library.yamlsafe`); an entry
    of the cache is kept per set of limits, so a lower limit is never bypassed by it. Within
    `parsed_once()`, each front matter is parsed (or taken from the cache) once.
    """
    limits = limits or Limits()
    parts = split(text, path)
    if isinstance(parts, Diagnostic):
        return parts
    yaml_text, first_line, body, body_line = parts
    key = limits.fingerprint + "\0" + yaml_text
    once = _ONCE.get()
    known = once.get(key) if once is not None else None
    if known is not None:
        return Parsed(known[0], known[1], known[2], body, body_line)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        if once is not None:
            once[key] = cached
        return Parsed(cached[0], cached[1], cached[2], body, body_line)
    parsed = _parse_yaml(yaml_text, first_line, body, body_line, path, limits)
    if isinstance(parsed, Parsed):
        if cache is not None:
            cache.put(key, (dict(parsed.data), dict(parsed.key_marks),
                            dict(parsed.value_marks)), plain=parsed.plain)
        if once is not None:
            once[key] = (parsed.data, parsed.key_marks, parsed.value_marks)
    return parsed


def _parse_yaml(
    yaml_text: str, first_line: int, body: str, body_line: int, path: str, limits: Limits
) -> Parsed | Diagnostic:
    # Imported here: a load that finds everything in the front-matter cache needs no YAML.
    import yaml

    from tallinn.library import yamlsafe

    position = _positions(yaml_text, first_line)

    try:
        node, data, plain = yamlsafe.load_plain(yaml_text, limits)
    except yaml.YAMLError as exc:
        return _yaml_diagnostic(exc, yaml_text, first_line, path)
    except (ValueError, TypeError, OverflowError) as exc:  # a constructor: `2001-13-45`
        return Diagnostic("V102", f"invalid YAML value: {exc}", path, first_line, 1)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return Diagnostic(
            "V102", "front matter must be a mapping of keys to values", path, first_line, 1
        )
    key_marks: dict[str, tuple[int, int]] = {}
    value_marks: dict[str, tuple[int, int]] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            key_marks[key] = position(key_node.start_mark)
            value_marks[key] = position(value_node.start_mark)
        _argument_pattern_marks(node, position, key_marks)
    return Parsed({str(k): v for k, v in data.items()}, key_marks, value_marks, body, body_line,
                  plain)


# What YAML reads as a line break (or skips, a byte-order mark) and Tallinn's lines do not.
_YAML_ONLY = re.compile("[\u0085\u2028\u2029\ufeff]")


def _positions(yaml_text: str, first_line: int) -> Callable[[Any], tuple[int, int]]:
    """How to turn a YAML mark into the file's 1-based (line, column)."""
    if _YAML_ONLY.search(yaml_text) is None:
        # YAML counts lines and columns as the file does: its own are right.
        return lambda mark: (int(mark.line) + first_line, int(mark.column) + 1)
    lines = LineIndex(yaml_text)

    def position(mark: Any) -> tuple[int, int]:
        # From the mark's offset, not its line: YAML also ends lines at U+2028 and U+0085.
        line, col = lines.line_col(int(mark.index))
        return line + first_line - 1, col

    return position


def _argument_pattern_marks(
    node: yaml.MappingNode, position: Callable[[Any], tuple[int, int]],
    key_marks: dict[str, tuple[int, int]],
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
                    key_marks[f"arguments.{index}.pattern"] = position(item_key.start_mark)


def _yaml_diagnostic(
    exc: yaml.YAMLError, yaml_text: str, first_line: int, path: str
) -> Diagnostic:
    from tallinn.library import yamlsafe

    index = yamlsafe.mark_index(exc)
    lines = LineIndex(yaml_text)
    row, col = lines.line_col(min(index, len(yaml_text))) if index is not None else (1, 1)
    line = row + first_line - 1
    problem = yamlsafe.problem(exc)
    if isinstance(exc, yamlsafe.YamlLimitError):
        return Diagnostic("V113", f"front matter too large: {problem}", path, line, col)
    start = lines.offset(row)
    end = yaml_text.find("\n", start)
    source_line = yaml_text[start : end if end != -1 else len(yaml_text)]
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
