"""How a server is configured: command-line options over `[serve]` in tallinn.toml over defaults.

[serve]
rate_limit = "20/s"       # per client: token name, else client IP; "off" disables
burst = 40                # bucket size; default twice the rate
max_body_bytes = 1048576  # larger request bodies get 413
allowed_hosts = ["prompts.example.com"]  # Host headers accepted on /mcp (proxies)
access_log = false        # a log line per HTTP request (off: /metrics counts them)
max_argument_chars = 16384   # one argument value of prompts/get or a tool call, in characters
max_arguments_chars = 65536  # all of a request's argument names and values together
render_threads = 2           # large renders run on worker threads, at most this many at once
max_connections = 2000    # open connections; past it the oldest incomplete one is closed
header_timeout = 10       # seconds to send a request's headers (from connect or the last answer)
body_timeout = 30         # seconds to send a request's body
keep_alive_timeout = 5    # seconds an idle keep-alive connection stays open
backlog = 2048            # connections the kernel queues before the server accepts them
max_requests = 500        # POSTs waiting for their answer; past it, 503 and Retry-After
max_working = 32          # of those, how many the MCP stack works on at once; the rest wait
max_streams = 1000        # open notification/subscription streams; past it, new ones get 503
max_sessions = 1000       # stateful MCP sessions; past it, new sessions get 503
session_idle_timeout = 1800  # seconds before an unused session is closed
heap_check_interval = 5   # seconds between looks at the collector's oldest generation
heap_growth = 0.25        # a full collection once it has grown by this share of the live heap
store_poll = 2            # --from-store: seconds between reads of the channel (also --store-poll)
controller_tick = 5       # --from-store: seconds between the controller's ticks (--controller-tick)
error_retention_days = 30    # --from-store: the leader prunes error groups unseen this long
event_retention_days = 30    # --from-store: the leader prunes security events this old
minute_retention_days = 30   # --from-store: the leader prunes signal minutes this old
hour_retention_days = 400    # --from-store: the leader prunes hourly sums this old
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024
DEFAULT_MAX_BODY = MIB
DEFAULT_PRODUCTION_RATE = "20/s"
# Request size limits: a render's work is bounded by its arguments' size (docs/security.md).
DEFAULT_MAX_ARGUMENT_CHARS = 16 * 1024
DEFAULT_MAX_ARGUMENTS_CHARS = 64 * 1024
DEFAULT_RENDER_THREADS = 2
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_RATE = re.compile(
    r"\s*(?P<count>[0-9]+(?:\.[0-9]+)?)\s*(?:/\s*(?P<unit>s|sec|second|m|min|minute))?\s*"
)
_OFF = frozenset({"off", "none", "0", "false", "no"})


# The network edge (and the store poll and controller tick of --from-store): every bound with
# its default, its type, and its smallest and largest allowed values.
EDGE_DEFAULTS: dict[str, tuple[float, type, float, float]] = {
    "max_connections": (2000, int, 1, math.inf),
    "header_timeout": (10.0, float, 0.1, math.inf),
    "body_timeout": (30.0, float, 0.1, math.inf),
    "keep_alive_timeout": (5.0, float, 0.1, math.inf),
    "backlog": (2048, int, 1, math.inf),
    "max_requests": (500, int, 1, math.inf),
    "max_working": (32, int, 1, math.inf),
    "max_streams": (1000, int, 1, math.inf),
    "max_sessions": (1000, int, 1, math.inf),
    "session_idle_timeout": (1800.0, float, 1.0, math.inf),
    "heap_check_interval": (5.0, float, 0.1, math.inf),
    "heap_growth": (0.25, float, 0.01, math.inf),
    "store_poll": (2.0, float, 0.05, 3600.0),
    "controller_tick": (5.0, float, 0.05, 3600.0),
    "error_retention_days": (30.0, float, 1.0, 36500.0),
    "event_retention_days": (30.0, float, 1.0, 36500.0),
    "minute_retention_days": (30.0, float, 1.0, 36500.0),
    "hour_retention_days": (400.0, float, 1.0, 36500.0),
}


class ConfigError(ValueError):
    """A serve option or `[serve]` value is wrong: `ConfigError("rate limit 'fast': ...")`."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `rate` requests per second on average, up to `burst` at once."""

    rate: float
    burst: float

    def __str__(self) -> str:
        return f"{self.rate:g}/s (burst {self.burst:g})"


def parse_rate(text: str, burst: float | None = None) -> RateLimit | None:
    """Given `"20/s"`, `"600/m"` or `"5"` (per second), return a `RateLimit`; `"off"` is `None`."""
    if text.strip().lower() in _OFF:
        return None
    found = _RATE.fullmatch(text)
    if found is None:
        raise ConfigError(f"rate limit {text!r}: write N/s or N/m, e.g. 20/s, or 'off'")
    count = float(found.group("count"))
    unit = found.group("unit") or "s"
    rate = count / 60 if unit.startswith("m") else count
    if not math.isfinite(rate) or rate <= 0:
        raise ConfigError(f"rate limit {text!r} must be more than zero (or 'off')")
    size = burst if burst is not None else max(1.0, rate * 2)
    if size < 1:
        raise ConfigError(f"burst {size:g} must be at least 1")
    return RateLimit(rate, float(size))


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything `build_app` needs to know besides the library and the store."""

    host: str = "127.0.0.1"
    port: int = 8000
    stateless: bool = False
    production: bool = False
    reload: bool = True
    rate_limit: RateLimit | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    allowed_hosts: tuple[str, ...] = ()
    json_logs: bool = False
    session_idle_timeout: float | None = 30 * 60
    access_log: bool = False
    max_argument_chars: int = DEFAULT_MAX_ARGUMENT_CHARS
    max_arguments_chars: int = DEFAULT_MAX_ARGUMENTS_CHARS
    render_threads: int = DEFAULT_RENDER_THREADS
    max_connections: int = 2000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    backlog: int = 2048
    max_requests: int = 500
    max_working: int = 32
    max_streams: int = 1000
    max_sessions: int = 1000
    heap_check_interval: float = 5.0
    heap_growth: float = 0.25
    store_poll: float = 2.0
    controller_tick: float = 5.0
    error_retention_days: float = 30.0
    event_retention_days: float = 30.0
    minute_retention_days: float = 30.0
    hour_retention_days: float = 400.0

    def host_patterns(self) -> list[str]:
        """Host headers accepted on /mcp: loopback on any port, the bind host, and `allowed_hosts`.

        Given `allowed_hosts=("prompts.example.com",)`, both `prompts.example.com` and
        `prompts.example.com:<port>` are accepted.
        """
        patterns = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
        names = list(self.allowed_hosts)
        if self.host not in ("0.0.0.0", "::", "") and self.host not in LOOPBACK_HOSTS:  # noqa: S104
            names.append(self.host)
        for name in names:
            if name.startswith(("http://", "https://")):
                name = name.split("://", 1)[1].rstrip("/")
            patterns.append(name)
            if not name.endswith(":*") and not re.search(r":[0-9]+$", name):
                patterns.append(f"{name}:*")
        return list(dict.fromkeys(patterns))

    def origin_patterns(self) -> list[str]:
        """Origins accepted on /mcp: the same hosts over http and https."""
        origins: list[str] = []
        for host in self.host_patterns():
            origins += [f"http://{host}", f"https://{host}"]
        return origins


def split_hosts(values: Iterable[str]) -> tuple[str, ...]:
    """Given `["a.example.com, b.example.com", "c"]`, return the three names."""
    names: list[str] = []
    for value in values:
        names += [part.strip() for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(names))


def resolve(
    table: Mapping[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    stateless: bool = False,
    production: bool = False,
    reload: bool = True,
    rate_limit: str | None = None,
    max_body_bytes: int | None = None,
    allowed_hosts: Iterable[str] = (),
    env_allowed_hosts: str = "",
    access_log: bool | None = None,
    edge: Mapping[str, float | None] | None = None,
    store_poll: float | None = None,
    controller_tick: float | None = None,
) -> ServeConfig:
    """Combine options (given) over the library's `[serve]` table over defaults.

    Rate limiting is on by default in production (20/s per client) and off otherwise.
    `edge` holds the command line's network bounds (`{"max_sessions": 200}`); `None` values
    fall through to the table.
    """
    burst = table.get("burst")
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int | float)):
        raise ConfigError(f"[serve] burst must be a number, got {burst!r}")
    rate_text = rate_limit
    if rate_text is None:
        value = table.get("rate_limit")
        if value is not None and not isinstance(value, str | int | float):
            raise ConfigError(f'[serve] rate_limit must be text such as "20/s", got {value!r}')
        rate_text = None if value is None else str(value)
    if rate_text is None:
        rate_text = DEFAULT_PRODUCTION_RATE if production else "off"
    limit = parse_rate(rate_text, None if burst is None else float(burst))

    body = (
        max_body_bytes
        if max_body_bytes is not None
        else table.get("max_body_bytes", DEFAULT_MAX_BODY)
    )
    if isinstance(body, bool) or not isinstance(body, int) or body <= 0:
        raise ConfigError(f"max body size must be a positive number of bytes, got {body!r}")

    hosts_value = table.get("allowed_hosts", [])
    if isinstance(hosts_value, str):
        hosts_value = [hosts_value]
    if not isinstance(hosts_value, list) or not all(isinstance(h, str) for h in hosts_value):
        raise ConfigError("[serve] allowed_hosts must be a list of host names")
    hosts = split_hosts([*allowed_hosts, env_allowed_hosts, *hosts_value])
    if access_log is None:
        access_log = table.get("access_log", False)
        if not isinstance(access_log, bool):
            raise ConfigError(f"[serve] access_log must be true or false, got {access_log!r}")
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is out of range")
    sizes = {
        "max_argument_chars": _positive_whole(
            "max_argument_chars", table.get("max_argument_chars", DEFAULT_MAX_ARGUMENT_CHARS)),
        "max_arguments_chars": _positive_whole(
            "max_arguments_chars", table.get("max_arguments_chars", DEFAULT_MAX_ARGUMENTS_CHARS)),
        "render_threads": _positive_whole(
            "render_threads", table.get("render_threads", DEFAULT_RENDER_THREADS)),
    }
    bounds = edge_bounds(table, {**(edge or {}), "store_poll": store_poll,
                                          "controller_tick": controller_tick})
    if bounds["hour_retention_days"] < bounds["minute_retention_days"]:
        raise ConfigError("[serve] hour_retention_days must be at least minute_retention_days "
                          f"({bounds['minute_retention_days']:g}): charts over days read the "
                          "hourly sums")
    return ServeConfig(
        host=host,
        port=port,
        stateless=stateless,
        production=production,
        reload=reload,
        rate_limit=limit,
        max_body_bytes=body,
        allowed_hosts=hosts,
        json_logs=production,
        access_log=access_log,
        **sizes,
        max_connections=int(bounds["max_connections"]),
        header_timeout=bounds["header_timeout"],
        body_timeout=bounds["body_timeout"],
        keep_alive_timeout=bounds["keep_alive_timeout"],
        backlog=int(bounds["backlog"]),
        max_requests=int(bounds["max_requests"]),
        max_working=int(bounds["max_working"]),
        max_streams=int(bounds["max_streams"]),
        max_sessions=int(bounds["max_sessions"]),
        session_idle_timeout=bounds["session_idle_timeout"],
        heap_check_interval=bounds["heap_check_interval"],
        heap_growth=bounds["heap_growth"],
        store_poll=bounds["store_poll"],
        controller_tick=bounds["controller_tick"],
        error_retention_days=bounds["error_retention_days"],
        event_retention_days=bounds["event_retention_days"],
        minute_retention_days=bounds["minute_retention_days"],
        hour_retention_days=bounds["hour_retention_days"],
    )


def edge_bounds(table: Mapping[str, Any], given: Mapping[str, float | None]) -> dict[str, float]:
    """Given `[serve]` and the options, return every network bound, checked.

    `{"max_sessions": 200}` over `max_sessions = 50` in the table gives 200; a key in neither
    takes its default from `EDGE_DEFAULTS`.
    """
    bounds: dict[str, float] = {}
    for key, (default, kind, smallest, largest) in EDGE_DEFAULTS.items():
        value = given.get(key)
        where = f"--{key.replace('_', '-')}"
        if value is None:
            value, where = table.get(key, default), f"[serve] {key}"
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or (kind is int and not float(value).is_integer()):
            unit = "days" if key.endswith("_days") else "seconds"
            noun = "a whole number" if kind is int else f"a number of {unit}"
            raise ConfigError(f"{where} must be {noun}, got {value!r}")
        if not math.isfinite(value) or value < smallest:
            raise ConfigError(f"{where} must be at least {smallest:g}, got {value!r}")
        if value > largest:
            raise ConfigError(f"{where} must be at most {largest:g}, got {value!r}")
        bounds[key] = float(value)
    return bounds


def _positive_whole(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"[serve] {key} must be a positive whole number, got {value!r}")
    return value
