"""Every target against the starter and the edge library: files parse back, nothing is left
unresolved, and the argument mapping means what the source meant."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from tests.export.agents import (
    claude_substitute,
    gemini_command,
    opencode_substitute,
    split_front_matter,
)

from tallinn.export import TARGETS, Export, manifest_file, write_export
from tallinn.export.manifest import read, sha256
from tallinn.library import Library, format_value, load_library, render

SKILL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _parse(path: str, text: str) -> tuple[dict[str, object], str]:
    """Given an exported file, parse it the way its agent does; return (metadata, prompt)."""
    if path.startswith("library/") or path == "README.md":
        return {}, ""
    if path.endswith(".toml"):
        data = gemini_command(text)
        return data, str(data["prompt"])
    if path.endswith(".json"):
        return json.loads(text), ""
    if path.startswith(".cursor/"):
        return {}, text
    return split_front_matter(text)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_file_parses_back_and_leaves_nothing_unresolved(target: str,
                                                              source: Library) -> None:
    """Each exported file is valid front matter, TOML or JSON, with no include or Tallinn
    placeholder left, and one file (or skill) per command."""
    result = TARGETS[target].build(source)
    prompts = 0
    for file in result.files:
        meta, prompt = _parse(file.path, file.content)
        if prompt:
            prompts += 1
            assert "<include" not in prompt, file.path
            leftover = set(re.findall(r"\{\{\s*([A-Za-z_][\w-]*)\s*\}\}", prompt)) - {"args"}
            assert leftover == set(), (file.path, leftover)
        if file.path.endswith("SKILL.md"):
            name = str(meta["name"])
            assert SKILL_NAME.fullmatch(name)
            assert len(name) <= 64
            assert file.path.endswith(f"/{name}/SKILL.md")
            assert 0 < len(str(meta["description"])) <= 1024
    assert prompts == len(source.commands)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_second_export_is_byte_identical_and_the_manifest_is_right(
        target: str, source: Library, tmp_path: Path) -> None:
    """Two exports of one source write the same bytes, and the manifest records each file's
    SHA-256, the target, its pinned agent version and the source's content hash."""
    exporter = TARGETS[target]
    first, second = tmp_path / "a", tmp_path / "b"
    write_export(exporter, source, exporter.build(source), first)
    write_export(exporter, source, exporter.build(source), second)
    files = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second).as_posix()
                           for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    manifest = read(first, target)
    assert manifest is not None
    assert manifest.target == target
    assert manifest.agent_version == exporter.agent_version
    assert manifest.content_hash == source.content_hash
    assert sorted(manifest.files) == sorted(set(files) - {manifest_file(target)})
    for rel, digest in manifest.files.items():
        assert sha256((first / rel).read_bytes()) == digest


def _words(source: Library, name: str) -> tuple[dict[str, str], list[str]]:
    """Every declared argument of command `name` given a one-word value that fits it."""
    command = source.commands[name]
    values = {}
    for argument in command.arguments:
        if argument.enum:
            values[argument.name] = argument.enum[-1]
        elif argument.type.value in ("integer", "number"):
            values[argument.name] = "7"
        elif argument.type.value == "boolean":
            values[argument.name] = "true"
        else:
            values[argument.name] = f"value-of-{argument.name}"
        if argument.pattern:
            given = [str(e.args[argument.name]) for e in command.examples
                     if argument.name in e.args]
            values[argument.name] = next(v for v in [*given, "1", "none"]
                                         if argument.compiled_pattern.fullmatch(v))
    return values, list(values.values())


def _rendered(source: Library, name: str, values: dict[str, str]) -> str:
    command = source.commands[name]
    return render(source, command, values,
                  " ".join(format_value(v) for v in values.values()) or None)


def _files(result: Export) -> dict[str, str]:
    return {f.path: f.content for f in result.files}


@pytest.mark.parametrize("target", ["claude-skills", "claude-commands"])
def test_claude_code_substitution_gives_what_tallinn_renders(target: str,
                                                             source: Library) -> None:
    """Substituted as Claude Code documents it, every exported command reads exactly as
    Tallinn renders it with the same arguments: literal `$ARGUMENTS`, `$1` and `$name` stay."""
    files = _files(TARGETS[target].build(source))
    for path, text in files.items():
        meta, body = split_front_matter(text)
        name = Path(path).parent.name if path.endswith("SKILL.md") else Path(path).stem
        values, words = _words(source, name)
        names = [str(n) for n in meta.get("arguments", [])]
        expected = _rendered(source, name, values)
        # Full-width forms stand for text Claude Code would run or include: compare as written.
        got = claude_substitute(body, words, names).replace("！`", "!`").replace("＠", "@")
        assert got == expected, path


def test_opencode_substitution_gives_what_tallinn_renders(source: Library) -> None:
    """Substituted as opencode documents it (1-based `$N`), each command reads as Tallinn
    renders it."""
    for path, text in _files(TARGETS["opencode"].build(source)).items():
        _meta, body = split_front_matter(text)
        name = Path(path).stem
        values, words = _words(source, name)
        got = opencode_substitute(body, words)
        got = got.replace("＄", "$").replace("！`", "!`").replace("＠", "@")
        assert got == _rendered(source, name, values), path


def test_gemini_maps_one_argument_to_args_and_describes_several(edge: Library) -> None:
    """A one-argument command's `{{name}}` becomes `{{args}}`; a command with several gets an
    `<arguments>` block ending in `Given: {{args}}`, with each enum and default listed."""
    files = _files(TARGETS["gemini"].build(edge))
    one = tomllib.loads(files[".gemini/commands/edge/literal-syntax.toml"])["prompt"]
    assert one.startswith("Explain {{args}} to the reader.")
    several = tomllib.loads(files[".gemini/commands/edge/enum-default.toml"])["prompt"]
    assert "- focus (optional; one of speed, safety; default safety): What to look at" in several
    assert "Given: {{args}}\n</arguments>" in several
    assert "Look at `{path}` for {focus}, {depth} levels deep." in several
    assert ".gemini/commands/top.toml" in files  # the loader's "general" is the top


def test_literal_agent_syntax_is_escaped_or_rewritten_and_reported(edge: Library) -> None:
    """Syntax an agent would substitute, run or include is escaped where the agent has an
    escape (Claude Code's `\\$`) and otherwise rewritten to a full-width form and reported."""
    claude = TARGETS["claude-skills"].build(edge)
    body = _files(claude)[".claude/skills/literal-syntax/SKILL.md"]
    assert r"reads \$ARGUMENTS, \$0 and \$1, runs ！`git status` and includes ＠src/app.py" in body
    assert "a@b.com" in body
    assert r"\$target is also literal" in body
    lost = {str(loss) for loss in claude.losses if loss.command == "literal-syntax"}
    assert any("'!`'" in text for text in lost)
    assert not any("'$ARGUMENTS'" in text for text in lost)  # escaped: nothing lost

    gemini = _files(TARGETS["gemini"].build(edge))[".gemini/commands/edge/literal-syntax.toml"]
    assert "reads ｛{args}}, runs ！{ls} and includes ＠{README.md}" in gemini
    copilot = _files(TARGETS["copilot"].build(edge))[".github/prompts/literal-syntax.prompt.md"]
    assert "Copilot reads ＄{input:name} and ＃tool:search" in copilot
    assert "Explain ${input:target:What to explain} to the reader." in copilot


def test_claude_code_front_matter_carries_the_keys_and_cuts_long_descriptions(
        edge: Library) -> None:
    """Claude Code's keys carry over; a description past 1,024 characters is cut and the cut
    reported; defaults, enums and examples are reported as lost."""
    result = TARGETS["claude-skills"].build(edge)
    meta, body = split_front_matter(_files(result)[".claude/skills/enum-default/SKILL.md"])
    assert meta["argument-hint"] == "<path> [focus] [depth]"
    assert meta["allowed-tools"] == "Read, Grep, Bash(git diff:*)"
    assert meta["model"] == "sonnet"
    assert meta["arguments"] == ["path", "focus", "depth"]
    assert meta["disable-model-invocation"] is True
    assert len(str(meta["description"])) == 1024
    assert body == "Look at `$path` for $focus, $depth levels deep.\n"
    lost = {loss.what for loss in result.losses if loss.command == "enum-default"}
    assert {"description length", "default of focus", "enum of focus", "type of depth",
            "pattern of depth", "examples"} <= lost
    adjacent = _files(result)[".claude/skills/adjacent/SKILL.md"]
    assert "Count the $ARGUMENTS[0]s; dry run: $ARGUMENTS[1]. The flag \\$dry-run is literal." \
        in adjacent


def test_the_plugin_serves_the_library_it_was_made_from(edge: Library) -> None:
    """The plugin's `.mcp.json` starts `tallinn serve` on a copy of the source library inside
    the plugin, and its manifests name the plugin in kebab-case with the library's version."""
    files = _files(TARGETS["claude-plugin"].build(edge))
    plugin = json.loads(files[".claude-plugin/plugin.json"])
    assert plugin["license"] == "MIT"
    assert "- `enum-default`: Plan a change carefully." in files["README.md"]
    assert plugin["name"] == "edge-cases"
    assert plugin["version"] == "1.2.3"
    market = json.loads(files[".claude-plugin/marketplace.json"])
    assert market["plugins"][0]["source"] == "./"
    server = json.loads(files[".mcp.json"])["mcpServers"]["tallinn"]
    assert server["args"] == ["serve", "--library", "${CLAUDE_PLUGIN_ROOT}/library"]
    for command in edge.commands.values():
        assert files[f"library/{command.path}"] == command.source
    assert "library/tallinn.toml" in files


def test_a_name_agents_refuse_is_left_out_and_reported(write_library) -> None:
    """A command whose name breaks the skill-name rule (double hyphen, over 64 characters) is
    left out of the skill targets and reported; command targets still carry it."""
    long_name = "a" * 65
    root = write_library({
        f"commands/x/{name}.md": """
            ---
            description: Model with a provider
            model: anthropic/claude-sonnet-4-5
            ---
            Hello.
            """
        for name in ("two--hyphens", long_name)})
    library = load_library(root)
    for target in ("claude-skills", "agent-skills", "claude-plugin"):
        result = TARGETS[target].build(library)
        assert not [f for f in result.files if f.path.endswith("SKILL.md")], target
        assert {loss.command for loss in result.losses if loss.what == "the whole command"} \
            == {"two--hyphens", long_name}
    opencode = _files(TARGETS["opencode"].build(library))
    meta, _ = split_front_matter(opencode[".opencode/commands/two--hyphens.md"])
    assert meta["model"] == "anthropic/claude-sonnet-4-5"


def test_an_export_does_work_in_proportion_to_the_library(write_library, monkeypatch) -> None:
    """Reported losses are compared within one command only, and front matter is parsed again
    only for a source that names `disable-model-invocation`: four times the commands, four
    times the work."""
    from tests.helpers import count_calls

    from tallinn.export._base import Loss
    from tallinn.library import frontmatter

    def library(size: int) -> Library:
        return load_library(write_library({
            f"commands/x/c{i}.md": """
                ---
                description: Costs
                ---
                It costs $5, $6 and $7; run !`ls` and read @a.md.
                """
            for i in range(size)}))

    small, large = library(10), library(40)
    comparisons = count_calls(monkeypatch, Loss, "__eq__")
    parses = count_calls(monkeypatch, frontmatter, "parse")
    work = []
    for source in (small, large):
        before = comparisons(), parses()
        result = TARGETS["opencode"].build(source)
        TARGETS["claude-skills"].build(source)
        work.append((comparisons() - before[0], parses() - before[1], len(result.losses)))
    (small_eq, small_parses, small_losses), (large_eq, large_parses, large_losses) = work
    assert large_losses == 4 * small_losses
    assert large_eq == 4 * small_eq
    assert small_parses == large_parses == 0
    named = load_library(write_library({f"commands/x/m{i}.md": """
        ---
        description: May run on its own
        disable-model-invocation: false
        ---
        Hello.
        """ for i in range(3)}))
    before = parses()
    files = _files(TARGETS["claude-skills"].build(named))
    assert parses() - before == 3
    meta, _ = split_front_matter(files[".claude/skills/m0/SKILL.md"])
    assert meta["disable-model-invocation"] is False
