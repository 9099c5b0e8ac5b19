"""The store's API tokens: create, list, revoke and verify, with a short-lived cache.

    tokens = TokenStore(database)
    token = tokens.create_token("ci")          # shown once; only its hash is kept
    assert tokens.verify_token(token) == "ci"
    assert tokens.verify_token_role(token) == TokenIdentity("ci", "reader")
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.errors import TokenExistsError
from tallinn.ops.records import TokenInfo
from tallinn.ops.schema import tokens
from tallinn.ops.tokens import (
    CACHE_TTL,
    DEFAULT_ROLE,
    REVOCATION_POLL,
    ROLES_KEPT,
    TOUCH_INTERVAL,
    StoredToken,
    TokenChecks,
    check_name,
    check_role,
    generate,
)

__all__ = ["CACHE_TTL", "REVOCATION_POLL", "ROLES_KEPT", "TOUCH_INTERVAL", "TokenStore"]


class TokenStore(TokenChecks):
    """API tokens in the shared `Database`; `cache_ttl` of zero turns the cache off.

    Verification (`verify_token`, `verify_token_role`, `cached_token`) is `TokenChecks`'s,
    over rows read here with SQLAlchemy.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = utcnow,
        cache_ttl: timedelta = CACHE_TTL,
        revocation_poll: timedelta = REVOCATION_POLL,
    ) -> None:
        super().__init__(clock=clock, cache_ttl=cache_ttl, revocation_poll=revocation_poll)
        self._db = database
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

    # -- the rows verification reads (see `TokenChecks`) -------------------------------------

    def _find(self, token_id: str) -> StoredToken | None:
        query = select(
            tokens.c.name, tokens.c.secret_hash, tokens.c.revoked_at, tokens.c.last_used_at,
            tokens.c.role,
        ).where(tokens.c.token_id == token_id)
        with self._db.transaction("verify a token") as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return StoredToken(str(row.name), str(row.secret_hash), row.revoked_at is not None,
                           row.last_used_at, str(row.role))

    def _touch(self, token_id: str, now: datetime) -> None:
        with self._db.transaction("verify a token") as connection:
            connection.execute(
                update(tokens).where(tokens.c.token_id == token_id).values(last_used_at=now))

    def _read_role(self, token_id: str) -> str:
        with self._db.transaction("read a token's role") as connection:
            return str(connection.execute(
                select(tokens.c.role).where(tokens.c.token_id == token_id)).scalar_one())

    def _revocation_summary(self) -> tuple[object, ...]:
        query = select(func.count(), func.max(tokens.c.revoked_at)).where(
            tokens.c.revoked_at.is_not(None))
        with self._db.transaction("check for revoked tokens") as connection:
            return tuple(connection.execute(query).one())

    def _is_closed(self) -> bool:
        return self._db.closed
