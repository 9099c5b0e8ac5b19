"""What every export target shares: the records, the interface and the body rendering.

A target maps a loaded `Library` to files in one agent's own format. What the agent cannot
carry is never dropped silently: it is a `Loss`, reported to the user (and an error with
`--strict`).

    TallinnError
    └── ExportError     an export cannot be written or checked (names the file)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from tallinn.library import ArgType, Argument, Command, Library, TallinnError, format_value
from tallinn.library.compose import ALL_ARGUMENTS

# libyaml's emitter when PyYAML has it: the pure-Python one is most of an export's time.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
# The loader's category for a command written directly under commands/: exported at the top.
TOP_CATEGORY = "general"


class ExportError(TallinnError):
    """An export cannot be written or checked: `ExportError("out/x.md", "not owned")`."""

    def __init__(self, path: str, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.col = col
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: E001 {self.message}"


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One file of an export: a relative POSIX path inside the output folder, and its text."""

    path: str
    content: str


@dataclass(frozen=True, slots=True)
class Loss:
    """Something of the source that the target cannot carry: `Loss("code-review", "examples")`.

    `what` names the thing lost; `detail` says what was written instead, if anything.
    """

    command: str
    what: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.what} ({self.detail})" if self.detail else self.what


@dataclass(frozen=True, slots=True)
class Export:
    """The result of one target on one library: files to write, and what they lost."""

    files: tuple[ExportFile, ...]
    losses: tuple[Loss, ...] = ()


@dataclass(frozen=True, slots=True)
class Exporter:
    """One export target: its name, the agent version its mapping was written for, and the
    function from a library to files and losses."""

    name: str
    agent: str
    agent_version: str
    summary: str
    build: Callable[[Library], Export] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ActiveSyntax:
    """Text that an agent substitutes or runs: a pattern, why it matters (for the report), and
    the agent's own escape if it has one (`\\` before `$` in Claude Code)."""

    pattern: re.Pattern[str]
    meaning: str
    escape: str | None = None


def active(pattern: str, meaning: str, escape: str | None = None) -> ActiveSyntax:
    return ActiveSyntax(re.compile(pattern), meaning, escape)


def fullwidth(char: str) -> str:
    """Given `$`, return `＄`: the visible full-width form no agent substitutes."""
    return chr(ord(char) + 0xFEE0) if "!" <= char <= "~" else char


def neutralize(text: str, syntax: Sequence[ActiveSyntax], command: str,
               losses: list[Loss]) -> str:
    """Rewrite each match of an active syntax, so that the agent reads it as the source meant:
    literal text. With the agent's own escape, the match is escaped and nothing is lost;
    without one, its first character becomes the full-width form, reported once per command
    and form."""
    for rule in syntax:
        def rewrite(match: re.Match[str], rule: ActiveSyntax = rule) -> str:
            found = match.group(0)
            if rule.escape is not None:
                return rule.escape + found
            written = fullwidth(found[0]) + found[1:]
            loss = Loss(command, f"literal {found!r}",
                        f"{rule.meaning}; written as {written!r}")
            if loss not in losses:
                losses.append(loss)
            return written

        text = rule.pattern.sub(rewrite, text)
    return text


def compose_body(library: Library, command: Command, slot: Callable[[str], str],
                 syntax: Sequence[ActiveSyntax], losses: list[Loss]) -> str:
    """The command's composed template, components inlined, each literal piece made inert for
    the target and each slot written by `slot` (given an argument name or `$ARGUMENTS`)."""
    template = library.templates[command.name]
    slots = dict(zip(template.slot_at, template.slots, strict=True))
    found: list[Loss] = []  # this command's: each rewrite is looked up among these only
    out: list[str] = []
    literal: list[str] = []  # a run of pieces: an escaped token is a piece of its own
    for index, piece in enumerate(template.pieces):
        if index in slots:
            out.append(neutralize("".join(literal), syntax, command.name, found))
            literal = []
            out.append(slot(slots[index]))
        else:
            literal.append(piece)
    out.append(neutralize("".join(literal), syntax, command.name, found))
    losses.extend(found)
    return "".join(out)


def front_matter(data: Mapping[str, Any], body: str) -> str:
    """A Markdown file with YAML front matter: keys in the order given, body as is."""
    dumped = yaml.dump(dict(data), Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                       width=100_000)
    return f"---\n{dumped}---\n{body}"


def argument_hint(command: Command) -> str | None:
    """The command's own hint, else one made from its arguments: `<path> [focus]`."""
    if command.argument_hint:
        return command.argument_hint
    if not command.arguments:
        return None
    return " ".join(f"<{a.name}>" if a.required else f"[{a.name}]" for a in command.arguments)


def describe_argument(argument: Argument) -> str:
    """Given `focus`, return `focus (optional; one of a, b; default a): What to look at`."""
    notes = ["required" if argument.required else "optional"]
    if argument.type is ArgType.ENUM:
        notes.append("one of " + ", ".join(argument.enum))
    elif argument.type is not ArgType.STRING:
        notes.append(argument.type.value)
    if argument.pattern:
        notes.append(f"matching {argument.pattern}")
    if argument.default is not None:
        notes.append(f"default {format_value(argument.default)}")
    text = f"{argument.name} ({'; '.join(notes)})"
    return f"{text}: {argument.description}" if argument.description else text


def arguments_block(command: Command, lead: str, given: str | None = None) -> str:
    """An `<arguments>` block for an agent that does not substitute named arguments: each
    argument with its rules, `{name}` standing for its value in the text."""
    lines = ["<arguments>", lead]
    lines += [f"- {describe_argument(a)}" for a in command.arguments]
    if given is not None:
        lines.append(f"Given: {given}")
    lines.append("</arguments>")
    return "\n".join(lines) + "\n"


def unenforced(command: Command) -> list[Loss]:
    """What an agent that substitutes arguments as plain words cannot check or apply."""
    losses = []
    for argument in command.arguments:
        if argument.type is ArgType.ENUM:
            losses.append(Loss(command.name, f"enum of {argument.name}",
                               "not checked; listed in argument-hint only if the source does"))
        elif argument.type is not ArgType.STRING:
            losses.append(Loss(command.name, f"type of {argument.name}",
                               f"{argument.type.value} not checked"))
        if argument.pattern:
            losses.append(Loss(command.name, f"pattern of {argument.name}", "not checked"))
        if argument.default is not None:
            losses.append(Loss(command.name, f"default of {argument.name}",
                               f"{format_value(argument.default)!r} not applied; "
                               "an omitted argument is empty"))
    return losses


def common_losses(command: Command, *, carried: Iterable[str]) -> list[Loss]:
    """Losses of the keys every target treats alike; `carried` names the keys this one keeps
    (`model`, `allowed-tools`, `argument-hint`, `description`)."""
    keep = set(carried)
    losses = []
    if command.examples:
        losses.append(Loss(command.name, "examples", f"{len(command.examples)} not carried"))
    if command.model and "model" not in keep:
        losses.append(Loss(command.name, "model", f"{command.model!r} not carried"))
    if command.allowed_tools and "allowed-tools" not in keep:
        losses.append(Loss(command.name, "allowed-tools",
                           f"{', '.join(command.allowed_tools)} not carried"))
    if command.argument_hint and "argument-hint" not in keep:
        losses.append(Loss(command.name, "argument-hint", f"{command.argument_hint!r}"))
    if "description" not in keep:
        losses.append(Loss(command.name, "description", "not carried"))
    return losses


def limit(command: Command, key: str, text: str, most: int, losses: list[Loss]) -> str:
    """`text` cut to `most` characters (ending in `...`), the cut reported."""
    if len(text) <= most:
        return text
    losses.append(Loss(command.name, f"{key} length",
                       f"{len(text)} characters cut to {most}"))
    return text[: most - 3].rstrip() + "..."


def category_path(command: Command) -> str:
    """`review/` for a command in category `review`; empty for the top (`general`)."""
    return "" if command.category == TOP_CATEGORY else command.category + "/"


def sorted_commands(library: Library) -> list[Command]:
    """Commands in a stable order, so two exports of one source are byte-identical."""
    return [library.commands[name] for name in sorted(library.commands)]


FileForCommand = Callable[[Command, list[Loss]], ExportFile | None]


def file_per_command(library: Library, file_for: FileForCommand) -> Export:
    """An export of one file a command, in a stable order.

    `file_for(command, losses)` appends what the target loses of the command to `losses`, and
    returns None for a command the target cannot take at all (a loss then says why).
    """
    files: list[ExportFile] = []
    losses: list[Loss] = []
    for command in sorted_commands(library):
        file = file_for(command, losses)
        if file is not None:
            files.append(file)
    return Export(tuple(files), tuple(losses))


def whole_arguments(name: str) -> bool:
    return name == ALL_ARGUMENTS
