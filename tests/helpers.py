"""Helpers shared by tests in several folders (fixtures live in conftest.py)."""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest


def write_files(root: Path, files: Mapping[str, str]) -> Path:
    """Given {"commands/a/x.md": "..."}, write each file (dedented) under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> Callable[[], int]:
    """Wrap `owner.name` so that calls to it are counted; return a function giving the count.

    Tests use it to show that work grows as it should (once per case, once per file), which
    holds on any machine, where a stopwatch would not.
    """
    original = getattr(owner, name)
    calls = [0]

    @functools.wraps(original)
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls[0]
