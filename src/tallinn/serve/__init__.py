"""Serve a prompt library over MCP (stdio or streamable HTTP). The only user of `mcp`.

registry = Registry("my-library"); registry.load()
app = build_app(registry, open_store(), ServeConfig(production=True))

The channel follower, the rollout controller, the HTTP app, the load test and the smoke check
are loaded when first used: a server that follows no channel never imports the store parts
they need (SQLAlchemy among them, 11 MB of a server's memory).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tallinn.serve._catalog import Snapshot, UriError, build_snapshot, parse_uri
from tallinn.serve._config import ConfigError, RateLimit, ServeConfig, parse_rate, resolve
from tallinn.serve._events import EventRecorder, LazyStore, StoreLike, UnavailableStore
from tallinn.serve._logging import JsonFormatter, configure_logging
from tallinn.serve._metrics import Metrics
from tallinn.serve._ratelimit import RateLimiter
from tallinn.serve._registry import Outcome, Registry, ReloadResult
from tallinn.serve._run import (
    StoreUnavailable,
    http_server,
    open_state_store,
    serve_http,
    serve_stdio,
    startup_line,
    store_label,
)
from tallinn.serve._server import TallinnServer, build_server

if TYPE_CHECKING:
    from tallinn.serve._control import ControllerStatus, Retention, run_controller
    from tallinn.serve._follow import ChannelFollower, NoRelease, follow_channel
    from tallinn.serve._http import McpGuard, build_app
    from tallinn.serve._loadtest import LoadResult, run_load_test
    from tallinn.serve._smoke import Check, run_smoke

_LAZY = {
    "ChannelFollower": "tallinn.serve._follow",
    "Check": "tallinn.serve._smoke",
    "ControllerStatus": "tallinn.serve._control",
    "LoadResult": "tallinn.serve._loadtest",
    "McpGuard": "tallinn.serve._http",
    "NoRelease": "tallinn.serve._follow",
    "Retention": "tallinn.serve._control",
    "build_app": "tallinn.serve._http",
    "follow_channel": "tallinn.serve._follow",
    "run_controller": "tallinn.serve._control",
    "run_load_test": "tallinn.serve._loadtest",
    "run_smoke": "tallinn.serve._smoke",
}

__all__ = [
    "ChannelFollower",
    "Check",
    "ConfigError",
    "ControllerStatus",
    "EventRecorder",
    "JsonFormatter",
    "LazyStore",
    "LoadResult",
    "McpGuard",
    "Metrics",
    "NoRelease",
    "Outcome",
    "RateLimit",
    "RateLimiter",
    "Registry",
    "ReloadResult",
    "Retention",
    "ServeConfig",
    "Snapshot",
    "StoreLike",
    "StoreUnavailable",
    "TallinnServer",
    "UnavailableStore",
    "UriError",
    "build_app",
    "build_server",
    "build_snapshot",
    "configure_logging",
    "follow_channel",
    "http_server",
    "open_state_store",
    "parse_rate",
    "parse_uri",
    "resolve",
    "run_controller",
    "run_load_test",
    "run_smoke",
    "serve_http",
    "serve_stdio",
    "startup_line",
    "store_label",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tallinn.serve' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
