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
    sorted_commands,
)
from tallinn.library import Library

LEAD = ("The user types these arguments after the command, in this order; {name} in the text "
        "below stands for the value.")


def build(library: Library) -> Export:
    files = []
    losses: list[Loss] = []
    for command in sorted_commands(library):
        losses.extend(common_losses(command, carried=()))
        text = _prose.body(library, command, (), losses, LEAD)
        files.append(ExportFile(f".cursor/commands/{command.name}.md", text))
    return Export(tuple(files), tuple(losses))


EXPORTER = Exporter(
    name="cursor",
    agent="Cursor",
    agent_version="1.6",
    summary="Cursor commands: .cursor/commands/<name>.md",
    build=build,
)
