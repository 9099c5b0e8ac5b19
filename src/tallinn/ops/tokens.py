"""API token format, hashing, the short-lived cache of verified tokens, and the verification
every store shares (`TokenChecks`): the same cache, revocation poll and roles whether the rows
are read through SQLAlchemy (`tallinn.ops.token_store`) or the driver alone
(`tallinn.ops.verifier`).

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from tallinn.ops.errors import TokenNameError
from tallinn.ops.records import TokenIdentity

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


# How long a verified token is trusted without asking the database again. A revocation made
# elsewhere (another replica, the CLI) empties the cache sooner: every `REVOCATION_POLL` the
# store asks the database one question for all tokens (how many are revoked, and the latest
# revocation), so revocation takes effect within a second whatever the number of tokens, and
# a busy server asks the database once a second, not once a second per token.
CACHE_TTL = timedelta(minutes=5)
REVOCATION_POLL = timedelta(seconds=1)
# last_used_at is written at most this often per token, to keep verification read-only.
TOUCH_INTERVAL = timedelta(minutes=1)
# Roles remembered by token id; a token's role never changes, so they never go stale.
ROLES_KEPT = 4096


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A row of the `tokens` table, as verification reads it."""

    name: str
    secret_hash: str
    revoked: bool
    last_used_at: datetime | None
    role: str


class TokenChecks:
    """Verification of presented tokens over rows that a subclass reads.

    A subclass says how to read a row (`_find`), mark it used (`_touch`), read a role
    (`_read_role`) and summarise revocations (`_revocation_summary`); each raises `StoreError`
    when the database cannot be asked. Everything else (parsing, hashing, the cache, the
    revocation poll, the roles kept) is here, once.
    """

    def __init__(self, *, clock: Callable[[], datetime], cache_ttl: timedelta = CACHE_TTL,
                 revocation_poll: timedelta = REVOCATION_POLL) -> None:
        self._clock = clock
        self._cache = TokenCache(cache_ttl)
        self._revocation_poll = revocation_poll
        self._revocations: tuple[object, ...] | None = None  # (count, latest) last seen
        self._next_revocation_poll: datetime | None = None  # None: poll at the next check
        self._poll_lock = threading.Lock()
        self._roles: dict[str, str] = {}  # token id: role

    # -- what a subclass reads and writes ---------------------------------------------------

    def _find(self, token_id: str) -> StoredToken | None:
        raise NotImplementedError

    def _touch(self, token_id: str, now: datetime) -> None:
        raise NotImplementedError

    def _read_role(self, token_id: str) -> str:
        raise NotImplementedError

    def _revocation_summary(self) -> tuple[object, ...]:
        raise NotImplementedError

    def _is_closed(self) -> bool:
        raise NotImplementedError

    # -- verification -----------------------------------------------------------------------

    def verify_token(self, token: str) -> str | None:
        """The name of the active token `token`, or None for a wrong, revoked or malformed one.

        Raises `StoreError` when the database cannot be asked: fail closed, answer 503.
        """
        parsed = parse(token) if isinstance(token, str) else None
        if parsed is None:
            return None
        token_id, secret = parsed
        digest = hash_secret(secret)
        now = self._clock()
        self._poll_revocations(now)
        cached = self._cache.get(token_id, digest, now)
        if cached is not None:
            return cached
        row = self._find(token_id)
        if not same_hash(row.secret_hash if row is not None and not row.revoked else None,
                         digest):
            return None
        assert row is not None  # same_hash is False for a missing row
        if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
            self._touch(token_id, now)
        self._cache.put(token_id, row.name, digest, now)
        self._remember_role(token_id, row.role)
        return row.name

    def verify_token_role(self, token: str) -> TokenIdentity | None:
        """The name and role of the active token `token`, or None (as `verify_token`).

        The role is remembered by token id (it never changes), so a token verified from the
        cache costs no query for its role either.
        """
        name = self.verify_token(token)
        if name is None:
            return None
        token_id = token.split("_", 2)[1]  # verify_token parsed it
        role = self._roles.get(token_id)
        if role is None:
            role = self._read_role(token_id)
            self._remember_role(token_id, role)
        return TokenIdentity(name, role)

    def cached_token(self, token: str) -> str | None:
        """The name of `token` if this store verified it less than `CACHE_TTL` ago and no
        revocation poll is due, else None.

        Memory only: never touches the database, never raises, so an event loop may call it
        directly and go to `verify_token` (in a worker thread) only when it answers None.
        None means "not known here", not "invalid".
        """
        parsed = parse(token) if isinstance(token, str) else None
        if parsed is None or self._is_closed():
            return None
        now = self._clock()
        due = self._next_revocation_poll
        if due is None or now >= due:
            return None  # the caller goes to verify_token, which asks about revocations
        token_id, secret = parsed
        return self._cache.get(token_id, hash_secret(secret), now)

    def _remember_role(self, token_id: str, role: str) -> None:
        if len(self._roles) >= ROLES_KEPT:
            self._roles.clear()
        self._roles[token_id] = role

    def _poll_revocations(self, now: datetime) -> None:
        """Every `REVOCATION_POLL`, empty the cache if a token was revoked since the last look.

        One caller asks; the others, arriving meanwhile, go on with the cache as it is.
        """
        due = self._next_revocation_poll
        if due is not None and now < due:
            return
        if not self._poll_lock.acquire(blocking=False):
            return
        try:
            seen = self._revocation_summary()
            if seen != self._revocations:
                self._cache.clear()  # the first look, or a revocation somewhere
            self._revocations = seen
            self._next_revocation_poll = now + self._revocation_poll
        finally:
            self._poll_lock.release()
