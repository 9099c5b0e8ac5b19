"""Prometheus metrics of one server, in a registry of its own (never the process-global one).

Each `build_app` gets its own `Metrics`, so two servers in one process (tests, benchmarks)
never share counters.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from tallinn.library import Library

# Label values come from a closed set, so an attacker cannot grow the label space.
KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "prompts/list",
        "prompts/get",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "tools/list",
        "tools/call",
        "completion/complete",
        "subscriptions/listen",
    }
)
SECURITY_KINDS = frozenset(
    {
        "auth_failure",
        "rate_limited",
        "request_too_large",
        "path_traversal",
        "invalid_host",
        "invalid_origin",
    }
)
# Why the server closed a connection before it sent a whole request.
DROP_REASONS = ("header_timeout", "body_timeout", "over_capacity")
SATISFIED = 4  # stars from which a rating counts as satisfied
FOLDER = "folder"  # the `release` label of a library served from a folder
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The counters, gauges and histogram `/metrics` exposes."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "tallinn_mcp_requests",
            "MCP requests by method, prompt, outcome, and the release and channel that "
            "answered.",
            ["method", "prompt", "outcome", "release", "channel"],
            registry=r,
        )
        self.latency = Histogram(
            "tallinn_mcp_request_duration_seconds",
            "Time to answer an MCP request, by method and the release that answered.",
            ["method", "release", "channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.release_info = Gauge(
            "tallinn_release_info",
            "The releases served now: 1 for each, by channel and role (stable, candidate).",
            ["channel", "role", "release", "id"],
            registry=r,
        )
        self.rollout_phase = Gauge(
            "tallinn_rollout_phase",
            "1 for the phase of the rollout under way on the channel served (running, "
            "paused); none outside a rollout.",
            ["channel", "phase"],
            registry=r,
        )
        self.rollout_share = Gauge(
            "tallinn_rollout_share",
            "The candidate's share of clients on the channel served, in percent (0 outside "
            "a rollout).",
            ["channel"],
            registry=r,
        )
        self.ratings = Counter(
            "tallinn_ratings",
            "Ratings given with rate_prompt, by the release rated and whether the client was "
            "satisfied (4 or 5 stars).",
            ["release", "channel", "satisfied"],
            registry=r,
        )
        self.ready = Gauge(
            "tallinn_ready",
            "1 when the server is ready (as /ready says, the store as last checked), else 0.",
            registry=r,
        )
        counter = partial(Counter, registry=r)
        gauge = partial(Gauge, registry=r)
        self.commands = gauge("tallinn_library_commands", "Commands being served.")
        self.components = gauge("tallinn_library_components", "Components being served.")
        self.reloads = counter(
            "tallinn_library_reloads", "Library reloads that replaced the served library."
        )
        self.reload_failures = counter(
            "tallinn_library_reload_failures", "Reloads refused because the new library had errors."
        )
        self.auth_failures = counter(
            "tallinn_auth_failures", "Requests to /mcp without a valid bearer token."
        )
        self.rate_limited = counter(
            "tallinn_rate_limited", "Requests refused by the per-client rate limit."
        )
        self.security_events = counter(
            "tallinn_security_events", "Security events by kind.", ["kind"]
        )
        for kind in sorted(SECURITY_KINDS):
            self.security_events.labels(kind)
        self.dropped = counter(
            "tallinn_connections_dropped",
            "Connections closed by the server before a whole request arrived, by reason.",
            ["reason"],
        )
        self._dropped = {reason: self.dropped.labels(reason) for reason in DROP_REASONS}
        self.sessions = gauge("tallinn_mcp_sessions", "Stateful MCP sessions open now.")
        self.shed = counter(
            "tallinn_mcp_shed",
            "Requests answered 503 because max_requests or max_streams were reached.",
        )
        self.streams = gauge(
            "tallinn_mcp_streams", "Notification and subscription streams open now."
        )
        self.duplicate_ids = counter(
            "tallinn_mcp_duplicate_ids",
            "Requests refused because their id was already in flight on the session.",
        )
        # (method, prompt, outcome) -> its counter and histogram: `labels()` takes a lock and
        # checks its arguments on every call. The keys are label values, a closed set.
        self._children: dict[tuple[str, str, str, str, str], tuple[Any, Any]] = {}

    def observe_request(self, method: str, prompt: str, outcome: str, seconds: float,
                        release: str = FOLDER, channel: str = "") -> None:
        label = method if method in KNOWN_METHODS else "other"
        key = (label, prompt, outcome, release, channel)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(*key), self.latency.labels(label, release, channel))
            self._children[key] = children
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)

    def releases_served(self, channel: str, stable: tuple[str, str] | None,
                        candidate: tuple[str, str] | None = None) -> None:
        """The (version, id) of the releases served now. The series of releases no longer
        served are removed, so the `release` label holds at most the releases of the last
        move and of this one, however many releases a server lives through."""
        self.release_info.clear()
        keep = {FOLDER}
        for role, served in (("stable", stable), ("candidate", candidate)):
            if served is not None:
                self.release_info.labels(channel, role, served[0], served[1]).set(1)
                keep.add(served[0])
        for labels in [labels for labels in self._rated() if labels[0] not in keep]:
            self.ratings.remove(*labels)
        for key in [key for key in self._children if key[3] not in keep]:
            del self._children[key]
            with contextlib.suppress(KeyError):
                self.requests.remove(*key)
            with contextlib.suppress(KeyError):
                self.latency.remove(key[0], key[3], key[4])

    def rated(self, release: str, channel: str, stars: int) -> None:
        self.ratings.labels(release, channel, "true" if stars >= SATISFIED else "false").inc()

    def rollout_state(self, channel: str, phase: str | None, share: int) -> None:
        """The rollout under way on `channel` (phase None: none)."""
        self.rollout_phase.clear()
        if phase is not None:
            self.rollout_phase.labels(channel, phase).set(1)
        self.rollout_share.labels(channel).set(share)

    def _rated(self) -> list[tuple[str, str, str]]:
        """The label values of the ratings series there are."""
        return [(sample.labels["release"], sample.labels["channel"], sample.labels["satisfied"])
                for family in self.ratings.collect() for sample in family.samples
                if sample.name.endswith("_total")]

    def library_loaded(self, library: Library) -> None:
        self.commands.set(len(library.commands))
        self.components.set(len(library.components))

    def security_event(self, kind: str) -> None:
        self.security_events.labels(kind if kind in SECURITY_KINDS else "other").inc()
        if kind == "auth_failure":
            self.auth_failures.inc()
        elif kind == "rate_limited":
            self.rate_limited.inc()

    def connection_dropped(self, reason: str) -> None:
        self._dropped[reason].inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
