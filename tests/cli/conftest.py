"""What the CLI tests share: a one-command library."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import WriteLibrary

HELLO = """
    ---
    description: Say hello to someone
    arguments:
      - {name: name, description: Who to greet, required: true}
    ---
    Hello, {{name}}.
    """


@pytest.fixture
def lib(write_library: WriteLibrary) -> Path:
    """A library of one command, `hello`, with one required argument."""
    return Path(write_library({"commands/a/hello.md": HELLO}))
