"""The published front-matter JSON Schemas: generated from the loader's models, never stale."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.cli.schema import KINDS, schema
from tallinn.library import frontmatter, load_library

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "schema"


def test_the_published_schemas_are_what_the_models_generate(tmp_path: Path) -> None:
    """`tallinn schema --out docs/schema --check` passes, and fails once a file is edited."""
    runner = CliRunner()
    result = runner.invoke(app, ["schema", "--out", str(PUBLISHED), "--check"])
    assert result.exit_code == 0, result.output
    copy = tmp_path / "schema"
    shutil.copytree(PUBLISHED, copy)
    edited = json.loads((copy / "command.schema.json").read_text())
    edited["properties"].pop("model")
    (copy / "command.schema.json").write_text(json.dumps(edited))
    result = runner.invoke(app, ["schema", "--out", str(copy), "--check"])
    assert result.exit_code == 1
    assert "command.schema.json is stale" in result.stderr
    result = runner.invoke(app, ["schema", "--out", str(copy)])
    assert result.exit_code == 0
    assert json.loads((copy / "command.schema.json").read_text()) == schema("command")


def test_the_schema_keys_are_the_keys_the_loader_knows() -> None:
    """Every key the loader accepts is in the schema, and no other."""
    assert set(schema("command")["properties"]) == frontmatter.COMMAND_KEYS
    assert set(schema("component")["properties"]) == frontmatter.COMPONENT_KEYS


def _starter_front_matter() -> list[tuple[str, dict[str, object]]]:
    starter = Path(str(resources.files("tallinn") / "starter"))
    found = []
    for path in sorted(starter.glob("com*/**/*.md")):
        parsed = frontmatter.parse(path.read_text(encoding="utf-8"), path.name)
        assert isinstance(parsed, frontmatter.Parsed)
        kind = "command" if path.relative_to(starter).parts[0] == "commands" else "component"
        found.append((kind, dict(parsed.data)))
    return found


def test_the_schemas_accept_the_starter_library_and_flag_a_typo() -> None:
    """Each starter file's front matter validates; a misspelt key and a blank description do
    not."""
    files = _starter_front_matter()
    assert {kind for kind, _ in files} == set(KINDS)
    for kind, data in files:
        jsonschema.Draft202012Validator(schema(kind)).validate(data)
    validator = jsonschema.Draft202012Validator(schema("command"))
    assert not validator.is_valid({"description": "x", "argument_hint": "<path>"})
    assert not validator.is_valid({"description": "  "})
    assert not validator.is_valid({"description": "x", "arguments": [{"name": "1bad"}]})
    assert validator.is_valid({"description": "x", "arguments": [{"name": "path"}]})


@pytest.mark.parametrize("kind", KINDS)
def test_the_cli_prints_one_schema(kind: str) -> None:
    """`tallinn schema KIND` prints that schema as JSON on stdout."""
    result = CliRunner().invoke(app, ["schema", kind])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == schema(kind)  # type: ignore[arg-type]


def test_an_unknown_schema_and_check_without_out_are_usage_errors() -> None:
    """A schema name it does not know, or --check without a folder, exits 2."""
    runner = CliRunner()
    assert runner.invoke(app, ["schema", "skill"]).exit_code == 2
    assert runner.invoke(app, ["schema", "--check"]).exit_code == 2


def test_a_file_with_the_modeline_loads_as_before(tmp_path: Path) -> None:
    """The yaml-language-server modeline is a YAML comment: no warning, same command."""
    (tmp_path / "commands/x").mkdir(parents=True)
    (tmp_path / "commands/x/hello.md").write_text(
        "---\n# yaml-language-server: $schema=../../docs/schema/command.schema.json\n"
        "description: Say hello\n---\nHello.\n"
    )
    library = load_library(tmp_path)
    assert library.diagnostics == ()
    assert library.commands["hello"].description == "Say hello"
