"""Load a library folder: read every file, validate it, compose every command.

Problems never stop the load: each file with an error is left out and reported, and the
rest of the library loads. `load_library` raises only when the folder itself is unusable.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from sys import intern
from typing import Any

from tallinn.library import files, frontmatter
from tallinn.library.cache import FrontMatterCache
from tallinn.library.compose import Composer, Template
from tallinn.library.diagnostics import Diagnostic, Severity
from tallinn.library.errors import LibraryError
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
from tallinn.library.patterns import PatternError, compile_pattern

PathInput = str | os.PathLike[str]
COMMAND_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_DOC_NAMES = {"readme.md"}
CONFIG_FILE = "tallinn.toml"


def load_library(root: PathInput, *, cache_dir: PathInput | None = None) -> Library:
    """Load, validate and compose the library at `root`.

    A library in the 2025 Tallinn format is detected and read by `tallinn.library.legacy`.
    With `cache_dir`, parsed front matter is kept there between loads (see
    `tallinn.library.cache`); the result is the same with or without it.

    >>> lib = load_library("my-library")
    >>> lib.commands["code-review"].description
    """
    base = Path(root)
    if not base.is_dir():
        raise LibraryError(f"library folder not found: {base}")
    if not (base / "commands").is_dir() and not (base / "components").is_dir():
        raise LibraryError(
            f"{base} is not a library: it has neither a commands/ nor a components/ folder"
        )
    from tallinn.library import legacy

    if legacy.detect(base):
        return legacy.load(base)
    cache = FrontMatterCache.open(Path(cache_dir)) if cache_dir is not None else None
    diagnostics: list[Diagnostic] = []
    digest = hashlib.sha256()
    config = load_config(base, diagnostics, digest)
    limits = config.limits
    reader = files.LibraryFiles(base, limits)

    components: dict[str, Component] = {}
    failed_components: dict[str, str] = {}
    for rel, text in _read_markdown(reader, "components", diagnostics, digest):
        name = rel.removeprefix("components/").removesuffix(".md")
        component = _component(name, rel, text, diagnostics, cache, limits)
        if component is None:
            failed_components[name] = rel
        else:
            components[name] = component

    commands: dict[str, Command] = {}
    for rel, text in _read_markdown(reader, "commands", diagnostics, digest):
        command = _command(rel, text, diagnostics, cache, limits)
        if command is None:
            continue
        other = commands.get(command.name)
        if other is not None:
            diagnostics.append(Diagnostic(
                "V107",
                f"duplicate command name '{command.name}': also defined in {other.path}",
                rel,
            ))
            continue
        commands[command.name] = command

    composer = Composer(components, failed_components, limits)
    templates: dict[str, Template] = {}
    for name in list(commands):
        template = composer.compose(commands[name])
        if template is None:
            del commands[name]
        else:
            templates[name] = template
    composer.check_all_components()
    diagnostics.extend(composer.diagnostics)
    if cache is not None:
        cache.save()
    return assemble(base, commands, components, templates, diagnostics, config, digest)


def assemble(
    base: Path,
    commands: dict[str, Command],
    components: dict[str, Component],
    templates: dict[str, Template],
    diagnostics: list[Diagnostic],
    config: LibraryConfig,
    digest: Any,
) -> Library:
    """The finished `Library`: sorted names, diagnostics sorted by place and deduplicated."""
    unique = sorted(set(diagnostics), key=lambda d: (d.path, d.line, d.col, d.code, d.message))
    return Library(
        root=base.resolve(),
        commands=dict(sorted(commands.items())),
        components=dict(sorted(components.items())),
        templates=templates,
        diagnostics=tuple(unique),
        config=config,
        content_hash=digest.hexdigest(),
    )


def decode(raw: bytes, rel: str) -> str | Diagnostic:
    """Given a file's bytes, return its text (no BOM, `\\n` newlines) or where it is not UTF-8."""
    return files.decode(raw, rel)


def load_config(base: Path, diagnostics: list[Diagnostic], digest: Any) -> LibraryConfig:
    """`tallinn.toml`, read within the default limits (its own `[limits]` come from it)."""
    reader = files.LibraryFiles(base)
    if not reader.exists(CONFIG_FILE):
        return LibraryConfig()
    raw = reader.read_bytes(CONFIG_FILE)
    if isinstance(raw, Diagnostic):
        diagnostics.append(raw)
        return LibraryConfig()
    digest.update(b"tallinn.toml\0" + raw + b"\0")
    text = files.decode(raw, CONFIG_FILE)
    if isinstance(text, Diagnostic):
        diagnostics.append(Diagnostic("V106", "invalid TOML: the file is not valid UTF-8",
                                      CONFIG_FILE, text.line, text.col))
        return LibraryConfig()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, col = (int(found.group(1)), int(found.group(2))) if found else (1, 1)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        diagnostics.append(
            Diagnostic("V106", f"invalid TOML: {message}", CONFIG_FILE, line, col)
        )
        return LibraryConfig()
    library = data.get("library", {})
    if not isinstance(library, dict):
        diagnostics.append(Diagnostic("V106", "[library] must be a table", CONFIG_FILE))
        library = {}
    table = data.get("limits", {})
    if not isinstance(table, dict):
        diagnostics.append(Diagnostic("V106", "[limits] must be a table", CONFIG_FILE))
        table = {}
    limits, problems = files.Limits.from_table(table)
    diagnostics.extend(Diagnostic("V106", problem, CONFIG_FILE, *_key_mark(text, "limits", key))
                       for key, problem in problems)
    return LibraryConfig(
        name=str(library.get("name", "")),
        description=str(library.get("description", "")),
        tables=data,
        limits=limits,
    )


def _key_mark(text: str, table: str, key: str) -> tuple[int, int]:
    """Where `key` of `[table]` is set in a TOML text, for a finding about it; else the table."""
    found = re.search(rf"^[ \t]*\[[ \t]*{re.escape(table)}[ \t]*\]", text, re.MULTILINE)
    if found is None:
        return 1, 1
    setting = re.compile(rf"^([ \t]*){re.escape(key)}[ \t]*=", re.MULTILINE).search(
        text, found.end())
    at, col = (setting.start(), len(setting.group(1)) + 1) if setting else (found.start(), 1)
    return text.count("\n", 0, at) + 1, col


def is_prompt_file(name: str) -> bool:
    """A Markdown file that is not documentation (`README.md`)."""
    return name.endswith(".md") and name.lower() not in _DOC_NAMES


def _read_markdown(
    reader: files.LibraryFiles, folder: str, diagnostics: list[Diagnostic], digest: Any
) -> Iterable[tuple[str, str]]:
    """Yield (relative path, text) for every Markdown file under `folder`, sorted."""
    paths, problems = reader.walk(folder, is_prompt_file)
    diagnostics.extend(problems)
    for rel in paths:
        raw = reader.read_bytes(rel)
        if isinstance(raw, Diagnostic):
            diagnostics.append(raw)
            continue
        digest.update(rel.encode() + b"\0" + raw + b"\0")
        text = files.decode(raw, rel)
        if isinstance(text, Diagnostic):
            diagnostics.append(text)
            continue
        yield rel, text


def _component(
    name: str, rel: str, text: str, diagnostics: list[Diagnostic],
    cache: FrontMatterCache | None, limits: files.Limits,
) -> Component | None:
    parsed = frontmatter.parse(text, rel, cache, limits)
    if isinstance(parsed, Diagnostic):
        diagnostics.append(parsed)
        return None
    spec, problems = frontmatter.validate(parsed, rel, command=False)
    diagnostics.extend(problems)
    if spec is None:
        return None
    arguments = _arguments(spec.arguments, parsed, rel, diagnostics, limits)
    if arguments is None:
        return None
    return Component(
        name=name, path=rel, description=spec.description.strip(), arguments=arguments,
        body_line=parsed.body_line, source=text, body_start=len(text) - len(parsed.body),
    )


def _command(
    rel: str, text: str, diagnostics: list[Diagnostic],
    cache: FrontMatterCache | None, limits: files.Limits,
) -> Command | None:
    parsed = frontmatter.parse(text, rel, cache, limits)
    if isinstance(parsed, Diagnostic):
        diagnostics.append(parsed)
        return None
    spec, problems = frontmatter.validate(parsed, rel, command=True)
    diagnostics.extend(problems)
    if spec is None or any(p.is_error for p in problems):
        return None
    assert isinstance(spec, frontmatter.CommandFrontMatter)
    arguments = _arguments(spec.arguments, parsed, rel, diagnostics, limits)
    if arguments is None:
        return None
    stem = rel.rsplit("/", 1)[-1].removesuffix(".md")
    category = intern(rel.removeprefix("commands/").rpartition("/")[0] or "general")
    if not COMMAND_NAME.fullmatch(stem):
        diagnostics.append(Diagnostic(
            "V109",
            f"command name '{stem}' should use lowercase letters, digits and hyphens only, "
            "as Claude Code slash commands do",
            rel, severity=Severity.WARNING,
        ))
    examples = tuple(Example(e.description, dict(e.args)) for e in spec.examples)
    _check_examples(examples, arguments, parsed, rel, diagnostics)
    tools = spec.allowed_tools
    if isinstance(tools, str):
        allowed = tuple(split_tools(tools))
    else:
        allowed = tuple(t.strip() for t in tools or () if t.strip())
    return Command(
        name=stem, path=rel, description=spec.description.strip(), arguments=arguments,
        body_line=parsed.body_line, source=text, body_start=len(text) - len(parsed.body),
        category=category, argument_hint=spec.argument_hint, allowed_tools=allowed,
        model=spec.model, tags=tuple(map(intern, spec.tags)), critical=spec.critical,
        examples=examples,
    )


def split_tools(value: str) -> list[str]:
    """Given `Read, Bash(git log:*, git diff:*)`, split on commas outside parentheses."""
    tools: list[str] = []
    depth = 0
    current: list[str] = []
    for char in value:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            tools.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    tools.append("".join(current).strip())
    return [t for t in tools if t]


def _arguments(
    specs: list[frontmatter.ArgumentSpec],
    parsed: frontmatter.Parsed,
    rel: str,
    diagnostics: list[Diagnostic],
    limits: files.Limits,
) -> tuple[Argument, ...] | None:
    from tallinn.library.render import coerce

    line, col = parsed.key_marks.get("arguments", (1, 1))
    if len(specs) > limits.max_arguments:
        diagnostics.append(too_many_arguments(len(specs), limits, rel, line, col))
        return None
    seen: set[str] = set()
    result: list[Argument] = []
    ok = True

    def problem(message: str) -> None:
        nonlocal ok
        ok = False
        diagnostics.append(Diagnostic("V108", message, rel, line, col))

    for index, spec in enumerate(specs):
        if spec.name in seen:
            problem(f"argument '{spec.name}' is declared twice")
            continue
        seen.add(spec.name)
        compiled = None
        if spec.pattern is not None:
            try:
                compiled = compile_pattern(spec.pattern)
            except PatternError as exc:
                ok = False
                p_line, p_col = parsed.key_marks.get(f"arguments.{index}.pattern", (line, col))
                diagnostics.append(Diagnostic(
                    "V115", f"argument '{spec.name}': invalid pattern {_shorten(spec.pattern)}: "
                    f"RE2 cannot run it: {exc}", rel, p_line, p_col,
                ))
                continue
        if spec.type == "enum" and not spec.enum:
            problem(f"argument '{spec.name}' is of type enum but lists no 'enum' values")
            continue
        if spec.enum and spec.type != "enum":
            problem(f"argument '{spec.name}' lists 'enum' values; set 'type: enum'")
            continue
        if spec.required and spec.default is not None:
            problem(f"argument '{spec.name}' is required and has a default; choose one")
            continue
        # Names and enum values are identifiers that recur across a library ("path", "focus",
        # "high"): interned, each is held once however many commands declare it.
        argument = Argument(
            name=intern(spec.name), description=spec.description.strip(),
            type=ArgType(spec.type), required=spec.required,
            enum=tuple(map(intern, spec.enum or ())), pattern=spec.pattern,
            compiled_pattern=compiled,
        )
        if spec.default is not None:
            try:
                default: ArgValue = coerce(argument, spec.default)
            except ValueError as exc:
                problem(f"argument '{spec.name}': invalid default: {exc}")
                continue
            argument = Argument(
                name=argument.name, description=argument.description, type=argument.type,
                required=False, default=default, enum=argument.enum, pattern=argument.pattern,
                compiled_pattern=compiled,
            )
        result.append(argument)
    return tuple(result) if ok else None


def too_many_arguments(
    count: int, limits: files.Limits, rel: str, line: int, col: int
) -> Diagnostic:
    return Diagnostic(
        "V114",
        f"{count:,} arguments declared, more than the limit of {limits.max_arguments:,} "
        "([limits] max_arguments in tallinn.toml)",
        rel, line, col,
    )


def _shorten(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 80 else shown[:76] + "...'"


def _check_examples(
    examples: tuple[Example, ...],
    arguments: tuple[Argument, ...],
    parsed: frontmatter.Parsed,
    rel: str,
    diagnostics: list[Diagnostic],
) -> None:
    """An example must be a valid invocation; a wrong one misleads users and smoke tests."""
    from tallinn.library.errors import ArgumentError
    from tallinn.library.render import resolve

    line, col = parsed.key_marks.get("examples", (1, 1))
    for index, example in enumerate(examples, 1):
        try:
            resolve(arguments, example.args)
        except ArgumentError as exc:
            diagnostics.append(Diagnostic(
                "V110", f"example {index} is not a valid invocation: {exc}", rel, line, col,
                Severity.WARNING,
            ))
