"""`tallinn schema`: JSON Schemas of command and component front matter, for editors.

The schemas are generated from the pydantic models the loader validates with
(`tallinn.library.frontmatter`), so they cannot drift from it; `docs/schema/` holds the
published copies, and `tallinn schema --out docs/schema --check` fails when they are stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from tallinn.cli.common import ExitCode, command_app, fail, write_raw
from tallinn.library import frontmatter

Kind = Literal["command", "component"]
KINDS: tuple[Kind, ...] = ("command", "component")
DRAFT = "https://json-schema.org/draft/2020-12/schema"

app = command_app()


def schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of `kind` front matter.

    Unknown keys are not allowed here, although the loader only warns about them (V104):
    the editor is where a typo is cheapest to see.
    """
    model = frontmatter.CommandFrontMatter if kind == "command" else (
        frontmatter.ComponentFrontMatter)
    generated = model.model_json_schema(by_alias=True, mode="validation")
    generated["additionalProperties"] = False
    # The loader also rejects a description of blanks (`_not_blank`).
    generated["properties"]["description"]["pattern"] = r"\S"
    names = generated["$defs"]["ArgumentSpec"]["properties"]["name"]
    names["pattern"] = f"^{frontmatter.ARGUMENT_NAME.pattern}$"
    return {
        "$schema": DRAFT,
        "title": f"Tallinn {kind} front matter",
        **{key: value for key, value in generated.items() if key != "title"},
    }


def dumped(kind: Kind) -> str:
    return json.dumps(schema(kind), indent=2, ensure_ascii=False) + "\n"


@app.command(name="schema")
def schema_command(
    kind: Annotated[
        str, typer.Argument(help="command or component: the schema printed without --out.")
    ] = "command",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write command.schema.json and component.schema.json here."),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="With --out: exit 1 if the files there are stale.")
    ] = False,
) -> None:
    """Print or write the JSON Schema of front matter (for yaml-language-server)."""
    if kind not in KINDS:
        fail(f"unknown schema '{kind}' (known: {', '.join(KINDS)})")
    if out is None:
        if check:
            fail("--check needs --out DIR")
        write_raw(dumped(kind))
        return
    stale = []
    for name in KINDS:
        path = out / f"{name}.schema.json"
        text = dumped(name)
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "is stale: run 'tallinn schema --out DIR'" if check else "written"
        typer.echo(f"{path} {verb}", err=True)
    if check and stale:
        raise typer.Exit(int(ExitCode.PROBLEMS))
