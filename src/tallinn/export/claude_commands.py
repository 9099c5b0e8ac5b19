"""`claude-commands`: `.claude/commands/<category>/<name>.md`, Claude Code's older form."""

from __future__ import annotations

from tallinn.export import _claude
from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    category_path,
    front_matter,
    sorted_commands,
)
from tallinn.library import Library


def build(library: Library) -> Export:
    files = []
    losses: list[Loss] = []
    for command in sorted_commands(library):
        data = _claude.meta(command, losses, skill=False)
        text = front_matter(data, _claude.body(library, command, losses))
        files.append(ExportFile(f".claude/commands/{category_path(command)}{command.name}.md",
                                text))
    return Export(tuple(files), tuple(losses))


EXPORTER = Exporter(
    name="claude-commands",
    agent=_claude.AGENT,
    agent_version=_claude.VERSION,
    summary="Claude Code custom commands: .claude/commands/<category>/<name>.md",
    build=build,
)
