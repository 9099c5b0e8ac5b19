"""Shared fixtures: small libraries written to disk, a clean environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from tests.helpers import write_files

WriteLibrary = Callable[[Mapping[str, str]], Path]

_ENV = (
    "TALLINN_LIBRARY", "PROJECT_ROOT", "TALLINN_ENV", "CLAUDE_CODE_ENV", "TALLINN_STORE_URL",
    "TALLINN_CACHE_DIR", "TALLINN_NO_CACHE",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's own library or production settings."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def write_library(tmp_path: Path) -> WriteLibrary:
    """Write a library from a mapping of relative paths to (dedented) file text."""
    counter = iter(range(1_000_000))

    def write(files: Mapping[str, str]) -> Path:
        return write_files(tmp_path / f"lib{next(counter)}", files)

    return write
