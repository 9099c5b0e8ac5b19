"""`tallinn token` and `tallinn db` through the real CLI app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tallinn.cli import app
from tallinn.ops import open_store
from tallinn.ops.migrate import head_revision

runner = CliRunner()


def tallinn(*args: str) -> Result:
    return runner.invoke(app, list(args))


def test_create_prints_a_token_that_verifies(store_url: str) -> None:
    """stdout holds exactly the token; the warning to keep it safe goes to stderr."""
    result = tallinn("token", "create", "ci", "--store", store_url)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("tln_")
    assert "\n" not in token
    assert "only time" in result.stderr
    assert token not in result.stderr
    with open_store(store_url) as store:
        assert store.verify_token(token) == "ci"


def test_create_twice_is_refused(store_url: str) -> None:
    assert tallinn("token", "create", "ci", "--store", store_url).exit_code == 0
    again = tallinn("token", "create", "ci", "--store", store_url)
    assert again.exit_code == 1
    assert again.stdout == ""
    assert "already exists" in again.stderr


def test_create_with_a_bad_name_is_a_usage_error(store_url: str) -> None:
    result = tallinn("token", "create", "two words", "--store", store_url)
    assert result.exit_code == 2
    assert "invalid token name" in result.stderr


def test_list_json_parses_and_holds_no_secret(store_url: str) -> None:
    """--json gives one object per token with ISO times; secrets never appear."""
    secret = tallinn("token", "create", "ci", "--store", store_url).stdout.strip()
    tallinn("token", "create", "alice", "--store", store_url)
    tallinn("token", "revoke", "alice", "--store", store_url)
    result = tallinn("token", "list", "--json", "--store", store_url)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(t["name"], t["active"]) for t in listed] == [("ci", True), ("alice", False)]
    assert set(listed[0]) == {
        "name",
        "token_id",
        "role",
        "active",
        "created_at",
        "last_used_at",
        "revoked_at",
    }
    assert listed[0]["revoked_at"] is None
    assert listed[1]["revoked_at"].endswith("+00:00")
    assert secret.split("_", 2)[2] not in result.stdout


def test_list_table_names_the_tokens(store_url: str) -> None:
    tallinn("token", "create", "ci", "--store", store_url)
    result = tallinn("token", "list", "--store", store_url)
    assert result.exit_code == 0
    assert "1 token\n" in result.stdout
    assert "ci" in result.stdout
    assert "active" in result.stdout
    assert "never" in result.stdout


def test_revoke_exit_codes(store_url: str) -> None:
    """0 when a token was revoked, 1 when there was none (any more)."""
    token = tallinn("token", "create", "ci", "--store", store_url).stdout.strip()
    first = tallinn("token", "revoke", "ci", "--store", store_url)
    assert first.exit_code == 0
    assert "revoked token 'ci'" in first.stderr
    second = tallinn("token", "revoke", "ci", "--store", store_url)
    assert second.exit_code == 1
    assert "no active token named 'ci'" in second.stderr
    assert tallinn("token", "revoke", "nobody", "--store", store_url).exit_code == 1
    with open_store(store_url) as store:
        assert store.verify_token(token) is None


def test_library_decides_the_default_location(tmp_path: Path) -> None:
    """Without --store, a library keeps its tokens in <library>/.tallinn/state.db."""
    library = tmp_path / "lib"
    library.mkdir()
    token = tallinn("token", "create", "ci", "--library", str(library)).stdout.strip()
    assert (library / ".tallinn" / "state.db").is_file()
    with open_store(library_root=library) as store:
        assert store.verify_token(token) == "ci"


def test_environment_store_url_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLINN_STORE_URL", f"sqlite:///{tmp_path}/env.db")
    assert tallinn("token", "create", "ci").exit_code == 0
    assert (tmp_path / "env.db").is_file()


def test_unreachable_store_is_one_line_and_exit_2() -> None:
    result = tallinn("token", "list", "--store", "postgresql://u:pw@127.0.0.1:1/db")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: state store postgresql+psycopg://u:***@127.0.0.1:1/db")
    assert "cannot open it" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert ":pw@" not in result.stderr


def test_store_failing_after_open_is_exit_2(tmp_path: Path) -> None:
    """A database that breaks mid-command (here: its tables gone) still gives one line."""
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as store, store.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE tokens")
    result = tallinn("token", "list", "--store", url)
    assert result.exit_code == 2
    assert "cannot list tokens" in result.stderr


def test_db_current_and_upgrade(store_url: str) -> None:
    """current is 1 while behind, upgrade brings it to head, then current is 0."""
    behind = tallinn("db", "current", "--json", "--store", store_url)
    assert behind.exit_code == 1
    assert json.loads(behind.stdout)["current"] is None
    upgraded = tallinn("db", "upgrade", "--store", store_url)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from empty to {head_revision()}" in upgraded.stderr
    again = tallinn("db", "upgrade", "--store", store_url)
    assert "up to date" in again.stderr
    current = tallinn("db", "current", "--store", store_url)
    assert current.exit_code == 0
    assert current.stdout == f"current: {head_revision()}\nhead: {head_revision()}\n"


def test_db_current_does_not_create_a_sqlite_file(tmp_path: Path) -> None:
    result = tallinn("db", "current", "--store", f"sqlite:///{tmp_path}/none.db")
    assert result.exit_code == 1
    assert "current: none" in result.stdout
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_db_commands_on_an_unreachable_store(command: str) -> None:
    result = tallinn("db", command, "--store", "postgresql://u@127.0.0.1:1/db")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: state store postgresql+psycopg://u@127.0.0.1:1/db: ")
    assert len(result.stderr.splitlines()) == 1


def test_help_lists_the_subcommands() -> None:
    assert "token" in tallinn("--help").stdout
    assert "create" in tallinn("token", "--help").stdout
    assert "upgrade" in tallinn("db", "--help").stdout


def test_db_upgrade_refuses_a_newer_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    with open_store(url) as store, store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE tallinn_schema_version SET version_num = 'ffff'")
    result = tallinn("db", "upgrade", "--store", url)
    assert result.exit_code == 2
    assert "a newer Tallinn has migrated it" in result.stderr
