"""Dependencies point one way: cli -> serve/ops/gates/export -> library (STYLE.md section 1).

The library imports no other part of tallinn and no adapter; the gates import neither the
server, nor the state store, nor the CLI, nor the MCP SDK (the CLI injects the load driver).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ADAPTERS = ("mcp", "uvicorn", "starlette", "sqlalchemy", "alembic", "typer", "rich")
FORBIDDEN = {
    "tallinn.library": ("tallinn.cli", "tallinn.serve", "tallinn.ops", "tallinn.gates",
                        "tallinn.export", *ADAPTERS),
    "tallinn.gates": ("tallinn.cli", "tallinn.serve", "tallinn.ops", "tallinn.export",
                      *ADAPTERS),
    "tallinn.export": ("tallinn.cli", "tallinn.serve", "tallinn.ops", "tallinn.gates",
                       "tallinn.importers", *ADAPTERS),
    # The rollout core is pure: the store and the server call it, never the other way.
    "tallinn.ops.rollout": ("tallinn.cli", "tallinn.serve", "tallinn.ops", "tallinn.gates",
                            "tallinn.export", "tallinn.importers", *ADAPTERS),
}
# Within a forbidden prefix, what a package may still use: its own modules, and the bare
# package that holds it (whose __init__ imports nothing eagerly).
ALLOWED = {"tallinn.ops.rollout": ("tallinn.ops.rollout",)}
EXACT_ALLOWED = {"tallinn.ops.rollout": ("tallinn.ops",)}


def _forbidden(package: str, imported: str) -> bool:
    if imported in EXACT_ALLOWED.get(package, ()):
        return False
    if any(_is_under(imported, prefix) for prefix in ALLOWED.get(package, ())):
        return False
    return any(_is_under(imported, prefix) for prefix in FORBIDDEN[package])


def imports_of(source: str, module: str) -> set[str]:
    """Given a module's source, return every module it imports, wherever the import is.

    Function-level imports count, relative imports are resolved against `module`, and so
    are string literals given to `importlib.import_module` or `__import__`.
    """
    found: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else (
                function.id if isinstance(function, ast.Name) else "")
            argument = node.args[0]
            if name in ("import_module", "__import__") and isinstance(argument, ast.Constant) \
                    and isinstance(argument.value, str):
                found.add(argument.value)
    return found


def _is_under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _modules(package: str) -> list[tuple[str, Path]]:
    folder = SRC.joinpath(*package.split("."))
    found = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found.append((name, path))
    return found


def test_imports_of_finds_lazy_relative_and_dynamic_imports() -> None:
    """The scan sees what a plain top-level check would miss."""
    source = textwrap.dedent("""
        import os, mcp.client
        from . import base
        from ..library import model
        def late():
            from tallinn.serve import build_app
            import importlib
            return importlib.import_module("tallinn.ops"), __import__("rich")
    """)
    found = imports_of(source, "tallinn.gates.perf")
    assert {"os", "mcp.client", "tallinn.gates.base", "tallinn.library.model",
            "tallinn.serve", "tallinn.ops", "rich"} <= found
    assert _is_under("mcp.client", "mcp")
    assert not _is_under("mcpx", "mcp")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_against_the_layering(package: str) -> None:
    """No module of the package imports a layer above it or an adapter, even lazily."""
    modules = _modules(package)
    assert len(modules) > 5, f"no modules found under {package}"
    wrong = sorted(
        f"{name} imports {imported}"
        for name, path in modules
        for imported in imports_of(path.read_text(encoding="utf-8"), name)
        if _forbidden(package, imported)
    )
    assert wrong == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_the_package_loads_no_layer_above_it(package: str) -> None:
    """Importing every module of the package, in a fresh interpreter, loads nothing above it."""
    names = [name for name, _path in _modules(package)]
    code = textwrap.dedent(f"""
        import importlib, json, sys
        for name in {names!r}:
            importlib.import_module(name)
        print(json.dumps(sorted(sys.modules)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = json.loads(done.stdout)
    assert package in loaded
    wrong = sorted(m for m in loaded if _forbidden(package, m))
    assert wrong == []
