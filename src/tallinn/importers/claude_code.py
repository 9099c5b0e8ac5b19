"""Import a repository's Claude Code prompts, `.claude/commands/` and `.claude/skills/`, as a
native Tallinn library.

    .claude/commands/<category>/<name>.md  ->  commands/<category>/<name>.md
    .claude/commands/<name>.md             ->  commands/<name>.md   (category "general")
    .claude/skills/<name>/SKILL.md         ->  commands/skills/<name>.md

Arguments are Claude Code 2.1's: names from `arguments:`, else from `argument-hint`
(`<name>` required, `[name]` optional), else `argN`; `$name`, `$ARGUMENTS[N]` and `$N`
(0-based) become `{{name}}`, `$ARGUMENTS` stays. Text Tallinn would read as its own syntax
(`{{`, `<include`) is escaped; what only Claude Code does (`` !`cmd` ``, `@path`) is kept as
literal text and reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from tallinn.importers import ConvertedFile, Finding, FindingLevel, ImporterError, ImportReport
from tallinn.library import load_library

FORMAT = "claude-code"
CARRIED = ("description", "argument-hint", "allowed-tools", "model", "disable-model-invocation")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_COMMAND_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_HINT = re.compile(r"<([^<>]*)>|\[([^\[\]]*)\]")


@dataclass(slots=True)
class _Source:
    """One Claude Code prompt file, read: its metadata, body and place."""

    rel: str  # relative to the repository, e.g. `.claude/commands/git/commit.md`
    name: str
    category: str
    skill: bool
    data: dict[str, Any]
    body: str
    body_line: int
    findings: list[Finding] = field(default_factory=list)

    def find(self, code: str, message: str, level: FindingLevel, line: int = 1,
             col: int = 1) -> None:
        self.findings.append(Finding(code, self.rel, line, col, message, level))


def _claude_folder(src: Path) -> Path:
    if (src / ".claude").is_dir():
        return src / ".claude"
    if src.name == ".claude" and src.is_dir():
        return src
    raise ImporterError(f"{src} has no .claude/ folder with commands or skills to import")


def _sources(claude: Path, findings: list[Finding]) -> Iterator[tuple[Path, str, str, bool]]:
    """Given `.claude/`, yield (file, name, category, is_skill) in path order. A file reached
    through a symbolic link is not read (it may be anywhere): it is reported."""
    candidates: list[tuple[Path, str, str, bool]] = []
    commands = claude / "commands"
    if commands.is_dir():
        # os.walk does not follow a linked folder (which may loop or lead anywhere); such a
        # folder is reported below, as a linked file is.
        for folder, dirs, files in os.walk(commands):
            here = Path(folder)
            dirs.sort()
            for linked in (d for d in dirs if (here / d).is_symlink()):
                candidates.append((here / linked, linked, "", False))
            category = here.relative_to(commands).as_posix()
            candidates += [(here / f, f.removesuffix(".md"), "" if category == "." else category,
                            False) for f in sorted(files) if f.endswith(".md")]
    skills = claude / "skills"
    if skills.is_dir():
        candidates += [(path, path.parent.name, "skills", True)
                       for path in sorted(skills.glob("*/SKILL.md"))]
    for path, name, category, skill in candidates:
        if _through_link(path, claude) or not path.is_file():
            rel = path.relative_to(claude.parent).as_posix()
            findings.append(Finding("I212", rel, 1, 1, "is reached through a symbolic link "
                                    "or is not a file; not read", FindingLevel.WARNING))
            continue
        yield path, name, category, skill


def _through_link(path: Path, top: Path) -> bool:
    """Whether `path`, or a folder between it and `top`, is a symbolic link."""
    while path != top:
        if path.is_symlink():
            return True
        path = path.parent
    return False


def _read(path: Path, rel: str, name: str, category: str, skill: bool) -> _Source:
    """Split and parse one file; a file without front matter is all body."""
    text = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
    source = _Source(rel, name, category, skill, {}, text, 1)
    if not text.startswith("---\n"):
        return source
    lines = text.split("\n")
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        source.find("I202", "front matter is not closed; read as body", FindingLevel.WARNING)
        return source
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        col = mark.column + 1 if mark is not None else 1
        source.find("I201", f"front matter is not valid YAML: {getattr(exc, 'problem', exc)}",
                    FindingLevel.ERROR, line, col)
        data = None
    if data is not None and not isinstance(data, dict):
        source.find("I201", "front matter is not a mapping", FindingLevel.ERROR, 2, 1)
        data = None
    source.data = data or {}
    source.body = "\n".join(lines[end + 1 :])
    source.body_line = end + 2
    return source


def _hint_text(value: Any) -> str | None:
    """`argument-hint` as text; an unquoted `[message]` is a YAML list, read back as written."""
    if value is None:
        return None
    if isinstance(value, list):
        return " ".join(f"[{_hint_text(v)}]" for v in value)
    return str(value)


def _argument_names(source: _Source, hint: str | None) -> tuple[list[str], set[str]]:
    """The positional argument names and which are required: `arguments:`, else the hint."""
    declared = source.data.get("arguments")
    names: list[str] = []
    required: set[str] = set()
    if isinstance(declared, str):
        declared = declared.split()
    if isinstance(declared, list):
        names = [str(n) for n in declared]
    elif hint:
        for match in _HINT.finditer(hint):
            inner = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
            candidate = "-".join(inner.lstrip("-").split())
            name = candidate if _NAME.fullmatch(candidate) else f"arg{len(names)}"
            names.append(name)
            if match.group(1) is not None:
                required.add(name)
    if hint:  # `<name>` in the hint marks a required one, whatever declared the names
        required |= {m.group(1).strip() for m in _HINT.finditer(hint) if m.group(1)}
    clean = []
    for index, name in enumerate(names):
        if not _NAME.fullmatch(name) or name in clean:
            source.find("I203", f"argument name {name!r} is not usable; named arg{index}",
                        FindingLevel.WARNING)
            name = f"arg{index}"
        clean.append(name)
    return clean, required & set(clean)


def _token_pattern(names: list[str]) -> re.Pattern[str]:
    named = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(
        r"(?P<escaped_all>\\\$ARGUMENTS)|(?P<escaped>\\\$)"
        r"|\$ARGUMENTS\[(?P<index>[0-9]+)\]|(?P<all>\$ARGUMENTS)|\$(?P<short>[0-9]+)"
        + (rf"|\$(?P<named>{named})(?![A-Za-z0-9_])" if named else "")
        + r"|(?P<open>\{\{)|(?P<include><include\b)|(?P<bang>!`)"
        r"|(?P<at>(?<![\w@.])@(?=[\w./~-]))|(?P<var>\$\{CLAUDE_[A-Z_]+\})"
    )


def _convert_body(source: _Source, names: list[str]) -> tuple[str, list[str], bool]:
    """The body in Tallinn's syntax; the names (extended with `argN` for positions beyond
    them); whether any placeholder was used."""
    pattern = _token_pattern(names)
    positions = {int(m.group("index") or m.group("short")) for m in pattern.finditer(source.body)
                 if m.group("index") or m.group("short")}
    highest = max(positions, default=-1)
    if positions and 0 not in positions:
        source.find("I211", f"the body uses ${min(positions)} but not $0: Claude Code 2.1 "
                    "counts from $0, so this may be written for the older 1-based $1; "
                    "imported as Claude Code 2.1 reads it", FindingLevel.WARNING)
    names = names + [f"arg{i}" for i in range(len(names), highest + 1)]
    used = False
    reported: set[str] = set()

    def report(kind: str, message: str, offset: int) -> None:
        if kind in reported:
            return
        reported.add(kind)
        line = source.body.count("\n", 0, offset) + source.body_line
        col = offset - (source.body.rfind("\n", 0, offset) + 1) + 1
        source.find("I204", message, FindingLevel.WARNING, line, col)

    def one(match: re.Match[str]) -> str:
        nonlocal used
        kind = match.lastgroup
        if kind == "escaped_all":
            return "\\$ARGUMENTS"  # the same escape in Tallinn
        if kind == "escaped":
            return "$"
        if kind in ("index", "short"):
            used = True
            return "{{" + names[int(match.group(kind))] + "}}"
        if kind == "all":
            used = True
            return "$ARGUMENTS"
        if kind == "named":
            used = True
            return "{{" + match.group("named") + "}}"
        if kind == "open":
            return "\\{{"
        if kind == "include":
            return "\\<include"
        meaning = {"bang": "`!`cmd`` runs a shell command in Claude Code",
                   "at": "`@path` includes a file in Claude Code",
                   "var": f"{match.group(0)} is filled in by Claude Code"}[kind or "var"]
        report(kind or "var", f"{meaning}; in Tallinn it is literal text", match.start())
        return match.group(0)

    return pattern.sub(one, source.body), names, used


def _description(source: _Source) -> str:
    value = source.data.get("description")
    if isinstance(value, str) and value.strip():
        return value.strip()
    first = next((line.strip().lstrip("#").strip() for line in source.body.splitlines()
                  if line.strip()), "")
    made = first or f"Imported from {source.rel}"
    source.find("I205", f"no description; made from the body: {made!r}", FindingLevel.WARNING)
    return made


def _front_matter(source: _Source) -> tuple[dict[str, Any], str]:
    """Tallinn front matter and body for one Claude Code prompt."""
    hint = _hint_text(source.data.get("argument-hint"))
    names, required = _argument_names(source, hint)
    body, names, used = _convert_body(source, names)
    data: dict[str, Any] = {"description": _description(source)}
    if hint:
        data["argument-hint"] = hint
    if used and names:
        data["arguments"] = [{"name": n, "required": n in required} for n in names]
    elif names:
        source.find("I206", "the body names no argument, so none is declared: Claude Code "
                    "appends the arguments to the prompt", FindingLevel.INFO)
    tools = source.data.get("allowed-tools")
    if tools:
        data["allowed-tools"] = tools
    model = source.data.get("model")
    if model:
        data["model"] = str(model)
    # A command or skill Claude Code may run on its own unless this says otherwise; kept, so
    # that an export gives back the same behaviour.
    invocation = source.data.get("disable-model-invocation", False)
    data["disable-model-invocation"] = bool(invocation)
    for key in source.data:
        if key not in (*CARRIED, "arguments", "name"):
            source.find("I207", f"front matter key {key!r} is not carried",
                        FindingLevel.WARNING, 2, 1)
    return data, body


def _command_name(source: _Source) -> str:
    name = source.name
    if source.skill and isinstance(source.data.get("name"), str):
        name = source.data["name"]
    if not _COMMAND_NAME.fullmatch(name):
        fixed = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "command"
        source.find("I208", f"name {name!r} is not a Tallinn command name; imported as "
                    f"{fixed!r}", FindingLevel.WARNING)
        name = fixed
    return name


def convert(src: Path, out: Path) -> ImportReport:
    """Read `src` (a repository with `.claude/`, or that folder) and write a library to `out`,
    which must be empty or absent. Raises `ImporterError` only when the import cannot start."""
    base = Path(src)
    claude = _claude_folder(base)
    root = claude.parent
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ImporterError(f"{out} is not empty; import into a new folder")
    report = ImportReport(FORMAT, base, out)
    written: dict[str, str] = {}
    for path, stem, category, skill in _sources(claude, report.findings):
        rel = path.relative_to(root).as_posix()
        source = _read(path, rel, stem, category, skill)
        if any(f.level is FindingLevel.ERROR for f in source.findings):
            report.findings.extend(source.findings)
            report.files.append(ConvertedFile(rel, None, "command", None, False))
            continue
        name = _command_name(source)
        data, body = _front_matter(source)
        target = f"commands/{category + '/' if category else ''}{name}.md"
        if name in written:
            source.find("I209", f"a command named {name!r} is imported already, from "
                        f"{written[name]}; this one is left out", FindingLevel.ERROR)
            report.findings.extend(source.findings)
            report.files.append(ConvertedFile(rel, None, "command", name, False))
            continue
        if skill:
            for extra in sorted(p for p in path.parent.rglob("*") if p.is_file() and p != path):
                source.find("I210", f"file {extra.relative_to(root).as_posix()} of the skill "
                            "is not carried", FindingLevel.WARNING)
        written[name] = rel
        dumped = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100_000)
        destination = out / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(f"---\n{dumped}---\n{body}", encoding="utf-8")
        report.findings.extend(source.findings)
        clean = not any(f.level is not FindingLevel.INFO for f in source.findings)
        report.files.append(ConvertedFile(rel, target, "command", name, clean))
    out.mkdir(parents=True, exist_ok=True)
    config = {"library": {"name": root.resolve().name,
                          "description": "Imported from Claude Code commands and skills"}}
    (out / "tallinn.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
    if written:
        library = load_library(out)
        report.check = [str(d) for d in library.diagnostics]
    return report
