"""Convert a library in the 2025 Tallinn format (XML-in-Markdown) into a native library.

Each file is read by `tallinn.library.legacy.read`, the reader the loader itself uses, and
written back as native Markdown with YAML front matter:

- front matter: the description (front matter, else `<purpose>`), Claude Code's keys as
  written (`argument-hint`, `allowed-tools`, `model`, ...), `arguments` from `<arguments>`
  and `examples` from `<examples>`, an example's usage mapped onto the arguments when its
  words fit them in order;
- body: the prompt, `<claude_prompt><prompt>` of a command or the inside of a
  `<prompt_component>`, dedented, CDATA sections unwrapped, every include written
  `<include component="group/name"/>`; literal template syntax (`{{`, an `<include` in text)
  is escaped with a backslash so that it still renders as written.

What cannot be carried is a finding and a marker in the written file:

    I101  dangling include          the component does not exist: a marker stands in its place
    I102  include cycle             the include that closes a cycle is replaced by a marker
    I103  malformed include         an `<include` that names no component path
    I201  unreadable file           malformed XML or front matter: the original text is kept,
                                    fenced and inert, under a marker
    I301  duplicate command name    the later file (in path order) gets `category-name`
    I302  command name changed      made a valid slash-command name
    I401  example usage not mapped  kept in the example's description
    I501  not part of the prompt    other XML elements (`<dependencies>`, ...) and the Markdown
                                    outside the XML document: named in a marker
    I502  documentation             README.md is copied in place, CLAUDE.md and notes to docs/

The loader's own findings about a file (V405 malformed XML, V406 argument adjusted, V104
unknown key, ...) are passed on with its codes. The written library is loaded natively at the
end and its diagnostics are part of the report.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tallinn.importers import (
    MARKER,
    ConvertedFile,
    Finding,
    FindingLevel,
    ImporterError,
    ImportReport,
    marker,
)
from tallinn.library import frontmatter, legacy, loader
from tallinn.library.diagnostics import Diagnostic, line_col
from tallinn.library.errors import ArgumentError, LibraryError
from tallinn.library.model import Argument
from tallinn.library.render import resolve

FORMAT = legacy.FORMAT
_COMMAND_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_LITERAL = re.compile(r"<!--.*?-->|<!\[CDATA\[(?P<cdata>.*?)\]\]>", re.DOTALL)
_INERT = re.compile(r"\\?(\{\{|\$ARGUMENTS|<include\b)")
_LIVE = re.compile(r"\\?(\{\{|<include\b)")  # $ARGUMENTS keeps working, as in Claude Code
_PROMPT_TAGS = re.compile(r"<(/?)(claude_prompt|prompt)(?=[\s/>])[^<>]*?(/?)>")
_USES_ARGUMENTS = re.compile(r"(?<!\\)(\$ARGUMENTS|\{\{)")
_CARRIED = frozenset({"metadata", "arguments", "examples", "claude_prompt"})
_FORMAT_LINE = re.compile(
    r"""^[ \t]*format[ \t]*=[ \t]*["']tallinn-2025["'][ \t]*(?:\#.*)?\n?""", re.MULTILINE
)


@dataclass(slots=True)
class _Source:
    """One prompt file of the source library, read."""

    rel: str
    kind: legacy.Kind
    text: str
    file: legacy.LegacyFile | None
    problems: list[Diagnostic]
    name: str = ""  # the native name: a command's may change (I301, I302)
    target: str = ""
    findings: list[Finding] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return self.file is not None and not any(p.is_error for p in self.problems)


def convert(src: Path, out: Path) -> ImportReport:
    """Convert the 2025 library at `src` into a native library written to `out`.

    `out` must not exist or be empty. Raises `ImporterError` only when the import cannot
    start; everything found in the source is in the report.
    """
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise ImporterError(f"source library not found: {src}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImporterError(f"{out} exists and is not empty: give a new or empty folder")
    if out.resolve().is_relative_to(src.resolve()):
        raise ImporterError(f"{out} is inside the source library {src}: give another folder")
    report = ImportReport(FORMAT, src, out)
    out.mkdir(parents=True, exist_ok=True)
    sources = _read_sources(src, report)
    components = {s.file.name if s.file else _component_name(s.rel): s
                  for s in sources if s.kind == "component"}
    for source in components.values():
        source.name = source.file.name if source.file else _component_name(source.rel)
        source.target = f"components/{source.name}.md"
    _name_commands([s for s in sources if s.kind == "command"])
    cut = _cycle_edges(components)
    for source in sources:
        text = _write_source(source, components, cut)
        target = out / source.target
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        report.markers += text.count(f"<!-- {MARKER}")
        report.findings.extend(source.findings)
    _write_config(src, out, report)
    _check(out, sources, components, report)
    return report


# ---------------------------------------------------------------------------- reading


def _read_sources(src: Path, report: ImportReport) -> list[_Source]:
    """Read every file of `src`: prompt files are returned, the rest copied as they are."""
    sources: list[_Source] = []
    for rel, path in _walk(src):
        if path.is_symlink():
            report.findings.append(Finding(
                "I502", rel, 1, 1, "a symbolic link is not followed; it is left out",
                FindingLevel.WARNING,
            ))
            report.files.append(ConvertedFile(rel, None, "skipped", None, False))
            continue
        top = rel.split("/", 1)[0]
        is_prompt = top in ("commands", "components") and rel.endswith(".md") and "/" in rel
        if rel == "tallinn.toml":
            continue  # rewritten by _write_config
        if not is_prompt:
            _copy(path, report.out / rel, rel, "copied", report)
            continue
        if path.name.lower() in legacy.DOC_NAMES:
            _documentation(path, rel, report)
            continue
        raw = path.read_bytes()
        kind: legacy.Kind = "component" if top == "components" else "command"
        text = loader.decode(raw, rel)
        if isinstance(text, Diagnostic):
            sources.append(_Source(rel, kind, raw.decode("utf-8", "replace"), None, [text]))
            continue
        file, problems = legacy.read(rel, text, kind)
        if file is None and not problems:
            _documentation(path, rel, report)  # a note: neither front matter nor XML
            continue
        sources.append(_Source(rel, kind, text, file, problems))
    return sources


def _walk(base: Path) -> list[tuple[str, Path]]:
    """Every file under `base` (dot folders left out), as (relative path, path), sorted."""
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            path = Path(dirpath, name)
            found.append((path.relative_to(base).as_posix(), path))
    return sorted(found)


def _copy(path: Path, target: Path, rel: str, kind: str, report: ImportReport) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    report.files.append(ConvertedFile(
        rel, target.relative_to(report.out).as_posix(), kind, None, True,
    ))


def _documentation(path: Path, rel: str, report: ImportReport) -> None:
    """README.md stays where it is (the native loader skips it); other documentation and
    notes would be read as prompts there, so they go to docs/."""
    if path.name.lower() == "readme.md":
        _copy(path, report.out / rel, rel, "documentation", report)
        return
    target = f"docs/{rel}"
    report.findings.append(Finding(
        "I502", rel, 1, 1, f"documentation, not a prompt: copied to {target}", FindingLevel.INFO,
    ))
    _copy(path, report.out / target, rel, "documentation", report)


def _component_name(rel: str) -> str:
    return rel.removeprefix("components/").removesuffix(".md")


def _name_commands(commands: list[_Source]) -> None:
    """Give every command a valid, unique native name; the first in path order keeps its own."""
    taken: dict[str, str] = {}
    for source in commands:
        stem = source.rel.rsplit("/", 1)[-1].removesuffix(".md")
        category = source.rel.removeprefix("commands/").rpartition("/")[0]
        name = _slug(stem)
        if name != stem:
            source.findings.append(Finding(
                "I302", source.rel, 1, 1,
                f"command name '{stem}' is not a valid slash-command name; written as '{name}'",
                FindingLevel.WARNING,
            ))
        if name in taken:
            wanted = name
            name = _slug(f"{category.replace('/', '-')}-{wanted}") if category else wanted
            number = 2
            while name in taken:
                name, number = f"{_slug(f'{category}-{wanted}')}-{number}", number + 1
            source.findings.append(Finding(
                "I301", source.rel, 1, 1,
                f"duplicate command name '{wanted}' (also {taken[wanted]}); written as '{name}'",
                FindingLevel.WARNING,
            ))
        taken[name] = source.rel
        source.name = name
        source.target = f"commands/{category + '/' if category else ''}{name}.md"


def _slug(name: str) -> str:
    """Given `Deploy_Now`, return `deploy-now`."""
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return slug if _COMMAND_NAME.fullmatch(slug) else "command"


def _cycle_edges(components: dict[str, _Source]) -> set[tuple[str, int]]:
    """The includes that close a cycle, as (component name, offset of the include).

    A depth-first walk in name order; an include of a component on the current path is cut,
    so that the rest of each cycle is carried.
    """
    cut: set[tuple[str, int]] = set()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(name: str) -> None:
        state[name] = 1
        source = components[name]
        for reference in source.file.includes if source.file else ():
            child = reference.component
            if child not in components:
                continue
            if state.get(child) == 1:
                cut.add((name, reference.start))
            elif child not in state:
                visit(child)
        state[name] = 2

    for name in sorted(components):
        if name not in state:
            visit(name)
    return cut


# ---------------------------------------------------------------------------- writing


def _write_source(
    source: _Source, components: dict[str, _Source], cut: set[tuple[str, int]]
) -> str:
    first_error = next((p for p in source.problems if p.is_error), None)
    for problem in source.problems:
        if problem is not first_error:  # the first error is reported with the marker
            source.findings.append(Finding(
                problem.code, problem.path, problem.line, problem.col, problem.message,
                FindingLevel.ERROR if problem.is_error else FindingLevel.WARNING,
            ))
    if not source.readable:
        return _write_unreadable(source)
    assert source.file is not None
    front = _front_matter(source)
    body = _body(source, components, cut)
    return _document(front, body)


def _write_unreadable(source: _Source) -> str:
    """The original text, fenced and inert, under a marker naming the problem."""
    problem = next((p for p in source.problems if p.is_error), None)
    message = problem.message if problem else "the file could not be read"
    line, col = (problem.line, problem.col) if problem else (1, 1)
    source.findings.append(Finding(
        problem.code if problem else "I201", source.rel, line, col,
        f"{message}; the original text is kept in a fenced block",
    ))
    description = _description_of_unreadable(source)
    fence = "~" * max(4, max((len(m) for m in re.findall(r"~+", source.text)), default=0) + 1)
    body = (
        marker(f"{source.rel}:{line}:{col}: {message}. The original text is kept below, "
               "as text: fix it and convert again, or rewrite it as a native prompt.")
        + f"\n\n{fence}text\n{_INERT.sub(_escape, source.text)}\n{fence}\n"
    )
    return _document({"description": description}, body)


def _description_of_unreadable(source: _Source) -> str:
    if source.text.startswith("---"):
        parsed = frontmatter.parse(source.text, source.rel)
        if not isinstance(parsed, Diagnostic):
            written = parsed.data.get("description")
            if isinstance(written, str) and written.strip():
                return " ".join(written.split())
    return f"Imported from {source.rel}, which could not be read"


def _front_matter(source: _Source) -> dict[str, Any]:
    file = source.file
    assert file is not None
    front: dict[str, Any] = {"description": file.description or f"Imported from {source.rel}"}
    for key, value in file.front_matter.items():
        if key not in ("description", "arguments", "examples"):
            front[key] = value
    if file.arguments:
        front["arguments"] = [_argument(a) for a in file.arguments]
    if source.kind == "command" and file.examples:
        front["examples"] = [_example(source, e) for e in file.examples]
    return front


def _argument(argument: Argument) -> dict[str, Any]:
    written: dict[str, Any] = {"name": argument.name}
    if argument.description:
        written["description"] = argument.description
    if argument.type.value != "string":
        written["type"] = argument.type.value
    if argument.required:
        written["required"] = True
    if argument.default is not None:
        written["default"] = argument.default
    return written


def _example(source: _Source, example: legacy.LegacyExample) -> dict[str, Any]:
    """`{description, args}`, the usage's words given to the arguments in order when they fit
    (`/db backup full` with arguments `type, target`: `{type: full}`)."""
    file = source.file
    assert file is not None
    args = _usage_args(file, example.usage)
    if args is not None:
        return {"description": example.description or example.usage, "args": args}
    if example.usage:
        try:
            resolve(file.arguments, {})
        except ArgumentError as exc:
            level = FindingLevel.WARNING
            why = f" and the example without arguments is not valid: {exc}"
        else:
            level, why = FindingLevel.INFO, ""
        source.findings.append(Finding(
            "I401", source.rel, 1, 1,
            f"example usage {example.usage!r} does not map onto the arguments; it is kept in "
            f"the example's description{why}", level,
        ))
    described = f"{example.description} ({example.usage})" if example.usage else (
        example.description)
    return {"description": described, "args": {}}


def _usage_args(file: legacy.LegacyFile, usage: str) -> dict[str, str] | None:
    invoked = file.metadata.get("name", "")
    words = usage.strip()
    if invoked and words.startswith(invoked):
        words = words[len(invoked):]
    elif words.startswith("/"):
        words = words.partition(" ")[2]
    try:
        tokens = shlex.split(words)
    except ValueError:
        return None
    if len(tokens) > len(file.arguments) or any(t.startswith("-") for t in tokens):
        return None
    args = {a.name: t for a, t in zip(file.arguments, tokens, strict=False)}
    try:
        resolve(file.arguments, args)
    except ArgumentError:
        return None
    return args


def _body(source: _Source, components: dict[str, _Source], cut: set[tuple[str, int]]) -> str:
    file = source.file
    assert file is not None
    assert source.readable
    text = file.text
    start, end = _prompt_span(file)
    notes = _not_carried(source, start, end)
    references = {r.start: r for r in file.includes if start <= r.start < end}
    out: list[str] = []
    pos = start
    for match in _LITERAL.finditer(text, start, end):
        out.append(_carry(source, text, pos, match.start(), references, components, cut))
        cdata = match.group("cdata")
        out.append(_LIVE.sub(_escape, cdata if cdata is not None else match.group(0)))
        pos = match.end()
    out.append(_carry(source, text, pos, end, references, components, cut))
    body = textwrap.dedent("".join(out)).strip("\n")
    if source.kind == "command" and file.arguments and not _USES_ARGUMENTS.search(body):
        # Claude Code appends the arguments to a command that does not place them; the
        # native renderer places only what the body names.
        body += "\n\nARGUMENTS: $ARGUMENTS"
    if notes:
        body += "\n\n" + marker(notes)
    return body + "\n"


def _carry(
    source: _Source, text: str, start: int, end: int, references: dict[int, legacy.Reference],
    components: dict[str, _Source], cut: set[tuple[str, int]],
) -> str:
    """Text outside comments and CDATA: includes rewritten, other template tokens escaped."""
    out: list[str] = []
    pos = start
    for offset in sorted(o for o in references if start <= o < end):
        out.append(_text(source, text, pos, offset))
        out.append(_include(source, references[offset], components, cut))
        pos = references[offset].end
    out.append(_text(source, text, pos, end))
    return "".join(out)


def _text(source: _Source, text: str, start: int, end: int) -> str:
    """Plain prompt text: an `<include` left in it names no component, and is escaped."""
    chunk = text[start:end]
    for found in re.finditer(r"<include\b", chunk):
        line, col = line_col(text, start + found.start())
        source.findings.append(Finding(
            "I103", source.rel, line, col, "an include that names no component path; kept as text",
        ))
    return _LIVE.sub(_escape, chunk)


def _include(
    source: _Source, reference: legacy.Reference, components: dict[str, _Source],
    cut: set[tuple[str, int]],
) -> str:
    target = components.get(reference.component)
    if target is None:
        message = (f"dangling include: component '{reference.component}' "
                   f"({reference.written}) does not exist in the source library")
        code = "I101"
    elif (source.name, reference.start) in cut and source.kind == "component":
        message = (f"include of '{reference.component}' left out: it closes an include "
                   "cycle")
        code = "I102"
    else:
        return legacy.native_include(reference.component)
    source.findings.append(Finding(code, source.rel, reference.line, reference.col, message))
    return marker(message)


def _escape(match: re.Match[str]) -> str:
    token = match.group(1)
    return match.group(0) if match.group(0).startswith("\\") else "\\" + token


def _prompt_span(file: legacy.LegacyFile) -> tuple[int, int]:
    """Where the prompt is in `file.text`: inside `<claude_prompt><prompt>` (or
    `<claude_prompt>` alone) of a command, inside the root of a component; without an XML
    document, the body after the front matter."""
    text, root = file.text, file.root
    if root is None or root.end is None:
        return len(text) - len(_raw_body(file)), len(text)
    root_open = text.index(">", root.start) + 1
    root_close = text.rindex("</", root.start, root.end)
    if file.kind == "component":
        return root_open, root_close
    literal = [m.span() for m in _LITERAL.finditer(text, root.start, root.end)]
    outer = _element(text, "claude_prompt", root_open, root_close, literal)
    if outer is None:
        return root_open, root_close
    inner = _element(text, "prompt", outer[0], outer[1], literal)
    return inner if inner is not None else outer


def _raw_body(file: legacy.LegacyFile) -> str:
    parts = frontmatter.split(file.text, file.path)
    return file.text if isinstance(parts, Diagnostic) else parts[2]


def _element(
    text: str, name: str, start: int, end: int, literal: list[tuple[int, int]]
) -> tuple[int, int] | None:
    """The inside of the first element `name` in `text[start:end]`, outside literals."""
    depth = 0
    inner_start = 0
    for match in _PROMPT_TAGS.finditer(text, start, end):
        if match.group(2) != name or any(a <= match.start() < b for a, b in literal):
            continue
        if match.group(1):
            depth -= 1
            if depth == 0:
                return inner_start, match.start()
        elif match.group(3):
            if depth == 0:
                return match.end(), match.end()
        else:
            if depth == 0:
                inner_start = match.end()
            depth += 1
    return None


def _not_carried(source: _Source, start: int, end: int) -> str:
    """Name what the prompt leaves out: other XML elements and Markdown outside the XML."""
    file = source.file
    assert file is not None
    if file.root is None or file.root.end is None or file.kind == "component":
        return ""
    from lxml import etree

    root = file.root
    assert root.end is not None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             remove_comments=True)
    element = etree.fromstring(file.text[root.start:root.end].encode("utf-8"), parser)
    first = line_col(file.text, root.start)[0]
    left: list[str] = []
    for child in element:
        if isinstance(child.tag, str) and child.tag not in _CARRIED:
            number = child.sourceline
            line = first + (number if isinstance(number, int) else 1) - 1
            left.append(f"element {child.tag} (line {line})")
    body_start = len(file.text) - len(_raw_body(file))
    before = file.text[body_start:root.start].strip()
    after = file.text[root.end:].strip()
    if before:
        lines = (line_col(file.text, body_start)[0], line_col(file.text, root.start)[0] - 1)
        left.append(f"the Markdown before {root.name} (lines {lines[0]}-{lines[1]})")
    if after:
        left.append(f"the Markdown after {root.name}")
    if not left:
        return ""
    message = f"not part of the prompt, so not carried from {source.rel}: " + ", ".join(left)
    source.findings.append(Finding("I501", source.rel, 1, 1, message, FindingLevel.INFO))
    return message


def _document(front: dict[str, Any], body: str) -> str:
    dumped = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{dumped}---\n{body}"


def _write_config(src: Path, out: Path, report: ImportReport) -> None:
    """tallinn.toml: the source's file as written (comments kept) without its 2025 format
    line, else a `[library]` table naming the source."""
    config = src / "tallinn.toml"
    name = src.resolve().name
    text = (
        f"[library]\nname = {json.dumps(name)}\n"
        f"description = {json.dumps(f'Imported from the {FORMAT} library {name}')}\n"
    )
    if config.is_file():
        written = config.read_bytes().decode("utf-8", "replace")
        kept = _FORMAT_LINE.sub("", written)
        try:
            tomllib.loads(kept)
        except tomllib.TOMLDecodeError as exc:
            report.findings.append(Finding(
                "I201", "tallinn.toml", 1, 1,
                f"not valid TOML ({exc}); a new one is written, the original is in "
                "docs/tallinn.toml",
            ))
            _copy(config, out / "docs" / "tallinn.toml", "tallinn.toml", "documentation", report)
        else:
            text = kept
    (out / "tallinn.toml").write_text(text, encoding="utf-8")


def _check(
    out: Path, sources: list[_Source], components: dict[str, _Source], report: ImportReport
) -> None:
    """Load the written library natively; a file is clean when neither the import nor the
    load found anything in it, nor in a component it includes."""
    try:
        library = loader.load_library(out)
    except LibraryError as exc:
        report.check.append(str(exc))
        diagnostics: tuple[Diagnostic, ...] = ()
    else:
        diagnostics = library.diagnostics
        report.check.extend(str(d) for d in diagnostics)
    troubled = {d.path for d in diagnostics if d.is_error or d.severity.value == "warning"}
    dirty = {s.name for s in components.values() if _dirty(s, troubled)}
    for source in sources:
        clean = not _dirty(source, troubled)
        if clean and source.file is not None:
            clean = not _includes_dirty(source, components, dirty, set())
        report.files.append(ConvertedFile(source.rel, source.target, source.kind,
                                          source.name, clean))


def _dirty(source: _Source, troubled: set[str]) -> bool:
    return source.target in troubled or any(
        f.level is not FindingLevel.INFO for f in source.findings
    )


def _includes_dirty(
    source: _Source, components: dict[str, _Source], dirty: set[str], seen: set[str]
) -> bool:
    for reference in source.file.includes if source.file else ():
        name = reference.component
        if name in dirty or name not in components:
            return True
        if name not in seen:
            seen.add(name)
            if _includes_dirty(components[name], components, dirty, seen):
                return True
    return False
