"""`gemini`: Gemini CLI custom commands, `.gemini/commands/<category>/<name>.toml`.

A command file has `prompt` (required) and `description`. Gemini CLI replaces `{{args}}` with
everything typed after the command, runs `!{...}` as a shell command and includes `@{...}`
files; it names `git/commit.toml` `/git:commit`.
"""

from __future__ import annotations

import tomli_w

from tallinn.export import _prose
from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    active,
    category_path,
    common_losses,
    compose_body,
    file_per_command,
    unenforced,
)
from tallinn.library import Command, Library

_SYNTAX = (
    active(r"\{\{\s*args\s*\}\}", "Gemini CLI substitutes it"),
    active(r"!\{", "Gemini CLI runs it as a shell command"),
    active(r"@\{", "Gemini CLI includes the file it names"),
)
LEAD = "The arguments are given in this order; {name} in the text below stands for the value."


def _prompt(library: Library, command: Command, losses: list[Loss]) -> str:
    """One argument, or the whole argument string, maps to `{{args}}` exactly; several
    arguments are described in an `<arguments>` block that ends with `{{args}}`."""
    template = library.templates[command.name]
    used = set(template.slots)
    if len(command.arguments) <= 1 or used <= {"$ARGUMENTS"}:
        losses.extend(unenforced(command))
        return compose_body(library, command, lambda _name: "{{args}}", _SYNTAX, losses)
    return _prose.body(library, command, _SYNTAX, losses, LEAD, given="{{args}}",
                       whole="{{args}}")


def build(library: Library) -> Export:

    def command_file(command: Command, losses: list[Loss]) -> ExportFile:
        losses.extend(common_losses(command, carried=("description",)))
        data = {"description": command.description,
                "prompt": _prompt(library, command, losses)}
        return ExportFile(f".gemini/commands/{category_path(command)}{command.name}.toml",
                          tomli_w.dumps(data, multiline_strings=True))

    return file_per_command(library, command_file)


EXPORTER = Exporter(
    name="gemini",
    agent="Gemini CLI",
    agent_version="0.61.0",
    summary="Gemini CLI custom commands: .gemini/commands/<category>/<name>.toml",
    build=build,
)
