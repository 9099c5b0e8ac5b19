"""`claude-commands`: `.claude/commands/<category>/<name>.md`, Claude Code's older form."""

from __future__ import annotations

from tallinn.export import _claude
from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    category_path,
    file_per_command,
    front_matter,
)
from tallinn.library import Command, Library


def build(library: Library) -> Export:

    def command_file(command: Command, losses: list[Loss]) -> ExportFile:
        data = _claude.meta(command, losses, skill=False)
        text = front_matter(data, _claude.body(library, command, losses))
        return ExportFile(f".claude/commands/{category_path(command)}{command.name}.md", text)

    return file_per_command(library, command_file)


EXPORTER = Exporter(
    name="claude-commands",
    agent=_claude.AGENT,
    agent_version=_claude.VERSION,
    summary="Claude Code custom commands: .claude/commands/<category>/<name>.md",
    build=build,
)
