"""`claude-plugin`: a Claude Code plugin and a marketplace that lists it, in one folder.

    .claude-plugin/plugin.json       name, version, description
    .claude-plugin/marketplace.json  a marketplace of this one plugin (`source: "./"`)
    skills/<name>/SKILL.md           the commands, as in `claude-skills`
    .mcp.json                        starts `tallinn serve` on the library copied below
    README.md                        what the plugin holds, one line per skill
    library/                         the source library, as written
"""

from __future__ import annotations

import json
import re

from tallinn.export import _claude
from tallinn.export._base import Export, Exporter, ExportFile, Loss, sorted_commands
from tallinn.export.claude_skills import skill_files
from tallinn.library import Library

DEFAULT_VERSION = "0.1.0"
_SEMVER = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?")


def plugin_name(library: Library) -> str:
    """Given `Acme Prompts`, return `acme-prompts`: Claude Code wants kebab-case."""
    name = re.sub(r"[^a-z0-9]+", "-", library.name.lower()).strip("-")
    return name or "tallinn-library"


def _json(data: object) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _library_files(library: Library) -> list[ExportFile]:
    """The source files the loader read, so the plugin's server serves the same library."""
    files = [ExportFile(f"library/{doc.path}", doc.source)
             for doc in [*library.components.values(), *library.commands.values()]]
    config = library.files().read_text("tallinn.toml")
    if isinstance(config, str):
        files.append(ExportFile("library/tallinn.toml", config))
    return sorted(files, key=lambda f: f.path)


def _readme(library: Library, name: str, description: str) -> str:
    lines = [f"# {name}", "", description, "",
             f"Exported by Tallinn from the prompt library {library.name!r}. Each command is a "
             f"skill, `/{name}:<command>`, and the `tallinn` MCP server serves the same "
             "library (it needs `tallinn` on PATH).", "", "## Skills", ""]
    lines += [f"- `{c.name}`: {c.description}" for c in sorted_commands(library)]
    return "\n".join(lines) + "\n"


def build(library: Library) -> Export:
    skills = skill_files(library, "skills/")
    losses: list[Loss] = list(skills.losses)
    name = plugin_name(library)
    version = str(library.config.table("library").get("version", DEFAULT_VERSION))
    if not _SEMVER.fullmatch(version):
        losses.append(Loss("(library)", "version", f"{version!r} is not semantic; "
                                                    f"{DEFAULT_VERSION} written"))
        version = DEFAULT_VERSION
    description = library.config.description or f"The {library.name} prompt library"
    plugin: dict[str, object] = {"name": name, "version": version, "description": description,
                                 "author": {"name": library.name}}
    license_id = library.config.table("library").get("license")
    if isinstance(license_id, str) and license_id:
        plugin["license"] = license_id
    marketplace = {
        "name": f"{name}-marketplace",
        "owner": {"name": library.name},
        "metadata": {"description": description, "version": version},
        "plugins": [{"name": name, "source": "./", "description": description,
                     "version": version}],
    }
    servers = {"mcpServers": {"tallinn": {
        "command": "tallinn",
        "args": ["serve", "--library", "${CLAUDE_PLUGIN_ROOT}/library"],
    }}}
    files = [
        ExportFile(".claude-plugin/plugin.json", _json(plugin)),
        ExportFile(".claude-plugin/marketplace.json", _json(marketplace)),
        ExportFile(".mcp.json", _json(servers)),
        ExportFile("README.md", _readme(library, name, description)),
        *skills.files,
        *_library_files(library),
    ]
    return Export(tuple(files), tuple(losses))


EXPORTER = Exporter(
    name="claude-plugin",
    agent=_claude.AGENT,
    agent_version=_claude.VERSION,
    summary="a Claude Code plugin (skills and the MCP server) and its marketplace",
    build=build,
)
