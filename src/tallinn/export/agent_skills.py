"""`agent-skills`: the portable Agent Skills subset, `.agents/skills/<name>/SKILL.md`.

Read by Codex and other agents that read skills. Only the specification's portable keys are
written: `name` (lowercase letters, digits and single hyphens, at most 64 characters, the
folder's name) and `description` (at most 1,024 characters). A skill takes no arguments: the
agent fills them from the request.
"""

from __future__ import annotations

from tallinn.export import _claude, _prose
from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    common_losses,
    file_per_command,
    front_matter,
    limit,
)
from tallinn.library import Command, Library

LEAD = ("This skill takes these arguments from the request; {name} in the text below stands "
        "for the value of argument name.")


def build(library: Library) -> Export:

    def skill(command: Command, losses: list[Loss]) -> ExportFile | None:
        if not _claude.skill_name_ok(command, losses):
            return None
        data = {"name": command.name,
                "description": limit(command, "description", command.description,
                                     _claude.DESCRIPTION_MAX, losses)}
        losses.extend(common_losses(command, carried=("description",)))
        text = front_matter(data, _prose.body(library, command, (), losses, LEAD))
        return ExportFile(f".agents/skills/{command.name}/SKILL.md", text)

    return file_per_command(library, skill)


EXPORTER = Exporter(
    name="agent-skills",
    agent="Agent Skills (agentskills.io specification; Codex)",
    agent_version="specification of 2025-12-18",
    summary="portable Agent Skills: .agents/skills/<name>/SKILL.md",
    build=build,
)
