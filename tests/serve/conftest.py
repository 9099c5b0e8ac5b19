"""Fixtures for the server tests: a small library on disk, a fake store, running servers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.helpers import write_files
from tests.serve.serve_helpers import (
    FIXTURE_LIBRARY,
    FakeStore,
    ServerProcess,
    ThreadServer,
    free_port,
)

from tallinn.serve import (
    EventRecorder,
    Registry,
    ServeConfig,
    TallinnServer,
    build_app,
    build_server,
    http_server,
)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """`tallinn serve` configures the root logger; put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return write_files(tmp_path / "library", FIXTURE_LIBRARY)


@pytest.fixture
def registry(library_dir: Path) -> Registry:
    registry = Registry(library_dir)
    registry.load()
    return registry


@pytest.fixture
def store() -> FakeStore:
    return FakeStore({"good-token": "ci-bot"})


@pytest.fixture
def server(registry: Registry, store: FakeStore) -> TallinnServer:
    return build_server(registry, EventRecorder(store, registry.metrics))


StartThread = Callable[..., ThreadServer]


@pytest.fixture
def serve_thread(registry: Registry, store: FakeStore) -> Iterator[StartThread]:
    """Start `build_app(registry, store, config)` under uvicorn in a thread of this process."""
    running: list[ThreadServer] = []

    def start(
        config: ServeConfig | None = None, *, reg: Registry | None = None, port: int = 0
    ) -> ThreadServer:
        port = port or (config.port if config and config.port != 8000 else free_port())
        config = config or ServeConfig(port=port, reload=False)
        thread_server = ThreadServer(build_app(reg or registry, store, config), port)
        running.append(thread_server)
        return thread_server.start()

    yield start
    for thread_server in running:
        thread_server.stop()


StartEdge = Callable[..., ThreadServer]


@pytest.fixture
def edge(registry: Registry, store: FakeStore) -> Iterator[StartEdge]:
    """Start `http_server(...)`, the server `tallinn serve --http` runs, in a thread; `edge(
    max_sessions=2)` sets `ServeConfig` fields (a free port and no reload unless given)."""
    started: list[ThreadServer] = []

    def start(**changes: Any) -> ThreadServer:
        fields: dict[str, Any] = {"port": free_port(), "reload": False, **changes}
        config = ServeConfig(**fields)
        server = ThreadServer(None, config.port, http_server(registry, store, config))
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


StartProcess = Callable[..., ServerProcess]


@pytest.fixture
def serve_process(tmp_path: Path) -> Iterator[StartProcess]:
    """Start `python -m tallinn serve --http` on a free port; SIGTERM after the test."""
    started: list[ServerProcess] = []

    def start(library: Path, *args: str, env: dict[str, Any] | None = None) -> ServerProcess:
        environment = {"TALLINN_STORE_URL": f"sqlite:///{tmp_path / 'state.db'}", **(env or {})}
        process = ServerProcess(["--library", str(library), *args], environment, free_port())
        started.append(process)
        process.wait_healthy()
        return process

    yield start
    for process in started:
        process.stop()
