"""Build a library from its files: read every file, validate it, compose every command.

Problems never stop the load: each file with an error is left out and reported, and the
rest of the library loads. `build_library` raises only when the source itself is unusable.
A rebuild after an edit reads, parses and composes again only what the edit touches.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import tomllib
from collections.abc import Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path
from sys import intern

from tallinn.library import files, frontmatter, parallel
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
from tallinn.library.source import FolderSource, LibrarySource, as_source

PathInput = str | os.PathLike[str]
COMMAND_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_DOC_NAMES = {"readme.md"}
CONFIG_FILE = "tallinn.toml"
_FOLDERS = ("components", "commands")


def load_library(
    root: PathInput, *, cache_dir: PathInput | None = None, workers: int = 1
) -> Library:
    """Load, validate and compose the library in the folder `root`: `build_library` of a
    `FolderSource`.

    >>> lib = load_library("my-library")
    >>> lib.commands["code-review"].description
    """
    return build_library(FolderSource(root), cache_dir=cache_dir, workers=workers)


def build_library(
    source: LibrarySource | PathInput,
    *,
    cache_dir: PathInput | None = None,
    previous: Library | None = None,
    changed: Iterable[str] | None = None,
    workers: int = 1,
) -> Library:
    """Read, validate and compose the library whose files `source` gives.

    A library in the 2025 Tallinn format is detected and read by `tallinn.library.legacy`.
    With `cache_dir`, parsed front matter is kept there between loads (see
    `tallinn.library.cache`); the result is the same with or without it.

    With `previous` (a library built from the same source), only the files whose identity
    changed are read and parsed again, and only the commands that depend on them composed
    again; `changed` names the library paths that may have changed (from a file watcher),
    else every file's identity is looked at. The result equals a full build of the files.

    With `workers` > 1, a full build of `parallel.PARALLEL_FILES` files or more reads and
    parses them in that many processes, this one included (see `tallinn.library.parallel`);
    the result is the same.

    >>> lib = build_library(FolderSource("my-library"))
    >>> lib = build_library(lib.source, previous=lib, changed={"components/a/b.md"})
    """
    where = as_source(source)
    if previous is not None and isinstance(previous.state, _State):
        # Another source of the same library (the next stored release) works as well: a file
        # whose identity differs is read, and parsed again only when its bytes differ.
        same = previous.source is where
        state = previous.state if same else replace(previous.state, source=where)
        rebuilt = _rebuild(previous if same else None, state, changed)
        if rebuilt is not None:
            return rebuilt
    with collections_paused():
        return _build(where, cache_dir, workers)


@contextmanager
def collections_paused() -> Iterator[None]:
    """Within the block, CPython's cyclic garbage collector does not run (as it was after).

    A load makes hundreds of thousands of objects that live on (records, texts, parsed
    data), each of which counts towards the next collection, which walks everything alive
    and frees next to nothing (3% of a load of 11,000 files). What a load leaves as garbage
    is freed by reference counting; the few cycles wait for a collection after the block.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(source: LibrarySource, cache_dir: PathInput | None, workers: int = 1) -> Library:
    reader = source.files()
    if not reader.is_dir(""):
        raise LibraryError(f"library folder not found: {source.label}")
    if not reader.is_dir("commands") and not reader.is_dir("components"):
        raise LibraryError(
            f"{source.label} is not a library: it has neither a commands/ nor a components/ "
            "folder"
        )
    from tallinn.library import legacy

    if legacy.detect(source):
        return legacy.load(source)
    config_diagnostics: list[Diagnostic] = []
    config_identity = source.identity(CONFIG_FILE)
    config, config_digest = _read_config(reader, config_diagnostics)
    limits = config.limits
    reader = source.files(limits)
    cache = FrontMatterCache.open(Path(cache_dir)) if cache_dir is not None else None
    walked: list[Diagnostic] = []
    found: dict[str, list[str]] = {}
    for folder in _FOLDERS:
        found[folder], problems = reader.walk(folder, is_prompt_file)
        walked.extend(problems)
    results = _parse_all(found, source, reader, cache, limits, workers)
    saving = None
    if cache is not None and cache.changed and parallel.worth_it(
        sum(map(len, found.values())), workers
    ):
        # Every entry is known once the files are parsed: written while this one composes.
        saving = parallel.fork_call(cache.save)
    config_file = _FileResult(CONFIG_FILE, config_identity, config_digest, None,
                              tuple(config_diagnostics))
    library = _compose_all(source, config, config_file, tuple(walked), reader.followed_links,
                           results["components"], results["commands"])
    if cache is not None:
        if saving is not None and saving() is True:
            cache.saved()
        else:
            cache.save()
    return library


def _parse_all(
    found: dict[str, list[str]], source: LibrarySource, reader: files.FileReader,
    cache: FrontMatterCache | None, limits: files.Limits, workers: int,
) -> dict[str, dict[str, _FileResult]]:
    """Every file found, read and parsed, by folder, in the order found: in worker processes
    when there are enough of them (see `tallinn.library.parallel`), else here."""
    tasks = [(folder, rel) for folder in _FOLDERS for rel in found[folder]]

    def parse(folder: str, rel: str) -> _FileResult:
        return _parse_file(folder, rel, source, reader, cache, limits)

    results: dict[str, dict[str, _FileResult]] = {folder: {} for folder in _FOLDERS}
    done = None
    if parallel.worth_it(len(tasks), workers):
        done = parallel.parse_files(tasks, parse, cache, workers)
    if done is not None:
        for (folder, rel), fields in zip(tasks, done, strict=True):
            results[folder][rel] = _FileResult(*fields)
    else:
        for folder, rel in tasks:
            results[folder][rel] = parse(folder, rel)
    return results


@dataclass(frozen=True, slots=True)
class _FileResult:
    """One library file as read and parsed, kept so that a rebuild need not read it again."""

    rel: str
    identity: Hashable | None
    digest: bytes | None  # SHA-256 of the bytes; None when they could not be read
    document: Component | Command | None
    diagnostics: tuple[Diagnostic, ...]
    parsed: bool = False  # decoded, and parsed: a component that fails now "could not load"


@dataclass(frozen=True, slots=True)
class _State:
    """What a rebuild needs of the build before it, kept on the `Library`.

    Every mapping is built once by a full build and copied, then changed where a file
    changed, by each rebuild: a rebuild costs the files it touches and a few copies made in C,
    never a pass over every file in Python.
    """

    source: LibrarySource
    config: LibraryConfig
    config_file: _FileResult
    walked: tuple[Diagnostic, ...]
    linked: bool  # files listed through a symbolic link: a watcher may name another path
    results: Mapping[str, _FileResult]  # every prompt file by library path
    stems: Mapping[str, int]  # how many command files have each name
    components: Mapping[str, Component]  # by name, sorted: the components that loaded
    failed: Mapping[str, str]  # component name -> path, for those that did not
    parsed: Mapping[str, Command]  # by name: the commands that loaded (the first of a name)
    duplicates: tuple[Diagnostic, ...]  # V107
    notes: Mapping[str, tuple[Diagnostic, ...]]  # path -> what reading and parsing it found
    composed: Mapping[str, tuple[Diagnostic, ...]]  # path -> what composing it found
    includes: Mapping[str, frozenset[str]]  # path -> the components its body includes
    included_by: Mapping[str, frozenset[str]]  # component name -> the paths including it
    templates: Mapping[str, Template]  # by command name: the commands that composed
    commands: Mapping[str, Command]  # by name, sorted: the commands that composed
    hashed: Mapping[str, bytes]  # path -> what the content hash takes of it, in hash order


def _compose_all(
    source: LibrarySource, config: LibraryConfig, config_file: _FileResult,
    walked: tuple[Diagnostic, ...], linked: bool,
    component_results: dict[str, _FileResult], command_results: dict[str, _FileResult],
) -> Library:
    """Compose every command of the files read, as a full build does."""
    components: dict[str, Component] = {}
    failed: dict[str, str] = {}
    for rel, result in component_results.items():
        if isinstance(result.document, Component):
            components[result.document.name] = result.document
        elif result.parsed:
            failed[_component_name(rel)] = rel
    parsed: dict[str, Command] = {}
    duplicates: list[Diagnostic] = []
    stems: dict[str, int] = {}
    for rel, result in command_results.items():
        stems[_stem(rel)] = stems.get(_stem(rel), 0) + 1
        command = result.document
        if not isinstance(command, Command):
            continue
        other = parsed.get(command.name)
        if other is not None:
            duplicates.append(Diagnostic(
                "V107",
                f"duplicate command name '{command.name}': also defined in {other.path}",
                rel,
            ))
            continue
        parsed[command.name] = command
    composer = Composer(components, failed, config.limits)
    templates: dict[str, Template] = {}
    for name, command in parsed.items():
        template = composer.compose(command)
        if template is not None:
            templates[name] = template
    composer.check_all_components()
    results = {**component_results, **command_results}
    included_by: dict[str, set[str]] = {}
    for path, names in composer.includes.items():
        for name in names:
            included_by.setdefault(name, set()).add(path)
    hashed = {CONFIG_FILE: _hashed(config_file)}
    hashed.update((rel, _hashed(result)) for rel, result in results.items())
    state = _State(
        source=source, config=config, config_file=config_file, walked=walked, linked=linked,
        results=results, stems=stems, components=dict(sorted(components.items())),
        failed=failed, parsed=parsed, duplicates=tuple(duplicates),
        notes={rel: r.diagnostics for rel, r in results.items() if r.diagnostics},
        composed=_by_path(composer.diagnostics),
        includes=dict(composer.includes),
        included_by={name: frozenset(paths) for name, paths in included_by.items()},
        templates=templates,
        commands={name: parsed[name] for name in sorted(templates)},
        hashed=hashed,
    )
    return _library(state)


def _hashed(result: _FileResult) -> bytes:
    """What the content hash takes of a file: its path and digest (nothing when unread)."""
    if result.digest is None:
        return b""
    return result.rel.encode("utf-8", "surrogateescape") + b"\0" + result.digest


def _by_path(diagnostics: Iterable[Diagnostic]) -> dict[str, tuple[Diagnostic, ...]]:
    found: dict[str, list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        found.setdefault(diagnostic.path, []).append(diagnostic)
    return {path: tuple(group) for path, group in found.items()}


def _library(state: _State) -> Library:
    diagnostics = [*state.config_file.diagnostics, *state.source.problems, *state.walked,
                   *state.duplicates, *chain.from_iterable(state.notes.values()),
                   *chain.from_iterable(state.composed.values())]
    unique = sorted(set(diagnostics), key=lambda d: (d.path, d.line, d.col, d.code, d.message))
    root = state.source.root
    return Library(
        root=root.resolve() if root is not None else None,
        commands=state.commands,
        components=state.components,
        templates=state.templates,
        diagnostics=tuple(unique),
        config=state.config,
        content_hash=hashlib.sha256(b"".join(state.hashed.values())).hexdigest(),
        source=state.source,
        state=state,
    )


def _compose_some(state: _State, updated: dict[str, _FileResult]) -> Library | None:
    """`state` with the files `updated` read again, composing only what depends on them;
    `None` when that would not equal a full build (see `_ORDERED`)."""
    results = dict(state.results)
    results.update(updated)
    components = dict(state.components)
    parsed = dict(state.parsed)
    changed_names: set[str] = set()
    for rel, result in updated.items():
        document = result.document
        if rel.startswith("components/"):
            changed_names.add(_component_name(rel))
            if isinstance(document, Component):
                components[document.name] = document  # the names loaded are the same
        elif isinstance(document, Command):
            parsed[document.name] = document
        else:
            parsed.pop(_stem(rel), None)
    affected = set(updated) | _dependents(state.included_by, changed_names)
    composer = Composer(components, state.failed, state.config.limits)
    templates = dict(state.templates)
    commands = dict(state.commands)
    added = False
    for rel in sorted(affected):
        if not rel.startswith("commands/"):
            continue
        name = _stem(rel)
        command = parsed.get(name)
        template = composer.compose(command) if command is not None else None
        if template is None or command is None:
            templates.pop(name, None)
            commands.pop(name, None)
        else:
            added = added or name not in commands
            templates[name] = template
            commands[name] = command
    for name in sorted(changed_names | {_component_name(p) for p in affected
                                        if p.startswith("components/")}):
        if name in components:
            composer.expand_component(name)
    found = _by_path(d for d in composer.diagnostics if d.path in affected)
    if any(d.code in _ORDERED for group in found.values() for d in group):
        return None
    composed = dict(state.composed)
    includes = dict(state.includes)
    included_by = dict(state.included_by)
    for path in affected:
        composed.pop(path, None)
        before = includes.pop(path, frozenset())
        after = composer.includes.get(path)
        if after is not None:
            includes[path] = after
        for name in before - (after or frozenset()):
            included_by[name] = included_by[name] - {path}
        for name in (after or frozenset()) - before:
            included_by[name] = included_by.get(name, frozenset()) | {path}
    composed.update(found)
    notes = dict(state.notes)
    hashed = dict(state.hashed)
    for rel, result in updated.items():
        notes.pop(rel, None)
        if result.diagnostics:
            notes[rel] = result.diagnostics
        hashed[rel] = _hashed(result)
    return _library(replace(
        state, results=results, components=components, parsed=parsed, notes=notes,
        composed=composed, includes=includes, included_by=included_by, templates=templates,
        commands=dict(sorted(commands.items())) if added else commands, hashed=hashed,
    ))


def _component_name(rel: str) -> str:
    return rel.removeprefix("components/").removesuffix(".md")


def _parse_file(
    folder: str, rel: str, source: LibrarySource, reader: files.FileReader,
    cache: FrontMatterCache | None, limits: files.Limits,
) -> _FileResult:
    identity = source.identity(rel)  # before reading: a change while reading is seen next time
    raw = reader.read_bytes(rel)
    if isinstance(raw, Diagnostic):
        return _FileResult(rel, identity, None, None, (raw,))
    return _parse_bytes(folder, rel, raw, identity, cache, limits)


def _parse_bytes(
    folder: str, rel: str, raw: bytes, identity: Hashable | None,
    cache: FrontMatterCache | None, limits: files.Limits,
) -> _FileResult:
    digest = hashlib.sha256(raw).digest()
    text = files.decode(raw, rel)
    if isinstance(text, Diagnostic):
        return _FileResult(rel, identity, digest, None, (text,))
    diagnostics: list[Diagnostic] = []
    document: Component | Command | None
    if folder == "components":
        name = rel.removeprefix("components/").removesuffix(".md")
        document = _component(name, rel, text, diagnostics, cache, limits)
    else:
        document = _command(rel, text, diagnostics, cache, limits)
    return _FileResult(rel, identity, digest, document, tuple(diagnostics), parsed=True)


# Composing reports these once, in the file where a walk in name order first meets them (a
# cycle; a chain too deep from where it was first reached): a partial composition could find
# them elsewhere, so a library that has any is composed in full.
_ORDERED = frozenset({"V204", "V206"})


def _rebuild(
    previous: Library | None, state: _State, changed: Iterable[str] | None
) -> Library | None:
    """The library of `state` with the files that changed read again (`previous` itself when
    none did); `None` where only a full build gives the same result (said at each return)."""
    source = state.source
    reader = source.files(state.config.limits)
    known = state.results
    if state.linked:
        changed = None  # an edit through a link shows at the link's target: look at all
    if changed is None:
        # No watcher to say what changed: list every folder and look at every file.
        candidates: set[str] = set()
        for folder in _FOLDERS:
            paths, _problems = reader.walk(folder, is_prompt_file)
            candidates.update(paths)
        if candidates != known.keys():
            return None  # a file added or removed: the includes it satisfies are anywhere
        candidates.add(CONFIG_FILE)
    else:
        candidates = set()
        for rel in changed:
            if rel in known or rel == CONFIG_FILE:
                candidates.add(rel)
            elif _may_be_read(rel, reader):
                return None  # a new prompt file, or a folder: what it adds is found by a walk
    if CONFIG_FILE in candidates and not _same_config(source, reader, state.config_file):
        return None  # the limits and every setting may differ: everything is read again
    candidates.discard(CONFIG_FILE)
    updated: dict[str, _FileResult] = {}
    touched: dict[str, _FileResult] = {}
    for rel in sorted(candidates):
        old = known[rel]
        identity = source.identity(rel)
        if identity is None:
            return None  # removed, as above
        if identity == old.identity:
            continue
        folder = rel.partition("/")[0]
        raw = reader.read_bytes(rel)
        if isinstance(raw, Diagnostic):
            result = _FileResult(rel, identity, None, None, (raw,))
        elif hashlib.sha256(raw).digest() == old.digest:
            touched[rel] = replace(old, identity=identity)  # saved again, not changed
            continue
        else:
            result = _parse_bytes(folder, rel, raw, identity, None, state.config.limits)
        if folder == "components" and (
            (result.document is None) != (old.document is None) or result.parsed != old.parsed
        ):
            return None  # a component appears or disappears for every file that includes it
        if folder == "commands" and state.stems.get(_stem(rel), 0) > 1:
            return None  # which of two same-named commands is served depends on both
        updated[rel] = result
    if not updated and not touched and previous is not None:
        return previous
    # Composing reports these where a walk in name order first meets them; which file that
    # is may change with any edit, so a library that has any is composed in full.
    if any(d.code in _ORDERED for group in state.composed.values() for d in group):
        return None
    if touched:
        results = dict(state.results)
        results.update(touched)
        state = replace(state, results=results)
    return _compose_some(state, updated)


def _same_config(
    source: LibrarySource, reader: files.FileReader, before: _FileResult
) -> bool:
    identity = source.identity(CONFIG_FILE)
    if identity == before.identity:
        return True
    raw = reader.read_bytes(CONFIG_FILE) if reader.exists(CONFIG_FILE) else None
    digest = hashlib.sha256(raw).digest() if isinstance(raw, bytes) else None
    return digest is not None and digest == before.digest


def _may_be_read(rel: str, reader: files.FileReader) -> bool:
    """Whether a path a watcher names, unknown to the last build, may change what is read."""
    folder, _, below = rel.partition("/")
    if folder not in _FOLDERS and rel not in ("", "."):
        return False  # tests/, docs: not part of the library the loader builds
    if not below or any(part.startswith(".") for part in below.split("/")):
        return not below
    name = below.rpartition("/")[2]
    return is_prompt_file(name) or reader.is_dir(rel) or not reader.exists(rel)


def _stem(rel: str) -> str:
    return rel.rsplit("/", 1)[-1].removesuffix(".md")


def _dependents(included_by: Mapping[str, frozenset[str]], names: set[str]) -> set[str]:
    """The paths of the files that include a component in `names`, directly or through
    other components: what must be composed again when those change."""
    found: set[str] = set()
    pending = list(names)
    while pending:
        for path in included_by.get(pending.pop(), ()):
            if path in found:
                continue
            found.add(path)
            if path.startswith("components/"):
                pending.append(_component_name(path))
    return found


class ContentHash:
    """The content hash of a library: SHA-256 over each file read, as its path and the SHA-256
    of its bytes, in the order the loader reads them (tallinn.toml, components, commands).

    Hashing each file apart lets a rebuild hash the library again without reading every file.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, rel: str, raw: bytes) -> None:
        self.add_digest(rel, hashlib.sha256(raw).digest())

    def add_digest(self, rel: str, digest: bytes) -> None:
        self._hash.update(rel.encode("utf-8", "surrogateescape") + b"\0" + digest)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def assemble(
    source: LibrarySource,
    commands: dict[str, Command],
    components: dict[str, Component],
    templates: dict[str, Template],
    diagnostics: list[Diagnostic],
    config: LibraryConfig,
    content: ContentHash,
    state: object | None = None,
) -> Library:
    """The finished `Library`: sorted names, diagnostics sorted by place and deduplicated."""
    unique = sorted(set(diagnostics), key=lambda d: (d.path, d.line, d.col, d.code, d.message))
    root = source.root
    return Library(
        root=root.resolve() if root is not None else None,
        commands=dict(sorted(commands.items())),
        components=dict(sorted(components.items())),
        templates=templates,
        diagnostics=tuple(unique),
        config=config,
        content_hash=content.hexdigest(),
        source=source,
        state=state,
    )


def decode(raw: bytes, rel: str) -> str | Diagnostic:
    """Given a file's bytes, return its text (no BOM, `\\n` newlines) or where it is not UTF-8."""
    return files.decode(raw, rel)


def load_config(
    where: LibrarySource | PathInput, diagnostics: list[Diagnostic], digest: object = None,
) -> LibraryConfig:
    """`tallinn.toml` of a library, read within the default limits (its own `[limits]` come
    from it). With a `ContentHash` as `digest`, the file is added to it."""
    config, raw_digest = _read_config(as_source(where).files(), diagnostics)
    if raw_digest is not None and isinstance(digest, ContentHash):
        digest.add_digest(CONFIG_FILE, raw_digest)
    return config


def _read_config(
    reader: files.FileReader, diagnostics: list[Diagnostic]
) -> tuple[LibraryConfig, bytes | None]:
    """The configuration, and the SHA-256 of tallinn.toml's bytes when it was read."""
    if not reader.exists(CONFIG_FILE):
        return LibraryConfig(), None
    raw = reader.read_bytes(CONFIG_FILE)
    if isinstance(raw, Diagnostic):
        diagnostics.append(raw)
        return LibraryConfig(), None
    digest = hashlib.sha256(raw).digest()
    return _parse_config(raw, diagnostics), digest


def _parse_config(raw: bytes, diagnostics: list[Diagnostic]) -> LibraryConfig:
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
