"""Read a library in the 2025 Tallinn format into the same `Library` model. Pure: no server,
no store; `load_library` uses it for such folders and `tallinn import` will reuse `read`.

A 2025 command is Markdown, with optional YAML front matter, that embeds an XML document::

    <command_file>
      <metadata><name>/git commit</name><purpose>Write a commit message</purpose></metadata>
      <arguments>
        <argument name="scope" type="string" required="false" default="api">
          <description>The scope of the commit</description>
        </argument>
      </arguments>
      <examples>
        <example><description>A scoped commit</description><usage>/git commit api</usage></example>
      </examples>
      <claude_prompt><prompt>
        <include>components/git/git-commit.md</include>
        <include component="components/workflow/error-handling.md"/>
        You are a git expert. ...
      </prompt></claude_prompt>
    </command_file>

A component (`components/<group>/<name>.md`) embeds `<prompt_component>` instead.

How it maps onto the model: the name is the file stem and the category the folder, as in the
native format; the description comes from the front matter, else `<purpose>` or
`<description>`; arguments and examples come from the XML. The body is the file after its front
matter, as Claude Code sends it, with every include rewritten in place to
`<include component="group/name"   />`, padded to the length of what was written, so that every
line and column still points into the file. An include written inside a CDATA section or a
comment is text, not a reference, and renders literally.

The embedded XML is untrusted input. It is cut out from its root element on, so it can carry no
DOCTYPE and so no entity declarations (no entity expansion, no external entities), and it is
parsed by lxml with entity resolution and network access off. Malformed XML is reported as V405
at its file, line and column, and the file is left out, as the native loader does with a broken
file. `README.md` and `CLAUDE.md` are documentation, and a file with neither front matter nor an
embedded document is a note: neither is loaded.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tallinn.library import files, frontmatter, loader
from tallinn.library.compose import Composer, Template
from tallinn.library.diagnostics import Diagnostic, LineIndex, Severity, line_col
from tallinn.library.model import (
    ArgType,
    Argument,
    ArgValue,
    Command,
    Component,
    Example,
    Library,
    LibraryConfig,
)
from tallinn.library.scanning import literal_spans
from tallinn.library.source import LibrarySource, as_source

if TYPE_CHECKING:
    from lxml import etree  # imported where XML is parsed: `detect` must stay light

FORMAT = "tallinn-2025"
ROOTS = ("command_file", "prompt_component")
MALFORMED_XML = "V405"
INVALID_ARGUMENT = "V406"
DOC_NAMES = frozenset({"readme.md", "claude.md"})

Kind = Literal["command", "component"]

_ROOT = re.compile(r"^[ \t]*<(command_file|prompt_component)(?=[\s/>])", re.MULTILINE)
_INCLUDE = re.compile(
    r"""<include>\s*(?P<text>[^<>\s]+)\s*</include>
    |<include\s+component\s*=\s*(?:"(?P<double>[^"<>]*)"|'(?P<single>[^'<>]*)')\s*/>
    |(?P<other><include\b)""",
    re.VERBOSE,
)
_COMPONENT_PATH = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")
_WHERE = re.compile(r",? line \d+, column \d+\s*$")
_XML_LINE = re.compile(r"\bline (\d+)")
_SPACE = re.compile(r"\s+")
_ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_COMMAND_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_TYPES = {t.value: t for t in ArgType}
_ROOT_TAGS = {name: re.compile(rf"<(/?){name}(?=[\s/>])[^<>]*?(/?)>") for name in ROOTS}


@dataclass(frozen=True, slots=True)
class Reference:
    """An include as written in a 2025 file, e.g. `<include>components/git/commit.md</include>`.

    `component` is the native name (`git/commit`); `start` and `end` are offsets in the file.
    """

    component: str
    written: str
    start: int
    end: int
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class LegacyExample:
    description: str
    usage: str


@dataclass(frozen=True, slots=True)
class RootSpan:
    """Where the embedded XML document is: `text[start:end]`; `end` is None when unclosed."""

    name: str
    start: int
    end: int | None


@dataclass(frozen=True, slots=True)
class LegacyFile:
    """One 2025 file, read: what the model needs and what an importer may want besides."""

    path: str
    kind: Kind
    name: str
    text: str
    root: RootSpan | None
    front_matter: Mapping[str, Any]
    description: str
    arguments: tuple[Argument, ...]
    examples: tuple[LegacyExample, ...]
    includes: tuple[Reference, ...]
    metadata: Mapping[str, str]
    prompt: str | None  # the inner text of <claude_prompt><prompt>, as written
    body: str  # the file after its front matter, includes rewritten (see the module docstring)
    body_line: int
    escapes: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # body (line, col)

    @property
    def category(self) -> str:
        return self.path.removeprefix("commands/").rpartition("/")[0] or "general"


def component_name(written: str) -> str | None:
    """Given `components/git/commit.md` (or `./components/...`, `git/commit`), return
    `git/commit`; None when it is not a component path."""
    name = written.strip().removeprefix("./").removeprefix("/").removeprefix("components/")
    name = name.removesuffix(".md")
    if not name or not _COMPONENT_PATH.fullmatch(name) or ".." in name.split("/"):
        return None
    return name


def native_include(component: str, width: int = 0) -> str:
    """The native include of `component`, padded with spaces before `/>` to `width`."""
    head = f'<include component="{component}"'
    return head + " " * max(width - len(head) - 2, 0) + "/>"


def root_span(text: str) -> RootSpan | None:
    """Find the embedded `<command_file>` or `<prompt_component>` element of `text`.

    The root starts a line; its end is the closing tag that brings the nesting of its name
    back to zero, ignoring comments and CDATA (a component may quote itself in CDATA).
    """
    found = _ROOT.search(text)
    if found is None:
        return None
    name = found.group(1)
    start = found.start(1) - 1
    literal = _literals(text, start)
    depth = 0
    last_close: int | None = None
    for match in _ROOT_TAGS[name].finditer(text, start):
        if _inside(literal, match.start()):
            continue
        if match.group(1):
            depth -= 1
            last_close = match.end()
            if depth == 0:
                return RootSpan(name, start, match.end())
        elif not match.group(2):
            depth += 1
    return RootSpan(name, start, last_close)


def _literals(text: str, start: int = 0) -> list[tuple[int, int]]:
    """The comments and CDATA sections of `text` from `start`, in order (in one pass: an
    unclosed comment costs no more than a closed one)."""
    return literal_spans(text, start) if "<!" in text else []


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    index = bisect.bisect_right(spans, offset, key=lambda span: span[0]) - 1
    return index >= 0 and spans[index][0] <= offset < spans[index][1]


def read(
    rel: str, text: str, kind: Kind, limits: files.Limits | None = None
) -> tuple[LegacyFile | None, list[Diagnostic]]:
    """Read one 2025 file (`text` with `\\n` newlines) at library path `rel`.

    Returns (None, problems) when the file is not a prompt file or cannot be read.
    """
    diagnostics: list[Diagnostic] = []
    data: dict[str, Any] = {}
    parsed: frontmatter.Parsed | None = None
    body, body_line = text, 1
    if text.startswith("---"):
        result = frontmatter.parse(text, rel, limits=limits)
        if isinstance(result, Diagnostic):
            return None, [result]
        parsed = result
        data = dict(parsed.data)
        body, body_line = parsed.body, parsed.body_line
    span = root_span(text)
    if span is None and parsed is None:
        return None, []  # a note, not a prompt
    element = None
    if span is not None:
        element = _parse_xml(rel, text, span, diagnostics)
        if element is None:
            return None, diagnostics
    metadata = _metadata(element)
    description = _text(data.get("description")) or metadata.get("purpose", "") or (
        metadata.get("description", "") or _first_text(element, "step/description")
    )
    if parsed is not None:
        checked = frontmatter.Parsed(
            {**data, "description": description or "-"}, parsed.key_marks,
            parsed.value_marks, parsed.body, parsed.body_line,
        )
        spec, problems = frontmatter.validate(checked, rel, command=kind == "command")
        diagnostics.extend(problems)
        if spec is None or any(p.is_error for p in problems):
            return None, diagnostics
    where = _locator(text, span)
    arguments = _arguments(element, rel, where, diagnostics)
    limits = limits or files.Limits()
    if len(arguments) > limits.max_arguments:
        line, col = line_col(text, span.start) if span is not None else (1, 1)
        diagnostics.append(loader.too_many_arguments(len(arguments), limits, rel, line, col))
        return None, diagnostics
    examples = _examples(element)
    offset = len(text) - len(body)
    converted, includes, escapes = _convert(text, offset)
    stem = rel.rsplit("/", 1)[-1].removesuffix(".md")
    name = stem if kind == "command" else rel.removeprefix("components/").removesuffix(".md")
    return LegacyFile(
        path=rel, kind=kind, name=name, text=text, root=span, front_matter=data,
        description=description, arguments=arguments, examples=examples,
        includes=includes, metadata=metadata, prompt=_prompt(element),
        body=converted, body_line=body_line, escapes=escapes,
    ), diagnostics


def _parse_xml(
    rel: str, text: str, span: RootSpan, diagnostics: list[Diagnostic]
) -> etree._Element | None:
    line, col = line_col(text, span.start)
    if span.end is None:
        diagnostics.append(Diagnostic(
            MALFORMED_XML,
            f"embedded XML is not well-formed: <{span.name}> is never closed", rel, line, col,
        ))
        return None
    from lxml import etree

    source = text[span.start : span.end]
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True, strip_cdata=False,
    )
    try:
        return etree.fromstring(source.encode("utf-8"), parser)
    except etree.XMLSyntaxError as exc:
        row, column = _error_position(source, exc)
        message = _collapse(_WHERE.sub("", str(exc.msg)))
        message = _XML_LINE.sub(lambda m: f"line {int(m.group(1)) + line - 1}", message)
        if "EntityRef" in message:
            message += " (write & as &amp;, or put the text in a CDATA section)"
        if row == 1:
            column += col - 1
        diagnostics.append(Diagnostic(
            MALFORMED_XML, f"embedded XML is not well-formed: {message}",
            rel, line + row - 1, max(column, 1),
        ))
        return None


def _error_position(source: str, exc: etree.XMLSyntaxError) -> tuple[int, int]:
    """Where lxml's error is; a tag mismatch points at the closing tag, not after it."""
    row, column = exc.position if exc.position else (1, 1)
    lines = source.split("\n")
    source_line = lines[row - 1] if 0 < row <= len(lines) else ""
    message = str(exc.msg)
    if "mismatch" in message and "</" in source_line[: max(column - 1, 0)]:
        return row, source_line.rfind("</", 0, max(column - 1, 0)) + 1
    return row, max(column, 1)


def _metadata(element: etree._Element | None) -> dict[str, str]:
    if element is None:
        return {}
    found: dict[str, str] = {}
    meta = element.find("metadata")
    for child in meta if meta is not None else ():
        if isinstance(child.tag, str):
            key = "name" if child.tag == "n" else child.tag
            found.setdefault(key, _collapse(_all_text(child)))
    return found


def _first_text(element: etree._Element | None, path: str) -> str:
    if element is None:
        return ""
    found = element.find(path)
    return _collapse(_all_text(found)) if found is not None else ""


def _all_text(element: etree._Element) -> str:
    return "".join(t if isinstance(t, str) else t.decode() for t in element.itertext())


def _prompt(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    prompt = element.find("claude_prompt/prompt")
    if prompt is None:
        return None
    from lxml import etree

    parts = [prompt.text or ""]
    parts.extend(etree.tostring(child, encoding="unicode") for child in prompt)
    return "".join(parts)


def _locator(text: str, span: RootSpan | None) -> Any:
    """Given an element, return its file (line, col): lxml knows lines, the text has columns."""
    first_line = line_col(text, span.start)[0] if span is not None else 1
    lines = text.split("\n")

    def where(element: etree._Element, attribute: str | None = None) -> tuple[int, int]:
        number = element.sourceline
        line = first_line + (number if isinstance(number, int) else 1) - 1
        source = lines[line - 1] if line - 1 < len(lines) else ""
        tag = f"<{element.tag}"
        col = source.find(tag) + 1 or 1
        if attribute is not None:
            col = source.find(attribute, col - 1) + 1 or col
        return line, col

    return where


def _arguments(
    element: etree._Element | None, rel: str, where: Any, diagnostics: list[Diagnostic]
) -> tuple[Argument, ...]:
    """Read `<arguments><argument name= type= required= default=>`; what cannot be kept as
    written is adjusted and reported as a warning (V406), never dropped silently."""
    from tallinn.library.render import coerce

    if element is None:
        return ()
    result: list[Argument] = []
    seen: set[str] = set()

    def warn(node: etree._Element, message: str, attribute: str | None = None) -> None:
        line, col = where(node, attribute)
        diagnostics.append(Diagnostic(
            INVALID_ARGUMENT, message, rel, line, col, Severity.WARNING,
        ))

    for node in element.iterfind("arguments/argument"):
        name = (node.get("name") or "").strip()
        if not _ARGUMENT_NAME.fullmatch(name):
            warn(node, f"argument name {name!r} is not valid (letters, digits, _ and -); "
                       "the argument is left out")
            continue
        if name in seen:
            warn(node, f"argument '{name}' is declared twice; the second is left out")
            continue
        seen.add(name)
        written_type = (node.get("type") or "string").strip().lower()
        kind = _TYPES.get(written_type)
        if kind is None or kind is ArgType.ENUM:
            warn(node, f"argument '{name}' has type '{written_type}', which Tallinn does not "
                       "know; it is read as a string", "type=")
            kind = ArgType.STRING
        required = (node.get("required") or "false").strip().lower() in {"true", "yes", "1"}
        argument = Argument(
            name=name, description=_first_text(node, "description"), type=kind,
            required=required,
        )
        written_default = node.get("default")
        if written_default is not None:
            try:
                default: ArgValue = coerce(argument, written_default)
            except ValueError as exc:
                warn(node, f"argument '{name}': default {written_default!r} is not valid "
                           f"({exc}); it is left out", "default=")
            else:
                if required:
                    warn(node, f"argument '{name}' is required and has a default; "
                               "it is read as optional with that default", "required=")
                argument = Argument(
                    name=name, description=argument.description, type=kind, required=False,
                    default=default,
                )
        result.append(argument)
    return tuple(result)


def _examples(element: etree._Element | None) -> tuple[LegacyExample, ...]:
    if element is None:
        return ()
    return tuple(
        LegacyExample(_first_text(node, "description"), _first_text(node, "usage"))
        for node in element.iterfind("examples/example")
    )


def _convert(
    text: str, offset: int
) -> tuple[str, tuple[Reference, ...], tuple[tuple[int, int], ...]]:
    """Rewrite the includes of `text[offset:]` (the body) as native ones of the same length.

    Returns the new body, the references and where a backslash was added before an
    `<include` that is not a reference (body line, column of the backslash).
    """
    body = text[offset:]
    if "<include" not in body:
        return body, (), ()
    literal = _literals(body)
    lines = LineIndex(text)
    out: list[str] = []
    references: list[Reference] = []
    escapes: list[tuple[int, int]] = []
    added: dict[int, int] = {}  # body line -> backslashes added on it so far
    pos = 0
    for match in _INCLUDE.finditer(body):
        start, end = match.span()
        written = match.group("text") or match.group("double") or match.group("single")
        out.append(body[pos:start])
        if _inside(literal, start):
            # Text, not a reference: escaped so that it renders as written.
            line, col = lines.line_col(offset + start)
            escapes.append((line, col + added.get(line, 0)))
            added[line] = added.get(line, 0) + 1
            out.append("\\<include")
            pos = start + len("<include")
            continue
        component = None if written is None else component_name(written)
        if component is None:
            # Not a component path: the composer reports it as a malformed include (V202).
            out.append(body[start:end])
            pos = end
            continue
        line, col = lines.line_col(offset + start)
        references.append(Reference(component, written or "", offset + start, offset + end,
                                    line, col))
        out.append(_same_length(component, body[start:end]))
        pos = end
    out.append(body[pos:])
    return "".join(out), tuple(references), tuple(escapes)


def _same_length(component: str, written: str) -> str:
    """A native include of `component` as long as `written`, with its newlines where they
    were last, so that the text after it keeps its line and column."""
    newlines = written.count("\n")
    tail = len(written) - written.rfind("\n") - 1 if newlines else 0
    head = f'<include component="{component}"'
    spaces = len(written) - len(head) - newlines - max(tail, 2)
    if spaces < 0:
        return native_include(component)
    if not newlines:
        return native_include(component, len(written))
    return head + " " * spaces + "\n" * newlines + " " * (tail - 2) + "/>"


def _collapse(value: str) -> str:
    return _SPACE.sub(" ", value).strip()


def _text(value: Any) -> str:
    return _collapse(value) if isinstance(value, str) else ""


def detect(base: LibrarySource | Path) -> bool:
    """Is the library `base` (a source, or a folder) in the 2025 format?

    Yes when `tallinn.toml` says `[library] format = "tallinn-2025"`; without a tallinn.toml,
    when more than half of its prompt files embed a `<command_file>` or `<prompt_component>`
    at the start of a line, so that a native library that mentions them is not mistaken.
    Files are read as the loader reads them; one that cannot be read counts as plain.
    """
    reader = as_source(base).files()
    if reader.exists(loader.CONFIG_FILE):
        text = reader.read_text(loader.CONFIG_FILE)
        if isinstance(text, Diagnostic):
            return False  # the native loader reports it
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return False  # the native loader reports it
        library = data.get("library")
        return isinstance(library, dict) and library.get("format") == FORMAT
    paths = list(_markdown_files(reader, []))
    embedded = plain = 0
    for rel in paths:  # stop as soon as the majority is known
        raw = reader.read_bytes(rel)
        if not isinstance(raw, Diagnostic) and _ROOT.search(raw.decode("utf-8", "replace")):
            embedded += 1
        else:
            plain += 1
        if embedded * 2 > len(paths) or plain * 2 >= len(paths):
            break
    return embedded > plain


def _is_prompt_file(name: str) -> bool:
    return name.endswith(".md") and name.lower() not in DOC_NAMES


def _markdown_files(reader: files.FileReader, diagnostics: list[Diagnostic]) -> Iterable[str]:
    """Yield the relative paths of the prompt files under components/ and commands/."""
    for folder in ("components", "commands"):
        paths, problems = reader.walk(folder, _is_prompt_file)
        diagnostics.extend(problems)
        yield from paths


def load(base: LibrarySource | Path) -> Library:
    """Load a 2025-format library (a source, or a folder) into a composed `Library` (see the
    module doc). A rebuild of it is a full build: its files are converted as a whole."""

    source = as_source(base)
    diagnostics: list[Diagnostic] = []
    digest = loader.ContentHash()
    config = loader.load_config(source, diagnostics, digest)
    library_table = dict(config.table("library"))
    library_table["format"] = FORMAT
    config = LibraryConfig(config.name, config.description,
                           {**config.tables, "library": library_table}, config.limits)
    reader = source.files(config.limits)
    by_kind: dict[Kind, list[LegacyFile]] = {"command": [], "component": []}
    failed: dict[str, str] = {}
    for rel in _markdown_files(reader, diagnostics):
        kind: Kind = "component" if rel.startswith("components/") else "command"
        raw = reader.read_bytes(rel)
        if isinstance(raw, Diagnostic):
            diagnostics.append(raw)
            if kind == "component":
                failed[rel.removeprefix("components/").removesuffix(".md")] = rel
            continue
        digest.add(rel, raw)
        text = files.decode(raw, rel)
        if isinstance(text, Diagnostic):
            diagnostics.append(text)
            failed[rel.removeprefix("components/").removesuffix(".md")] = rel
            continue
        legacy, problems = read(rel, text, kind, config.limits)
        diagnostics.extend(problems)
        if legacy is not None:
            by_kind[kind].append(legacy)
        elif kind == "component" and any(p.is_error for p in problems):
            failed[rel.removeprefix("components/").removesuffix(".md")] = rel
    components = {f.name: _component(f) for f in by_kind["component"]}
    commands, duplicates = _commands(by_kind["command"], diagnostics)

    composer = Composer(components, failed, config.limits)
    templates: dict[str, Template] = {}
    for command in [*commands.values(), *duplicates]:
        template = composer.compose(command)
        if command.name in commands and commands[command.name] is command:
            if template is None:
                del commands[command.name]
            else:
                templates[command.name] = template
    composer.check_all_components()
    escapes = {f.path: _by_line(f.escapes) for kind in by_kind for f in by_kind[kind]
               if f.escapes}
    for diagnostic in composer.diagnostics:
        if diagnostic.code == "V302":
            continue  # 2025 commands take their arguments implicitly, as Claude Code passes them
        diagnostics.append(_unescape(diagnostic, escapes.get(diagnostic.path, {})))
    return loader.assemble(source, commands, components, templates, diagnostics, config, digest)


def _component(legacy: LegacyFile) -> Component:
    return Component(
        name=legacy.name, path=legacy.path, description=legacy.description,
        arguments=legacy.arguments, body_line=legacy.body_line, source=legacy.text,
        body_start=len(legacy.text), converted_body=legacy.body,
    )


def _commands(
    files: list[LegacyFile], diagnostics: list[Diagnostic]
) -> tuple[dict[str, Command], list[Command]]:
    """Commands by name, and the duplicates left out (still composed, for their includes)."""

    commands: dict[str, Command] = {}
    duplicates: list[Command] = []
    for legacy in files:
        data = legacy.front_matter
        tools = data.get("allowed-tools")
        allowed = tuple(loader.split_tools(tools)) if isinstance(tools, str) else tuple(
            str(t).strip() for t in tools or () if str(t).strip()
        )
        hint = data.get("argument-hint")
        tags = data.get("tags")
        command = Command(
            name=legacy.name, path=legacy.path, description=legacy.description,
            arguments=legacy.arguments, body_line=legacy.body_line,
            source=legacy.text, body_start=len(legacy.text), converted_body=legacy.body,
            category=legacy.category,
            argument_hint=None if hint is None else str(hint), allowed_tools=allowed,
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
            examples=tuple(
                Example(f"{e.description} ({e.usage})" if e.usage else e.description, {})
                for e in legacy.examples
            ),
        )
        if not _COMMAND_NAME.fullmatch(command.name):
            diagnostics.append(Diagnostic(
                "V109",
                f"command name '{command.name}' should use lowercase letters, digits and "
                "hyphens only, as Claude Code slash commands do",
                command.path, severity=Severity.WARNING,
            ))
        other = commands.get(command.name)
        if other is not None:
            diagnostics.append(Diagnostic(
                "V107",
                f"duplicate command name '{command.name}': also defined in {other.path}",
                command.path,
            ))
            duplicates.append(command)
            continue
        commands[command.name] = command
    return commands, duplicates


def _by_line(escapes: tuple[tuple[int, int], ...]) -> dict[int, list[int]]:
    """Given (line, col) of each added backslash, the sorted columns of each line."""
    found: dict[int, list[int]] = {}
    for line, col in escapes:
        found.setdefault(line, []).append(col)
    return {line: sorted(cols) for line, cols in found.items()}


def _unescape(diagnostic: Diagnostic, escapes: Mapping[int, list[int]]) -> Diagnostic:
    """Move a composer diagnostic back past the backslashes `_convert` added on its line."""
    shift = bisect.bisect_left(escapes.get(diagnostic.line, ()), diagnostic.col)
    if not shift:
        return diagnostic
    from dataclasses import replace

    return replace(diagnostic, col=diagnostic.col - shift)
