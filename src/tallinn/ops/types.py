"""What each consumer of the state store uses of it, as narrow protocols.

A consumer takes the protocol of what it uses, never the whole `Store`: a server that checks
tokens takes a `TokenVerifier`, one that records what it refused a `SecurityEventLog`, its
readiness probe a `HealthSource`; the release commands a `ReleaseArchive`, `ChannelPointers`
and an `AuditTrail`; one that checks what a token may do a `RoleVerifier`, and one that flushes
the errors it answered with an `ErrorRecorder`. `Store` satisfies the first four and
`RoleVerifier`, and its parts each the ones they name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tallinn.ops.records import (
    AuditEntry,
    ChannelMove,
    ChannelState,
    Release,
    StoreHealth,
    TokenIdentity,
    TokenInfo,
)

if TYPE_CHECKING:
    from tallinn.ops.audit_log import Verification
    from tallinn.ops.error_events import ErrorEvent


@runtime_checkable
class HealthSource(Protocol):
    """Whether the store answers, for /health and /ready; never raises."""

    def ping(self) -> bool: ...

    def health(self) -> StoreHealth: ...

    def close(self) -> None: ...


@runtime_checkable
class TokenVerifier(Protocol):
    """Checks presented tokens: `verify_token` asks the database, `cached_token` memory only."""

    def verify_token(self, token: str) -> str | None: ...

    def cached_token(self, token: str) -> str | None: ...


@runtime_checkable
class RoleVerifier(Protocol):
    """Checks a presented token and says what it may do: its name and role, or None."""

    def verify_token_role(self, token: str) -> TokenIdentity | None: ...


@runtime_checkable
class TokenAdmin(Protocol):
    """Creates, lists and revokes tokens (`tallinn token`)."""

    def create_token(self, name: str, role: str = ...) -> str: ...

    def list_tokens(self) -> list[TokenInfo]: ...

    def revoke_token(self, name: str) -> bool: ...


@runtime_checkable
class SecurityEventLog(Protocol):
    """Records a security event; `client` and `detail` may come from an attacker."""

    def record_event(self, kind: str, *, client: str | None = None, detail: str = "") -> None: ...


@runtime_checkable
class ErrorRecorder(Protocol):
    """Stores a server's flush of errors in one transaction (`store.errors`)."""

    def record(self, events: Iterable[ErrorEvent]) -> int: ...


@runtime_checkable
class ReleaseArchive(Protocol):
    """Stores releases and reads them back (`store.releases`)."""

    def create(self, files: Mapping[str, bytes], *, actor: str, version: str | None = None,
               notes: str = "", git_commit: str | None = None, git_dirty: bool | None = None,
               report: str | None = None, force_reason: str | None = None) -> Release: ...

    def all(self) -> list[Release]: ...

    def get(self, name: str) -> Release: ...

    def manifest(self, release: str) -> dict[str, str]: ...

    def files(self, release: str) -> dict[str, bytes]: ...

    def report(self, release: str) -> str | None: ...


@runtime_checkable
class ChannelPointers(Protocol):
    """Moves channels between releases and tells their history (`store.channels`)."""

    def current(self, channel: str = ...) -> ChannelState | None: ...

    def all(self) -> list[ChannelState]: ...

    def history(self, channel: str = ...) -> list[ChannelMove]: ...

    def promote(self, release: str, *, channel: str = ..., actor: str,
                reason: str) -> ChannelMove: ...

    def rollback(self, release: str | None = None, *, channel: str = ..., actor: str,
                 reason: str) -> ChannelMove: ...


@runtime_checkable
class AuditTrail(Protocol):
    """Reads and verifies the audit log (`store.audit_log`)."""

    def entries(self, since: datetime | None = None) -> list[AuditEntry]: ...

    def verify(self) -> Verification: ...
