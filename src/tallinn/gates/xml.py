"""Gate 1: XML and structure validation.

Two kinds of findings, reported the same way (`path:line:col: CODE message`):

- the loader's structural diagnostics (front matter, duplicate names, missing and cyclic
  includes, placeholders: V1xx-V3xx), with fixes added where one is known;
- the XML-style tags of every body, which must be balanced, properly nested and have
  well-formed attributes (V401-V404), and in a 2025-format library the embedded XML document
  of every file, which must parse (V405).

Files that the loader left out because of an error are read again from disk and their bodies
checked too, so one run reports every problem: when the front matter of a file is broken,
its body's tags, includes (V201, V202) and placeholder syntax (V303) are still checked; only
what needs the front matter (declared arguments: V301, V203, V302) waits until it parses.
The gate FAILS on any error::

    >>> result = run(GateContext(library.root, library))
    >>> result.status, [str(m.value) for m in result.metrics]
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from pydantic import Field

from tallinn.gates.base import GateContext, GateResult, GateSettings, Metric, gate_settings, grade
from tallinn.gates.fix import ROUNDS
from tallinn.gates.rules.xml import BODY_RULES, FIXERS, GATE
from tallinn.gates.rules.xml._scan import VOID_ELEMENTS, scan
from tallinn.gates.rules.xml.missing_component import missing_name
from tallinn.library import Diagnostic, Library, Severity, legacy, parallel
from tallinn.library.files import FileReader
from tallinn.library.frontmatter import split
from tallinn.wording import plural

NAME = GATE
TITLE = "XML and structure validation"
STRUCTURE_CODES = frozenset({"V401", "V402", "V403", "V404", "V405"})
# What the body of a file can show without its front matter: its tags, its includes and the
# syntax of its placeholders. The other codes need the front matter (arguments, metadata).
BODY_CODES = frozenset({*STRUCTURE_CODES, "V201", "V202", "V303"})
_ALSO_DEFINED = re.compile(r"also defined in (\S+)$")


class XmlSettings(GateSettings):
    """`[gates.xml]` in tallinn.toml."""

    max_files_with_errors: int = 0
    """How many files may have errors before the gate fails."""
    void_elements: list[str] = []  # noqa: RUF012  (pydantic copies defaults)
    """Tag names that, like HTML's `<br>`, never need a closing tag."""
    fix_rounds: int = Field(ROUNDS, ge=1, le=1000)
    """How many rounds of fixes `tallinn validate --fix` runs at most."""


@dataclass(frozen=True, slots=True)
class Target:
    """A body to scan: `text` starts on file line `first_line`, at file offset `base`."""

    path: str
    text: str
    first_line: int
    base: int
    skip: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """What `check` found: every finding, and which prompt files were checked."""

    findings: tuple[Diagnostic, ...]
    files: tuple[str, ...]


def run(ctx: GateContext) -> GateResult:
    """Validate the structure of `ctx.library`; FAILED on any error."""
    settings = gate_settings(ctx.library, NAME, XmlSettings)
    ctx.progress("checking tags and structure")
    outcome = check(ctx.library, void=settings.void_elements)
    return result(ctx.library, outcome, settings)


def check(library: Library, *, void: Iterable[str] = (), workers: int = 1) -> Outcome:
    """Every finding of gate 1 for `library`, sorted, with fixes attached where known.

    With `workers` > 1 and as many bodies as make a load parallel, the bodies are scanned in
    that many forked processes (`tallinn.library.parallel`); the findings are the same.
    """
    voids = VOID_ELEMENTS | {v.lower() for v in void}
    texts = _Texts(library)
    findings: list[Diagnostic] = []
    diagnostics = list(library.diagnostics)
    if library.config.table("library").get("format") != legacy.FORMAT:
        diagnostics += _unparsed_bodies(library, texts)
    for diagnostic in diagnostics:
        fixer = FIXERS.get(diagnostic.code)
        text = texts.get(diagnostic.path) if fixer is not None else None
        fix = fixer(diagnostic, text, library) if fixer is not None and text is not None else None
        findings.append(replace(diagnostic, fix=fix) if fix is not None else diagnostic)
    targets = list(_targets(library, texts))
    files = [target.path for target in targets]

    def scan_all(chunk: Sequence[Target]) -> list[Diagnostic]:
        return list(_scan_all(chunk, voids))

    scanned: list[list[Diagnostic]] | None = None
    if parallel.worth_it(len(targets), workers):
        scanned = parallel.fork_map(scan_all, targets, workers, list, scan_all)
    findings.extend(chain.from_iterable(scanned) if scanned is not None else scan_all(targets))
    unique = sorted(set(findings), key=lambda d: (d.path, d.line, d.col, d.code, d.message))
    return Outcome(tuple(unique), tuple(sorted(files)))


def _scan_all(targets: Iterable[Target], voids: frozenset[str]) -> Iterator[Diagnostic]:
    """The tag findings of each body."""
    for target in targets:
        result = scan(target.text, target.path, first_line=target.first_line, base=target.base,
                      skip=target.skip, void=voids)
        if result.ok:
            continue
        for body_rule in BODY_RULES:
            yield from body_rule(result)


def result(library: Library, outcome: Outcome, settings: XmlSettings) -> GateResult:
    """Grade `outcome` into the gate's result: figures, details and data."""
    findings = outcome.findings
    errors = [f for f in findings if f.severity is Severity.ERROR]
    with_errors = sorted({f.path for f in errors})
    malformed = sorted({f.path for f in errors if f.code in STRUCTURE_CODES})
    checked = len(outcome.files)
    well_formed = checked - len(set(malformed) & set(outcome.files))
    metrics = (
        Metric("files with errors", len(with_errors), settings.max_files_with_errors,
               higher_is_better=False),
        Metric("well-formed files", 100.0 * well_formed / checked if checked else 100.0,
               100.0, "%"),
    )
    dangling = _dangling(findings)
    duplicates = _duplicates(findings)
    xml_documents = sorted({f.path for f in findings if f.code == "V405"})
    library_format = str(library.config.table("library").get("format", "tallinn"))
    details = [
        f"{plural(checked, 'prompt file')} checked ({library_format} format): "
        f"{len(with_errors)} with errors, {well_formed} with well-formed XML structure",
    ]
    if xml_documents:
        details.append(f"{plural(len(xml_documents), 'file')} embed malformed XML: "
                       + ", ".join(xml_documents))
    if dangling["references"]:
        details.append(
            f"{plural(dangling['references'], 'dangling include reference')} in "
            f"{plural(dangling['files'], 'file')} name "
            f"{plural(dangling['components'], 'component')} that do not exist"
        )
    if duplicates:
        details.append("duplicate command names: " + "; ".join(
            f"{name} ({', '.join(paths)})" for name, paths in duplicates.items()
        ))
    counts = Counter(f.code for f in findings)
    data: dict[str, Any] = {
        "format": library_format,
        "files": checked,
        "files_with_errors": with_errors,
        "well_formed": well_formed,
        "malformed_xml": xml_documents,
        "dangling_includes": dangling,
        "duplicate_commands": duplicates,
        "by_code": dict(sorted(counts.items())),
        "errors": len(errors),
        "warnings": sum(f.severity is Severity.WARNING for f in findings),
        "fixable": sum(f.fix is not None and f.fix.safe for f in findings),
    }
    return GateResult(
        gate=NAME, title=TITLE, status=grade(metrics, blocking=bool(errors)), metrics=metrics,
        findings=findings, details=tuple(details), data=data,
    )


def _dangling(findings: Iterable[Diagnostic]) -> dict[str, Any]:
    """Count includes naming components that do not exist (not those that failed to load)."""
    missing: Counter[str] = Counter()
    files: set[str] = set()
    for finding in findings:
        if finding.code == "V201" and "not found" in finding.message:
            name = missing_name(finding)
            if name is not None:
                missing[name] += 1
                files.add(finding.path)
    return {
        "references": sum(missing.values()),
        "components": len(missing),
        "files": len(files),
        "missing": dict(sorted(missing.items())),
    }


def _duplicates(findings: Iterable[Diagnostic]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for finding in findings:
        if finding.code != "V107":
            continue
        other = _ALSO_DEFINED.search(finding.message)
        name = finding.path.rsplit("/", 1)[-1].removesuffix(".md")
        paths = found.setdefault(name, set())
        paths.add(finding.path)
        if other is not None:
            paths.add(other.group(1))
    return {name: sorted(paths) for name, paths in sorted(found.items())}


class _Texts:
    """The text of a library file as the loader saw it: from the model, else from disk."""

    def __init__(self, library: Library) -> None:
        self.files = library.files()
        self.cache: dict[str, str | None] = {}
        for doc in (*library.commands.values(), *library.components.values()):
            self.cache[doc.path] = doc.source

    def get(self, path: str) -> str | None:
        if path not in self.cache:
            self.cache[path] = read_text(self.files, path)
        return self.cache[path]


def read_text(files: FileReader, path: str) -> str | None:
    """A file's text through the loader's own read path; None when it cannot be read (the
    loader has reported why: V100, V111 or V112)."""
    text = files.read_text(path)
    return None if isinstance(text, Diagnostic) else text


def _targets(library: Library, texts: _Texts) -> Iterator[Target]:
    """The bodies to scan: every loaded document, and every prompt file left out."""
    is_legacy = library.config.table("library").get("format") == legacy.FORMAT
    documents = {doc.path: doc
                 for doc in (*library.commands.values(), *library.components.values())}
    loaded = {path: doc.source for path, doc in documents.items()}
    left_out = sorted({
        d.path for d in library.diagnostics
        if d.path not in loaded and d.path.endswith(".md")
        and d.path.startswith(("commands/", "components/"))
    })
    paths: Mapping[str, str | None] = {**loaded, **{p: texts.get(p) for p in left_out}}
    for path, text in sorted(paths.items()):
        if text is None:
            continue
        found = None if is_legacy else documents.get(path)
        if found is not None:  # where its body starts is known: the loader split it
            yield Target(path, found.body, found.body_line, found.body_start)
            continue
        target = _legacy_target(path, text) if is_legacy else _native_target(path, text)
        if target is not None:
            yield target


def _native_target(path: str, text: str) -> Target | None:
    found = body_of(path, text)
    if found is None:
        return None
    body, body_line = found
    return Target(path, body, body_line, len(text) - len(body))


def body_of(path: str, text: str) -> tuple[str, int] | None:
    """A native file's body and the line it starts on; the whole file when it has no front
    matter at all; None when where the body starts is unclear (front matter never closed)."""
    if not text.startswith("---"):
        return text, 1
    parts = split(text, path)
    if isinstance(parts, Diagnostic):
        return None
    return parts[2], parts[3]


def _unparsed_bodies(library: Library, texts: _Texts) -> list[Diagnostic]:
    """The include and placeholder findings of files left out for their front matter alone.

    Each such body is composed as a command that declares no argument, by the loader's own
    composer, so the messages are the loader's; what depends on the declared arguments is
    dropped, since the arguments are not known.
    """
    from tallinn.library.compose import Composer
    from tallinn.library.model import Command

    by_path: dict[str, set[str]] = {}
    for diagnostic in library.diagnostics:
        if diagnostic.is_error:
            by_path.setdefault(diagnostic.path, set()).add(diagnostic.code[:2])
    loaded = {doc.path for doc in (*library.commands.values(), *library.components.values())}
    unparsed = sorted(
        path for path, families in by_path.items()
        if families == {"V1"} and path not in loaded and path.endswith(".md")
        and path.startswith(("commands/", "components/"))
    )
    if not unparsed:
        return []
    failed = {p.removeprefix("components/").removesuffix(".md"): p
              for p in unparsed if p.startswith("components/")}
    composer = Composer(library.components, failed)
    for path in unparsed:
        text = texts.get(path)
        found = body_of(path, text) if text is not None else None
        if text is None or found is None:
            continue
        body, body_line = found
        composer.compose(Command(
            name=path.rsplit("/", 1)[-1].removesuffix(".md"), path=path, description="",
            arguments=(), body_line=body_line, source=text, body_start=len(text) - len(body),
        ))
    wanted = set(unparsed)
    return [d for d in composer.diagnostics if d.path in wanted and d.code in BODY_CODES]


def _legacy_target(path: str, text: str) -> Target | None:
    """A 2025 file's body, less its embedded XML document, which lxml checks (V405)."""
    body, body_line = text, 1
    if text.startswith("---"):
        parts = split(text, path)
        if isinstance(parts, Diagnostic):
            return None
        body, body_line = parts[2], parts[3]
    base = len(text) - len(body)
    span = legacy.root_span(text)
    skip: tuple[tuple[int, int], ...] = ()
    if span is not None:
        skip = ((max(span.start - base, 0), (span.end or len(text)) - base),)
    return Target(path, body, body_line, base, skip)
