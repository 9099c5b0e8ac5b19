"""Shared fixtures: small libraries written to disk, a clean environment."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from tests.helpers import write_files

from tallinn.settings import Settings

WriteLibrary = Callable[[Mapping[str, str]], Path]

# Every variable the settings model reads, so a new setting is cleaned without a list to edit.
_ENV = tuple(field.alias or name for name, field in Settings.model_fields.items())


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
