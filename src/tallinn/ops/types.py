"""What each consumer of the state store uses of it, as narrow protocols.

A consumer takes the protocol of what it uses, never the whole `Store`: a server that checks
tokens takes a `TokenVerifier`, one that records what it refused an `EventRecorder`, its
readiness probe a `HealthSource`. `Store` satisfies all of them, and so do its parts.
"""

from __future__ import annotations

from typing import Protocol

from tallinn.ops.records import StoreHealth, TokenInfo


class HealthSource(Protocol):
    """Whether the store answers, for /health and /ready; never raises."""

    def ping(self) -> bool: ...

    def health(self) -> StoreHealth: ...

    def close(self) -> None: ...


class TokenVerifier(Protocol):
    """Checks presented tokens: `verify_token` asks the database, `cached_token` memory only."""

    def verify_token(self, token: str) -> str | None: ...

    def cached_token(self, token: str) -> str | None: ...


class TokenAdmin(Protocol):
    """Creates, lists and revokes tokens (`tallinn token`)."""

    def create_token(self, name: str) -> str: ...

    def list_tokens(self) -> list[TokenInfo]: ...

    def revoke_token(self, name: str) -> bool: ...


class EventRecorder(Protocol):
    """Records a security event; `client` and `detail` may come from an attacker."""

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None: ...
