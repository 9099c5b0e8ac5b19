"""`opencode`: opencode commands, `.opencode/commands/<name>.md`.

Front matter: `description`, `agent`, `model` (`provider/model`), `subtask`. opencode replaces
`$ARGUMENTS` with the whole argument string and `$1`, `$2`, ... with single words (1-based),
runs `` !`cmd` `` as a shell command and includes `@path` files.
"""

from __future__ import annotations

from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    active,
    common_losses,
    compose_body,
    file_per_command,
    front_matter,
    unenforced,
)
from tallinn.library import Command, Library

_SYNTAX = (
    active(r"\$ARGUMENTS|\$[0-9]", "opencode substitutes it"),
    active(r"!`", "opencode runs it as a shell command"),
    active(r"(?<![\w@.])@(?=[\w./~-])", "opencode includes the file it names"),
)


def build(library: Library) -> Export:

    def command_file(command: Command, losses: list[Loss]) -> ExportFile:
        data: dict[str, object] = {"description": command.description}
        carried = ["description"]
        if command.model and "/" in command.model:
            data["model"] = command.model  # opencode wants provider/model
            carried.append("model")
        losses.extend(unenforced(command))
        losses.extend(common_losses(command, carried=carried))
        index = {a.name: i + 1 for i, a in enumerate(command.arguments)}

        def slot(name: str) -> str:
            return "$ARGUMENTS" if name == "$ARGUMENTS" else f"${index[name]}"

        text = compose_body(library, command, slot, _SYNTAX, losses)
        return ExportFile(f".opencode/commands/{command.name}.md", front_matter(data, text))

    return file_per_command(library, command_file)


EXPORTER = Exporter(
    name="opencode",
    agent="opencode",
    agent_version="1.18.33",
    summary="opencode commands: .opencode/commands/<name>.md",
    build=build,
)
