"""docs/configuration.md: its generated part matches the code that reads the settings."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "configuration_doc.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("configuration_doc", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_part_is_current() -> None:
    """`scripts/configuration_doc.py --check` passes on the committed document."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_stale_document_is_found_and_rewritten(tmp_path: Path) -> None:
    """An edited row makes the check fail, and writing puts the generated part back."""
    generator = _generator()
    current = generator.DOCUMENT.read_text(encoding="utf-8")
    stale = current.replace("| `TALLINN_NO_CACHE` |", "| `TALLINN_NOCACHE` |")
    assert stale != current
    assert generator.document(stale) == current
    assert generator.document(current.split(generator.BEGIN)[0]) == current


def test_every_variable_and_key_the_code_reads_is_documented() -> None:
    """The environment variables the CLI and server read, the `[serve]` keys `resolve` reads
    and every gate setting each have a row with a meaning."""
    generator = _generator()
    variables = {row[0] for row in generator.environment_variables()}
    assert generator.variables_read_by_the_cli() <= variables
    assert {"PROJECT_ROOT", "CLAUDE_CODE_ENV", "TALLINN_LIBRARY", "TALLINN_STORE_URL"} \
        <= variables
    assert {row[0] for row in generator.serve_keys()} == generator.serve_keys_read()
    tables = dict(generator.gate_tables())
    assert {"gates", "gates.xml", "gates.tests", "gates.perf", "gates.security",
            "gates.docs"} <= set(tables)
    for table, rows in tables.items():
        for key, _default, meaning in rows:
            assert meaning, f"[{table}] {key} has no meaning"
