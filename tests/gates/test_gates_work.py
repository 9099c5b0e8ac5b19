"""What one run of the gates costs, counted, not timed: each file read and scanned once, each
front matter and each prompt-test file parsed once, each estimate made once."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.gates.test_gates_findings import synthetic_library
from tests.helpers import count_calls

from tallinn.gates import docs
from tallinn.gates.base import GateContext
from tallinn.library import load_library, yamlsafe


@pytest.fixture(scope="module")
def library_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_library(tmp_path_factory.mktemp("work") / "lib")


def test_the_docs_gate_parses_front_matter_only_for_its_findings(
    library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The docs gate parses the front matter of a file only when one of its requirements is
    unmet and needs a position: once per file with findings, never for the others."""
    library = load_library(library_root)
    parses = count_calls(monkeypatch, yamlsafe.LimitedLoader, "get_single_node")
    result = docs.run(GateContext(library.root, library))
    with_findings = {f.path for f in result.findings}
    assert 0 < len(with_findings) < len(library.commands) + len(library.components)
    assert parses() == len(with_findings)
