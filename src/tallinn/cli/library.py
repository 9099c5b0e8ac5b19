"""Library commands: list, show, render, check, init."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from tallinn.cli.common import (
    ExitCode,
    JsonOption,
    LibraryOption,
    command_app,
    err,
    fail,
    load,
    out,
    print_diagnostics,
    write_raw,
)
from tallinn.library import (
    Command,
    Library,
    NotFoundError,
    bind_positional,
    format_value,
    render,
    walk,
)
from tallinn.wording import plural

_DOTFILES = frozenset({"gitignore"})


app = command_app()


def command_json(command: Command) -> dict[str, Any]:
    return {
        "name": command.name,
        "category": command.category,
        "description": command.description,
        "argument_hint": command.argument_hint,
        "arguments": [
            {
                "name": a.name,
                "description": a.description,
                "type": a.type.value,
                "required": a.required,
                "default": a.default,
                "enum": list(a.enum) or None,
                "pattern": a.pattern,
            }
            for a in command.arguments
        ],
        "allowed_tools": list(command.allowed_tools),
        "model": command.model,
        "tags": list(command.tags),
        "critical": command.critical,
        "examples": [{"description": e.description, "args": dict(e.args)}
                     for e in command.examples],
        "path": command.path,
    }


def find_command(library: Library, name: str) -> Command:
    command = library.commands.get(name.lstrip("/"))
    if command is not None:
        return command
    broken = [d for d in library.errors if d.path.rsplit("/", 1)[-1] == f"{name}.md"]
    if broken:
        fail(f"command '{name}' has errors and is not loaded:\n  {broken[0]}", ExitCode.PROBLEMS)
    from tallinn.wording import close_matches

    close = close_matches(name, list(library.commands), n=3, cutoff=0.6)
    fail(str(NotFoundError("command", name, close)))


@app.command("list")
def list_commands(
    library: LibraryOption = None,
    category: Annotated[
        str | None, typer.Option(help="Only this category.", metavar="CATEGORY")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the commands of the library."""
    lib = load(library)
    commands = [c for c in lib.commands.values() if category is None or c.category == category]
    if category is not None and not commands:
        fail(f"no category '{category}' (categories: {', '.join(lib.categories())})")
    if as_json:
        write_raw(json.dumps([command_json(c) for c in commands], indent=2))
        return
    table = Table(title=f"{lib.name}: {plural(len(commands), 'command')}", title_justify="left")
    table.add_column("command", style="bold cyan", no_wrap=True)
    table.add_column("category")
    table.add_column("arguments")
    table.add_column("description")
    for command in sorted(commands, key=lambda c: (c.category, c.name)):
        args = " ".join(a.name if a.required else f"[{a.name}]" for a in command.arguments)
        mark = " ★" if command.critical else ""
        table.add_row(command.name + mark, command.category, args, command.description)
    out.print(table, markup=False)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Command name.")],
    library: LibraryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show a command: metadata, arguments, examples and include tree."""
    lib = load(library)
    command = find_command(lib, name)
    template = lib.templates[command.name]
    if as_json:
        data = command_json(command)
        data["includes"] = [
            {"component": node.component, "depth": depth}
            for depth, node in walk(template.includes)
        ]
        write_raw(json.dumps(data, indent=2))
        return
    out.print(f"[bold cyan]/{command.name}[/] [dim]({command.category}, {command.path})[/]")
    out.print(command.description, markup=False)
    if command.argument_hint:
        out.print(f"usage: /{command.name} {command.argument_hint}", markup=False)
    if command.arguments:
        table = Table("argument", "type", "required", "default", "description")
        for a in command.arguments:
            kind = a.type.value + (f" ({', '.join(a.enum)})" if a.enum else "")
            if a.pattern:
                kind += f" ~ {a.pattern}"
            default = "" if a.default is None else format_value(a.default)
            table.add_row(a.name, kind, "yes" if a.required else "no", default, a.description)
        out.print(table, markup=False)
    meta = []
    if command.allowed_tools:
        meta.append(f"allowed-tools: {', '.join(command.allowed_tools)}")
    if command.model:
        meta.append(f"model: {command.model}")
    if command.tags:
        meta.append(f"tags: {', '.join(command.tags)}")
    if command.critical:
        meta.append("critical: yes")
    for line in meta:
        out.print(line, markup=False)
    for example in command.examples:
        args = " ".join(f"{k}={format_value(v)}" for k, v in example.args.items())
        out.print(f"example: {example.description}  [dim]{args}[/]")
    tree = Tree(f"[bold]{command.name}[/]")
    nodes = {-1: tree}
    for depth, node in walk(template.includes):
        nodes[depth] = nodes[depth - 1].add(node.component)
    if template.includes:
        out.print(tree)


@app.command("render")
def render_cmd(
    name: Annotated[str, typer.Argument(help="Command name.")],
    words: Annotated[
        list[str] | None,
        typer.Argument(help="Positional arguments, in declared order.", metavar="ARG"),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", "-a", help="A named argument (repeatable).", metavar="NAME=VALUE"),
    ] = None,
    library: LibraryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Render a command with arguments and print the prompt.

    Examples:

      tallinn render code-review src/auth.py security
      tallinn render code-review --arg path=src/auth.py --arg focus=security --json
    """
    lib = load(library)
    command = find_command(lib, name)
    positional = list(words or [])
    values: dict[str, str] = bind_positional(command, positional)
    for item in arg or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--arg takes NAME=VALUE, got '{item}'")
        if key in values:
            fail(f"argument '{key}' given twice")
        values[key] = value
    raw = " ".join(positional) if positional else None
    text = render(lib, command, values, raw)
    if as_json:
        write_raw(json.dumps({"command": command.name, "arguments": values, "text": text}))
    else:
        write_raw(text)


@app.command()
def check(
    library: LibraryOption = None,
    as_json: JsonOption = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
) -> None:
    """Load and compose the whole library; report every problem (exit 1 on errors).

    Examples:

      tallinn check --library my-library
      tallinn check --strict --json > problems.json
    """
    lib = load(library, quiet=True)
    diagnostics = lib.diagnostics
    if as_json:
        write_raw(json.dumps(
            {
                "library": lib.label,
                "commands": len(lib.commands),
                "components": len(lib.components),
                "errors": len(lib.errors),
                "warnings": len(lib.warnings),
                "diagnostics": [
                    {"code": d.code, "severity": d.severity.value, "path": d.path,
                     "line": d.line, "col": d.col, "message": d.message}
                    for d in diagnostics
                ],
            },
            indent=2,
        ))
    else:
        print_diagnostics(diagnostics)
        summary = (f"{plural(len(lib.commands), 'command')}, "
                   f"{plural(len(lib.components), 'component')}: "
                   f"{plural(len(lib.errors), 'error')}, {plural(len(lib.warnings), 'warning')}")
        style = "red" if lib.errors else ("yellow" if lib.warnings else "green")
        err.print(f"[{style}]{summary}[/]")
    if lib.errors or (strict and lib.warnings):
        raise typer.Exit(int(ExitCode.PROBLEMS))


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the library in.")],
    force: Annotated[
        bool, typer.Option("--force", help="Write into a folder that is not empty.")
    ] = False,
) -> None:
    """Scaffold a working library: a command, a component, a test and tallinn.toml."""
    if directory.exists() and any(directory.iterdir()) and not force:
        fail(f"{directory} is not empty (use --force to write into it anyway)")
    scaffold = resources.files("tallinn") / "scaffold"
    written: list[str] = []
    with resources.as_file(scaffold) as source:
        for path in sorted(Path(source).rglob("*")):
            if path.is_dir() or path.name == "__init__.py" or "__pycache__" in path.parts:
                continue
            rel = path.relative_to(source)
            # Dotfiles are shipped without their dot, so packaging tools never treat them
            # as their own (a .gitignore inside the package would hide files from builds).
            if rel.name in _DOTFILES:
                rel = rel.with_name("." + rel.name)
            target = directory / rel
            if target.exists():
                err.print(f"kept existing {target}")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            written.append(rel.as_posix())
    text = (directory / "tallinn.toml").read_text(encoding="utf-8")
    (directory / "tallinn.toml").write_text(
        text.replace("my-prompts", directory.resolve().name), encoding="utf-8"
    )
    for name in written:
        err.print(f"  created {directory / name}")
    err.print(f"[green]Library ready.[/] Try: tallinn list --library {directory}")
