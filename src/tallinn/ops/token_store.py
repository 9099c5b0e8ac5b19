"""The store's API tokens: create, list, revoke and verify, with a short-lived cache.

    tokens = TokenStore(database)
    token = tokens.create_token("ci")          # shown once; only its hash is kept
    assert tokens.verify_token(token) == "ci"
    assert tokens.verify_token_role(token) == TokenIdentity("ci", "reader")
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.errors import TokenExistsError
from tallinn.ops.records import TokenIdentity, TokenInfo
from tallinn.ops.schema import tokens
from tallinn.ops.tokens import (
    DEFAULT_ROLE,
    TokenCache,
    check_name,
    check_role,
    generate,
    hash_secret,
    parse,
    same_hash,
)

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


class TokenStore:
    """API tokens in the shared `Database`; `cache_ttl` of zero turns the cache off."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utcnow,
        cache_ttl: timedelta = CACHE_TTL,
        revocation_poll: timedelta = REVOCATION_POLL,
    ) -> None:
        self._db = database
        self._clock = clock
        self._cache = TokenCache(cache_ttl)
        self._revocation_poll = revocation_poll
        self._revocations: tuple[object, ...] | None = None  # (count, latest) last seen
        self._next_revocation_poll: datetime | None = None  # None: poll at the next check
        self._poll_lock = threading.Lock()
        self._roles: dict[str, str] = {}  # token id: role
        database.on_reset(self._cache.clear)

    def create_token(self, name: str, role: str = DEFAULT_ROLE) -> str:
        """Create a token named `name` with `role` and return it; the only time it is visible.

        Raises `TokenExistsError` if an active token has that name, `TokenNameError` for a
        name that is not letters, digits and `. _ @ + -`, `ValueError` for a role not in
        `tallinn.ops.tokens.ROLES`.
        """
        check_name(name)
        check_role(role)
        new = generate()
        try:
            with self._db.transaction("create a token") as connection:
                connection.execute(
                    insert(tokens).values(
                        token_id=new.token_id,
                        name=name,
                        secret_hash=new.secret_hash,
                        created_at=self._clock(),
                        role=role,
                    )
                )
        except IntegrityError:
            # The partial unique index on active names decides, also between racing creators.
            raise TokenExistsError(name) from None
        return new.token

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first; never the secrets."""
        query = select(
            tokens.c.name,
            tokens.c.created_at,
            tokens.c.last_used_at,
            tokens.c.revoked_at,
            tokens.c.token_id,
            tokens.c.role,
        ).order_by(tokens.c.created_at, tokens.c.id)
        with self._db.transaction("list tokens") as connection:
            rows = connection.execute(query).all()
        return [
            TokenInfo(
                name=row.name,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                revoked_at=row.revoked_at,
                token_id=row.token_id,
                role=row.role,
            )
            for row in rows
        ]

    def revoke_token(self, name: str) -> bool:
        """Revoke the active token named `name`; False if there is none.

        This process stops accepting it at once; other processes within `REVOCATION_POLL`.
        """
        statement = (
            update(tokens)
            .where(tokens.c.name == name, tokens.c.revoked_at.is_(None))
            .values(revoked_at=self._clock())
        )
        with self._db.transaction("revoke a token") as connection:
            revoked = connection.execute(statement).rowcount > 0
        self._cache.forget_name(name)
        return revoked

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
        query = select(
            tokens.c.name, tokens.c.secret_hash, tokens.c.revoked_at, tokens.c.last_used_at,
            tokens.c.role,
        ).where(tokens.c.token_id == token_id)
        with self._db.transaction("verify a token") as connection:
            row = connection.execute(query).first()
            stored = row.secret_hash if row is not None and row.revoked_at is None else None
            if not same_hash(stored, digest):
                return None
            assert row is not None  # same_hash is False for a missing row
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_INTERVAL:
                connection.execute(
                    update(tokens).where(tokens.c.token_id == token_id).values(last_used_at=now)
                )
        self._cache.put(token_id, row.name, digest, now)
        self._remember_role(token_id, str(row.role))
        return str(row.name)

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
            with self._db.transaction("read a token's role") as connection:
                role = str(connection.execute(
                    select(tokens.c.role).where(tokens.c.token_id == token_id)).scalar_one())
            self._remember_role(token_id, role)
        return TokenIdentity(name, role)

    def _remember_role(self, token_id: str, role: str) -> None:
        if len(self._roles) >= ROLES_KEPT:
            self._roles.clear()
        self._roles[token_id] = role

    def cached_token(self, token: str) -> str | None:
        """The name of `token` if this store verified it less than `CACHE_TTL` ago and no
        revocation poll is due, else None.

        Memory only: never touches the database, never raises, so an event loop may call it
        directly and go to `verify_token` (in a worker thread) only when it answers None.
        None means "not known here", not "invalid".
        """
        parsed = parse(token) if isinstance(token, str) else None
        if parsed is None or self._db.closed:
            return None
        now = self._clock()
        due = self._next_revocation_poll
        if due is None or now >= due:
            return None  # the caller goes to verify_token, which asks about revocations
        token_id, secret = parsed
        return self._cache.get(token_id, hash_secret(secret), now)

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
            query = select(func.count(), func.max(tokens.c.revoked_at)).where(
                tokens.c.revoked_at.is_not(None))
            with self._db.transaction("check for revoked tokens") as connection:
                seen = tuple(connection.execute(query).one())
            if seen != self._revocations:
                self._cache.clear()  # the first look, or a revocation somewhere
            self._revocations = seen
            self._next_revocation_poll = now + self._revocation_poll
        finally:
            self._poll_lock.release()
