"""`cursor`: Cursor commands, `.cursor/commands/<name>.md`.

A Cursor command is plain Markdown, without front matter; what the user types after the
command is sent along with it. Cursor substitutes nothing in the file.
"""

from __future__ import annotations

from tallinn.export import _prose
from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    common_losses,
    file_per_command,
)
from tallinn.library import Command, Library

LEAD = ("The user types these arguments after the command, in this order; {name} in the text "
        "below stands for the value.")


def build(library: Library) -> Export:

    def command_file(command: Command, losses: list[Loss]) -> ExportFile:
        losses.extend(common_losses(command, carried=()))
        text = _prose.body(library, command, (), losses, LEAD)
        return ExportFile(f".cursor/commands/{command.name}.md", text)

    return file_per_command(library, command_file)


EXPORTER = Exporter(
    name="cursor",
    agent="Cursor",
    agent_version="1.6",
    summary="Cursor commands: .cursor/commands/<name>.md",
    build=build,
)
