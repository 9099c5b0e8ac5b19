"""`claude-skills`: `.claude/skills/<name>/SKILL.md`, Claude Code's native form."""

from __future__ import annotations

from tallinn.export import _claude
from tallinn.export._base import Export, Exporter, ExportFile, Loss, file_per_command, front_matter
from tallinn.library import Command, Library


def skill_files(library: Library, prefix: str) -> Export:
    """One `SKILL.md` per command under `prefix` (`.claude/skills/` or a plugin's `skills/`)."""

    def skill(command: Command, losses: list[Loss]) -> ExportFile | None:
        if not _claude.skill_name_ok(command, losses):
            return None
        data = _claude.meta(command, losses, skill=True)
        text = front_matter(data, _claude.body(library, command, losses))
        return ExportFile(f"{prefix}{command.name}/SKILL.md", text)

    return file_per_command(library, skill)


def build(library: Library) -> Export:
    return skill_files(library, ".claude/skills/")


EXPORTER = Exporter(
    name="claude-skills",
    agent=_claude.AGENT,
    agent_version=_claude.VERSION,
    summary="Claude Code skills: .claude/skills/<name>/SKILL.md",
    build=build,
)
