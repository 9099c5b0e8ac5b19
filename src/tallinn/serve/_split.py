"""Which release answers each client: the stable one, or during a rollout the candidate.

    serving = Serving(registry)                  # every client: the registry's snapshot
    served = serving.pick(ctx)                   # -> Served(snapshot, release)
    await serving.set_split(Split("r4", 10, candidate_snapshot, "ab12...", "2"))

Outside a rollout every request is answered from `registry` and nothing about the client is
looked at. During one, a request's client is identified (`identity_of`: its token's name, else
its `X-Tallinn-Client` header, else its MCP client info with its address) and hashed with the
rollout's id into a bucket (`tallinn.ops.rollout.assign`): below the split's share, the client
is answered from the candidate's snapshot, else from the stable one. Every handler of one
request answers from the one `Served` picked for it, so prompts/list, prompts/get, resources
and tools agree. When the split changes, the listeners (the server's notifier) are told, so a
connected client that moved to the other release gets list_changed.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mcp.server import ServerRequestContext
from mcp.server.connection import Connection

from tallinn.ops.rollout.assign import ClientIdentity, client_identity, on_candidate
from tallinn.ops.rollout.signals import SignalAggregator
from tallinn.serve._catalog import Snapshot
from tallinn.serve._logging import ServedContext
from tallinn.serve._registry import Registry

if TYPE_CHECKING:
    from tallinn.serve._failures import ErrorBuffer

log = logging.getLogger("tallinn.serve")

CLIENT_KEY = "tallinn.client"  # set in the ASGI scope by the HTTP guard: token:NAME or ip:ADDR
HEADER_KEY = "tallinn.client_header"  # the checked X-Tallinn-Client header, when one was sent
TOKEN_PREFIX = "token:"  # noqa: S105 (a label, not a secret)
ADDRESS_PREFIX = "ip:"


@dataclass(slots=True)
class Served:
    """What answers one request: a snapshot, and the id of the release it is (None when the
    library is a folder). A handler sets `fault` when the request failed by the release's own
    fault (a command that could not be rendered), for the release's error rate."""

    snapshot: Snapshot
    release: str | None
    version: str = "folder"
    fault: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Split:
    """A rollout's split: clients whose bucket in rollout `key` is below `share` get
    `candidate` (release `candidate_release`, shown as `candidate_label`)."""

    key: str
    share: int
    candidate: Snapshot
    candidate_release: str
    candidate_label: str
    candidate_version: str


class Ratings(Protocol):
    """Where `rate_prompt` records a rating (the store's rollouts part)."""

    def rate(self, release_id: str, prompt: str, rating: object, *, client: str,
             comment: str | None = None) -> None: ...


MoveListener = Callable[["Split | None", "Split | None"], Awaitable[None]]

_SERVED: contextvars.ContextVar[Served | None] = contextvars.ContextVar(
    "tallinn_served", default=None)


def identity_of(ctx: ServerRequestContext[Any, Any]) -> ClientIdentity:
    """Who sent the request, for its bucket (see `tallinn.ops.rollout.assign`)."""
    token = header = address = None
    scope = getattr(ctx.request, "scope", None)
    if isinstance(scope, dict):
        client = str(scope.get(CLIENT_KEY) or "")
        if client.startswith(TOKEN_PREFIX):
            token = client[len(TOKEN_PREFIX):]
        header = scope.get(HEADER_KEY)
        found = scope.get("client")
        address = str(found[0]) if found else None
    name = version = None
    connection = getattr(ctx.session, "_connection", None)
    params = connection.client_params if isinstance(connection, Connection) else None
    if params is not None:
        name, version = params.client_info.name, params.client_info.version
    return client_identity(token_name=token, header=header, client_name=name,
                           client_version=version, address=address)


def assigned(split: Split | None, identity: ClientIdentity | str) -> bool:
    """Whether `identity` gets the candidate under `split`."""
    return split is not None and on_candidate(split.key, identity, split.share)


class Serving:
    """The registry of the stable release, and the split of a rollout when one runs.

    `stable_release` is the id of the release the registry serves (None for a folder);
    `signals` counts each release's requests when the server follows the store, and
    `ratings` records `rate_prompt` calls (the tool is offered only when it is set).
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.stable_release: str | None = None
        self.stable_label: str | None = None
        self.stable_version = "folder"
        self.channel = ""
        self.split: Split | None = None
        self.signals: SignalAggregator | None = None
        self.ratings: Ratings | None = None
        self.errors: ErrorBuffer | None = None  # failed requests, when a store keeps them
        self._listeners: list[MoveListener] = []

    def subscribe(self, listener: MoveListener) -> None:
        """Call `listener(before, after)` after every change of the split."""
        self._listeners.append(listener)

    def pick(self, ctx: ServerRequestContext[Any, Any]) -> Served:
        """The release that answers the request of `ctx`: the candidate for the clients the
        split gives it to, else the stable one."""
        split = self.split
        if split is not None and assigned(split, identity_of(ctx)):
            return Served(split.candidate, split.candidate_release, split.candidate_version)
        return Served(self.registry.snapshot(), self.stable_release, self.stable_version)

    def enter(self, ctx: ServerRequestContext[Any, Any]) -> tuple[Served, contextvars.Token[
            Served | None]]:
        """Pick the release for the request of `ctx` and make it the one `served()` gives."""
        choice = self.pick(ctx)
        return choice, _SERVED.set(choice)

    @staticmethod
    def leave(token: contextvars.Token[Served | None]) -> None:
        _SERVED.reset(token)

    def served(self) -> Served:
        """The release picked for the request being answered (the stable one outside one)."""
        choice = _SERVED.get()
        if choice is None:
            return Served(self.registry.snapshot(), self.stable_release, self.stable_version)
        return choice

    def count_releases(self) -> None:
        """Tell the metrics which releases are served now (after any move)."""
        if self.stable_release is None:
            return
        ServedContext.serving = self.stable_version
        split = self.split
        self.registry.metrics.releases_served(
            self.channel, (self.stable_version, self.stable_release),
            None if split is None else (split.candidate_version, split.candidate_release))

    async def set_split(self, split: Split | None) -> None:
        """Serve `split` from now on (None: every client gets the stable release)."""
        before = self.split
        if _shape(before) == _shape(split):
            return
        self.split = split
        self.count_releases()
        for listener in list(self._listeners):
            try:
                await listener(before, split)
            except Exception:
                log.exception("split listener failed")


def _shape(split: Split | None) -> tuple[str, int, str] | None:
    return None if split is None else (split.key, split.share, split.candidate_release)
