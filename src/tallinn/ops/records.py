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

    @property
    def active(self) -> bool:
        return self.revoked_at is None


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
