"""Plain records the store returns. Times are timezone-aware UTC."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token without its secret, e.g. `TokenInfo("ci", created_at=..., ...)`.

    `token_id` is the public part of the token (`tln_<token_id>_<secret>`), which tells
    apart two tokens that had the same name at different times.
    """

    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    token_id: str = ""
    role: str = "reader"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a verified token is and what it may do: `TokenIdentity("alice", "operator")`."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """Something a client did that the server refused, e.g. `kind="auth_failure"`."""

    id: int
    kind: str
    occurred_at: datetime
    client: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class StoreHealth:
    """Whether the store answers: `StoreHealth(False, "store_missing", "state store ...")`."""

    ok: bool
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class Release:
    """One immutable release of a library, e.g. `Release(id="ab12...", version="3", ...)`.

    `git_commit` and `git_dirty` are None when the library was not in a git work tree; `forced`
    releases went out despite a NO-GO, for the `force_reason` recorded.
    """

    id: str
    seq: int
    version: str
    notes: str
    created_by: str
    created_at: datetime
    git_commit: str | None
    git_dirty: bool | None
    forced: bool
    force_reason: str | None
    files: int

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def label(self) -> str:
        """How messages name it: `3 (ab12cd34ef56)`."""
        return f"{self.version} ({self.short_id})"


@dataclass(frozen=True, slots=True)
class ChannelState:
    """Where a channel points now: `ChannelState("production", release, moved_at, "alice")`."""

    name: str
    release: Release
    moved_at: datetime
    moved_by: str


@dataclass(frozen=True, slots=True)
class ChannelMove:
    """One move of a channel: who moved it, when, why, from which release to which."""

    id: int
    channel: str
    action: str
    from_release: Release | None
    to_release: Release
    actor: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the append-only audit log; `hash` covers it and `prev_hash`."""

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    from_ref: str | None
    to_ref: str | None
    reason: str
    details: str
    prev_hash: str
    hash: str
