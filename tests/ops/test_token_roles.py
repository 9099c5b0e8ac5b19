"""Token roles and migration 0005 on real SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import event, inspect

from tallinn.ops import Store, TokenExistsError, migrate, open_store
from tallinn.ops.error_log import ErrorEvent
from tallinn.ops.records import TokenIdentity
from tallinn.ops.tokens import ROLES, role_allows
from tallinn.ops.types import RoleVerifier, TokenVerifier

ERROR_TABLES = {"error_groups", "error_group_releases", "error_samples"}


def test_a_token_carries_its_role(store: Store) -> None:
    """A token made with a role verifies with that name and role; the default is reader."""
    admin = store.create_token("root", role="admin")
    reader = store.create_token("ci")
    assert store.verify_token_role(admin) == TokenIdentity("root", "admin")
    assert store.verify_token_role(reader) == TokenIdentity("ci", "reader")
    assert store.verify_token(admin) == "root"  # the name-only API the server uses is kept
    assert [(t.name, t.role) for t in store.list_tokens()] == [("root", "admin"), ("ci", "reader")]


def test_a_bad_role_is_refused_and_nothing_is_written(store: Store) -> None:
    """A role outside the four is a ValueError, and no token is made."""
    with pytest.raises(ValueError, match="reader, viewer, operator, admin"):
        store.create_token("x", role="root")
    assert store.list_tokens() == []


def test_revoked_or_wrong_tokens_have_no_role(store: Store) -> None:
    """A revoked, unknown or malformed token gets None, not a role."""
    token = store.create_token("ops", role="operator")
    assert store.verify_token_role(token) == TokenIdentity("ops", "operator")
    store.revoke_token("ops")
    assert store.verify_token_role(token) is None
    assert store.verify_token_role("tln_0123456789abcdef_" + "x" * 43) is None
    assert store.verify_token_role("nonsense") is None


def test_a_role_read_once_costs_no_query_again(clocked: Store) -> None:
    """A token verified from the cache gets its role from memory: no statement at all."""
    token = clocked.create_token("viewer-bot", role="viewer")
    assert clocked.verify_token_role(token) == TokenIdentity("viewer-bot", "viewer")
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    event.listen(clocked.engine, "before_cursor_execute", seen)
    try:
        assert clocked.verify_token_role(token) == TokenIdentity("viewer-bot", "viewer")
        assert statements == []
        clocked.tokens._roles.clear()  # as after ROLES_KEPT roles: asked for once again
        assert clocked.verify_token_role(token) == TokenIdentity("viewer-bot", "viewer")
        assert len(statements) == 1
        assert "role" in statements[0]
    finally:
        event.remove(clocked.engine, "before_cursor_execute", seen)


def test_roles_include_the_ones_before_them() -> None:
    """reader < viewer < operator < admin: each role may do what the ones before it may."""
    assert ROLES == ("reader", "viewer", "operator", "admin")
    assert role_allows("admin", "reader")
    assert role_allows("operator", "viewer")
    assert not role_allows("viewer", "operator")
    assert not role_allows("reader", "viewer")
    assert not role_allows("nobody", "reader")
    with pytest.raises(ValueError, match="not 'god'"):
        role_allows("admin", "god")


def test_store_and_token_store_satisfy_the_role_protocol(store: Store) -> None:
    """The server may take either as a RoleVerifier, and still as a TokenVerifier."""
    assert isinstance(store, RoleVerifier)
    assert isinstance(store.tokens, RoleVerifier)
    assert isinstance(store, TokenVerifier)


def test_migration_0005_down_and_up_on_a_store_with_data(store_url: str) -> None:
    """Down to 0004 drops the error tables and the role and keeps every token; up again makes
    the old tokens readers, with one active token per name still enforced."""
    with open_store(store_url) as store:
        store.create_token("ci")
        store.revoke_token("ci")
        active = store.create_token("ci", role="admin")
        store.errors.record([ErrorEvent(store.rollouts.now(), None, "w", "E", "boom")])
        with store.engine.connect() as connection:
            command.downgrade(migrate._config(connection), "0004")
            connection.commit()
        tables = set(inspect(store.engine).get_table_names())
        assert not tables & ERROR_TABLES
        assert "role" not in {c["name"] for c in inspect(store.engine).get_columns("tokens")}
        assert migrate.upgrade(store.engine) == ("0004", migrate.head_revision())
        assert set(inspect(store.engine).get_table_names()) >= ERROR_TABLES
        assert store.errors.groups() == []
    with open_store(store_url) as store:  # a fresh process: nothing remembered
        assert store.verify_token_role(active) == TokenIdentity("ci", "reader")
        assert [(t.active, t.role) for t in store.list_tokens()] == [(False, "reader"),
                                                                     (True, "reader")]
        with pytest.raises(TokenExistsError):
            store.create_token("ci")
