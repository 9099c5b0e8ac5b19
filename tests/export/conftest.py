"""Libraries every export target runs against: the bundled starter and a library of edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallinn.library import Library, load_library
from tallinn.settings import starter_path

EDGE_LIBRARY = Path(__file__).resolve().parent / "edge-library"
LIBRARIES = {"starter": starter_path(), "edge": EDGE_LIBRARY}


@pytest.fixture(scope="session", params=sorted(LIBRARIES))
def source(request: pytest.FixtureRequest) -> Library:
    library = load_library(LIBRARIES[request.param])
    assert library.ok, library.errors
    return library


@pytest.fixture(scope="session")
def edge() -> Library:
    return load_library(EDGE_LIBRARY)
