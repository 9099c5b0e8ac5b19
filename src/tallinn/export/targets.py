"""The table of export targets, in the order `tallinn export --help` lists them."""

from __future__ import annotations

from tallinn.export import (
    agent_skills,
    claude_commands,
    claude_plugin,
    claude_skills,
    copilot,
    cursor,
    gemini,
    opencode,
)
from tallinn.export._base import Exporter

TARGETS: dict[str, Exporter] = {
    module.EXPORTER.name: module.EXPORTER
    for module in (claude_skills, claude_commands, claude_plugin, agent_skills, copilot,
                   gemini, cursor, opencode)
}
