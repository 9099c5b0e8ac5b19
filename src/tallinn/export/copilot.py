"""`copilot`: GitHub Copilot prompt files, `.github/prompts/<name>.prompt.md`.

VS Code substitutes `${input:name:placeholder}` (asking the user for the value) and other
`${...}` variables (`${file}`, `${selection}`, ...); `#tool:` and `#file:` reference tools and
files. Front matter keys: `description`, `argument-hint`, `agent`, `model`, `tools`.
"""

from __future__ import annotations

from tallinn.export._base import (
    Export,
    Exporter,
    ExportFile,
    Loss,
    active,
    argument_hint,
    common_losses,
    compose_body,
    file_per_command,
    front_matter,
    unenforced,
)
from tallinn.library import Command, Library

_SYNTAX = (
    active(r"\$\{[A-Za-z]", "VS Code substitutes a ${...} variable"),
    active(r"#(?:tool|file):", "Copilot resolves a #tool: or #file: reference"),
)


def _placeholder(command: Command, name: str) -> str:
    """`${input:path:File or folder to review}`: the description is the prompt the user sees;
    `}` and line breaks would end or break the variable, so they are left out."""
    argument = command.argument(name)
    hint = (argument.description if argument is not None else "") or name
    hint = " ".join(hint.replace("}", ")").split())
    return f"${{input:{name}:{hint}}}"


def build(library: Library) -> Export:

    def prompt_file(command: Command, losses: list[Loss]) -> ExportFile:
        data: dict[str, object] = {"description": command.description}
        hint = argument_hint(command)
        if hint:
            data["argument-hint"] = hint
        data["agent"] = "agent"
        losses.extend(unenforced(command))
        losses.extend(common_losses(command, carried=("argument-hint", "description")))

        def slot(name: str) -> str:
            if name == "$ARGUMENTS":
                return "${input:arguments:The arguments}"
            return _placeholder(command, name)

        text = compose_body(library, command, slot, _SYNTAX, losses)
        return ExportFile(f".github/prompts/{command.name}.prompt.md", front_matter(data, text))

    return file_per_command(library, prompt_file)


EXPORTER = Exporter(
    name="copilot",
    agent="GitHub Copilot in VS Code",
    agent_version="VS Code 1.106",
    summary="Copilot prompt files: .github/prompts/<name>.prompt.md",
    build=build,
)
