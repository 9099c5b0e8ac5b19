"""With `TALLINN_TEST_PARALLEL=1`, every full load in these tests reads and parses its files
in two worker processes, whatever its size: the same tests then prove the parallel load
gives what the serial one does (tests/library/test_parallel.py runs the hostile ones so)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tallinn.library import loader, parallel

PARALLEL = os.environ.get("TALLINN_TEST_PARALLEL") == "1"


@pytest.fixture(autouse=True)
def _parallel_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    if not PARALLEL:
        return
    build = loader._build

    def in_workers(source: Any, cache_dir: str | Path | None, workers: int = 1) -> Any:
        return build(source, cache_dir, 2)

    monkeypatch.setattr(parallel, "PARALLEL_FILES", 1)
    monkeypatch.setattr(loader, "_build", in_workers)
