"""What the three Claude Code targets share: front matter and argument substitution.

Claude Code 2.1 substitutes `$ARGUMENTS` (the whole argument string), `$ARGUMENTS[N]` and its
shorthand `$N` (0-based: `$0` is the first word), and `$name` for each name listed under
`arguments:`; a backslash before the `$` keeps it literal. `` !`cmd` `` runs a shell command
before the prompt is sent, and `@path` includes a file.
"""

from __future__ import annotations

import re

from tallinn.export._base import (
    ActiveSyntax,
    Loss,
    active,
    argument_hint,
    common_losses,
    compose_body,
    limit,
    unenforced,
    whole_arguments,
)
from tallinn.library import Command, Library

AGENT = "Claude Code"
VERSION = "2.1.332"
# Claude Code's limits on a skill's name and description.
NAME_MAX = 64
DESCRIPTION_MAX = 1024
NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NAMED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_SYNTAX = (
    active(r"\$ARGUMENTS|\$[0-9]|\$\{CLAUDE_[A-Z_]+\}", "Claude Code substitutes it", "\\"),
    active(r"!`", "Claude Code runs it as a shell command"),
    active(r"(?<![\w@.])@(?=[\w./~-])", "Claude Code includes the file it names"),
)


def _named(command: Command) -> set[str]:
    """The arguments written as `$name`: plain identifiers, so no following text can extend
    them; the others are written as `$ARGUMENTS[N]`."""
    return {a.name for a in command.arguments if _NAMED.fullmatch(a.name)}


def body(library: Library, command: Command, losses: list[Loss]) -> str:
    """The composed body with Claude Code's placeholders, literal syntax escaped."""
    named = _named(command)
    index = {a.name: i for i, a in enumerate(command.arguments)}
    syntax: list[ActiveSyntax] = list(_SYNTAX)
    if command.arguments:
        # Every declared name is listed under `arguments:`, so a literal `$name` of any of
        # them, plain identifier or not, is escaped.
        declared = sorted((a.name for a in command.arguments), key=len, reverse=True)
        words = "|".join(re.escape(n) for n in declared)
        syntax.insert(0, active(rf"\$(?:{words})(?![A-Za-z0-9_])",
                                "Claude Code substitutes a declared argument", "\\"))
    template = library.templates[command.name]
    # A named placeholder followed by a letter or digit would read as a longer name.
    followed: dict[int, str] = {}
    for position, at in enumerate(template.slot_at):
        following = template.pieces[at + 1] if at + 1 < len(template.pieces) else ""
        followed[position] = following[:1]
    counter = iter(range(len(template.slots)))

    def slot(name: str) -> str:
        position = next(counter)
        if whole_arguments(name):
            return "$ARGUMENTS"
        nxt = followed.get(position, "")
        if name in named and not (nxt.isalnum() or nxt == "_"):
            return f"${name}"
        return f"$ARGUMENTS[{index[name]}]"

    return compose_body(library, command, slot, syntax, losses)


def meta(command: Command, losses: list[Loss], *, skill: bool) -> dict[str, object]:
    """Claude Code's front matter for a command; a skill also has its `name`."""
    data: dict[str, object] = {}
    if skill:
        data["name"] = command.name
    data["description"] = limit(command, "description", command.description,
                                DESCRIPTION_MAX, losses)
    hint = argument_hint(command)
    if hint:
        data["argument-hint"] = hint
    if command.arguments:
        data["arguments"] = [a.name for a in command.arguments]
    if command.allowed_tools:
        data["allowed-tools"] = ", ".join(command.allowed_tools)
    if command.model:
        data["model"] = command.model
    # A Tallinn command is a slash command the user runs with arguments; the source may
    # let the model run it on its own with `disable-model-invocation: false`.
    # `front_matter` parses the YAML again: only for a source that names the key.
    invocation = (command.front_matter.get("disable-model-invocation", True)
                  if "disable-model-invocation" in command.source[: command.body_start] else True)
    data["disable-model-invocation"] = invocation if isinstance(invocation, bool) else True
    losses.extend(unenforced(command))
    losses.extend(common_losses(command, carried=("model", "allowed-tools", "argument-hint",
                                                  "description")))
    return data


def skill_name_ok(command: Command, losses: list[Loss]) -> bool:
    """Claude Code and Agent Skills names: lowercase words joined by single hyphens, at most
    64 characters. A command whose name breaks them is left out, and the loss says so."""
    if len(command.name) <= NAME_MAX and NAME.fullmatch(command.name):
        return True
    losses.append(Loss(command.name, "the whole command",
                       f"name {command.name!r} is not a valid skill name "
                       f"(lowercase letters, digits, single hyphens, at most {NAME_MAX})"))
    return False
