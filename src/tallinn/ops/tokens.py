"""API token format, hashing and the short-lived cache of verified tokens.

A token reads `tln_<token_id>_<secret>`: `token_id` is 16 hex digits, stored in clear to find the
row; `secret` is `secrets.token_urlsafe(32)` (256 random bits), stored only as its SHA-256.
A fast hash is the right one here: a slow password hash protects guessable passwords, and
nobody can guess 256 random bits, while the server verifies a token on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from tallinn.ops.errors import TokenNameError

PREFIX = "tln"
ID_BYTES = 8
SECRET_BYTES = 32
NAME_MAX = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")
_ID = re.compile(r"[0-9a-f]{16}")
_SECRET = re.compile(r"[A-Za-z0-9_-]{16,128}")
# Compared against when no row matches, so unknown ids cost the same comparison as known ones.
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly generated token: `token` is shown once, the rest is stored."""

    token: str
    token_id: str
    secret_hash: str


def generate() -> NewToken:
    token_id = secrets.token_hex(ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return NewToken(f"{PREFIX}_{token_id}_{secret}", token_id, hash_secret(secret))


def parse(token: str) -> tuple[str, str] | None:
    """Given `tln_0123456789abcdef_s3cr3t...`, return `("0123456789abcdef", "s3cr3t...")`.

    Anything else, including a token with surrounding blanks, is `None`.
    """
    prefix, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if prefix != PREFIX or not _ID.fullmatch(token_id) or not _SECRET.fullmatch(secret):
        return None
    return token_id, secret


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def same_hash(expected: str | None, actual: str) -> bool:
    """Constant-time comparison of two hex digests; `None` never matches."""
    return hmac.compare_digest(expected or _DUMMY_HASH, actual) and expected is not None


def check_name(name: str) -> str:
    """Return `name` if it is a usable token name, e.g. `ci-bot` or `alice@laptop`."""
    if not name:
        raise TokenNameError(name, "it is empty")
    if len(name) > NAME_MAX:
        raise TokenNameError(name, f"longer than {NAME_MAX} characters")
    if not _NAME.fullmatch(name):
        raise TokenNameError(
            name, "use letters, digits and . _ @ + - (starting with a letter or digit)"
        )
    return name


# What a token may do, each role including the ones before it: `reader` reads prompts over
# MCP, `viewer` also the dashboard, `operator` also acts on rollouts, `admin` also on tokens.
ROLES = ("reader", "viewer", "operator", "admin")
DEFAULT_ROLE = "reader"


def check_role(role: str) -> str:
    """Return `role` if it is one of `ROLES`; anything else is a `ValueError`."""
    if role not in ROLES:
        raise ValueError(f"a token's role is one of {', '.join(ROLES)}, not {role!r}")
    return role


def role_allows(role: str, needed: str) -> bool:
    """Whether a token of `role` may do what `needed` may: `role_allows("admin", "viewer")`."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(check_role(needed))


@dataclass(slots=True)
class _Entry:
    name: str
    secret_hash: str
    expires: datetime


class TokenCache:
    """Verified tokens, remembered for `ttl` so most requests skip the database.

    A token revoked through this process is forgotten at once; one revoked by another process
    (another replica, the CLI) is still accepted here until its entry expires, at most `ttl`.
    """

    def __init__(self, ttl: timedelta, max_entries: int = 4096) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def get(self, token_id: str, secret_hash: str, now: datetime) -> str | None:
        """The token's name if it was verified less than `ttl` ago with this very secret."""
        if self.ttl <= timedelta(0):
            return None
        with self._lock:
            entry = self._entries.get(token_id)
            if entry is None:
                return None
            if entry.expires <= now:
                del self._entries[token_id]
                return None
        return entry.name if same_hash(entry.secret_hash, secret_hash) else None

    def put(self, token_id: str, name: str, secret_hash: str, now: datetime) -> None:
        if self.ttl <= timedelta(0):
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
                if len(self._entries) >= self.max_entries:
                    self._entries.clear()
            self._entries[token_id] = _Entry(name, secret_hash, now + self.ttl)

    def forget_name(self, name: str) -> None:
        with self._lock:
            self._entries = {k: e for k, e in self._entries.items() if e.name != name}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
