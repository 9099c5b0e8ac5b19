"""The rollout package: its exports, and the layering that keeps it pure."""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import tallinn.ops.rollout as rollout

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "src" / "tallinn" / "ops" / "rollout"
FORBIDDEN = ("tallinn.cli", "tallinn.serve", "tallinn.gates", "tallinn.export",
             "tallinn.importers", "mcp", "uvicorn", "starlette", "sqlalchemy", "alembic",
             "typer", "rich", "time")


def _imports_of():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("layering", ROOT / "tests" / "test_layering.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.imports_of


def test_all_is_sorted_and_names_every_import() -> None:
    """`__all__` is sorted (constants, classes, functions) and holds every name imported."""
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert rollout.__all__ == sorted(rollout.__all__, key=kind)
    public = {name for name in vars(rollout) if not name.startswith("_")}
    modules = {info.name for info in pkgutil.iter_modules(rollout.__path__)}
    assert public - modules == set(rollout.__all__)


def test_the_package_imports_only_the_library_and_itself() -> None:
    """No module imports the CLI, the server, the gates, an adapter, the clock or other ops."""
    imports_of = _imports_of()
    wrong = []
    for path in sorted(PACKAGE.glob("*.py")):
        name = "tallinn.ops.rollout" + ("" if path.stem == "__init__" else f".{path.stem}")
        for imported in imports_of(path.read_text(encoding="utf-8"), name):
            outside_ops = imported.startswith("tallinn.ops") and not imported.startswith(
                "tallinn.ops.rollout")
            if outside_ops or any(imported == p or imported.startswith(p + ".")
                                  for p in FORBIDDEN):
                wrong.append(f"{name} imports {imported}")
    assert wrong == []


def test_importing_the_package_loads_no_more_than_tallinn_ops_does() -> None:
    """In a fresh interpreter, the rollout modules the store does not use (the simulation) add
    no SQLAlchemy, MCP, server or CLI to what importing `tallinn.ops` loads already."""
    code = textwrap.dedent("""
        import importlib, json, pkgutil, sys
        import tallinn.ops
        before = set(sys.modules)
        import tallinn.ops.rollout as package
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"tallinn.ops.rollout.{info.name}")
        print(json.dumps(sorted(set(sys.modules) - before)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    added = set(json.loads(done.stdout))
    assert "tallinn.ops.rollout.simulate" in added
    assert [name for name in added if name.startswith(FORBIDDEN)] == []
