"""Where the store lives and how its connections are set up."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tallinn.ops import StoreError, open_store
from tallinn.ops.engine import default_sqlite_path, make_engine, resolve_url, safe_url
from tallinn.settings import starter_path


def test_default_is_the_library_state_file(tmp_path: Path) -> None:
    """A library keeps its state in <root>/.tallinn/state.db."""
    assert resolve_url(None, tmp_path).database == str(tmp_path / ".tallinn" / "state.db")


@pytest.mark.parametrize("root", [None, "starter"])
def test_default_without_a_library_is_the_current_directory(
    root: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No library, or the bundled starter (inside the package), use ./.tallinn/state.db."""
    monkeypatch.chdir(tmp_path)
    library = starter_path() if root == "starter" else None
    assert default_sqlite_path(library) == tmp_path / ".tallinn" / "state.db"


def test_the_store_reads_no_environment_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment is read at the edge: `resolve_url` takes the URL it is given, and None
    is the library's default file even when TALLINN_STORE_URL is set."""
    monkeypatch.setenv("TALLINN_STORE_URL", f"sqlite:///{tmp_path}/from-env.db")
    assert resolve_url(None, tmp_path / "lib").database == str(
        tmp_path / "lib" / ".tallinn" / "state.db")
    assert resolve_url("sqlite:///given.db", tmp_path).database == "given.db"


def test_the_cli_passes_the_environment_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tallinn token create` with TALLINN_STORE_URL set writes to that store."""
    from typer.testing import CliRunner

    from tallinn.cli import app

    monkeypatch.setenv("TALLINN_STORE_URL", f"sqlite:///{tmp_path}/from-env.db")
    result = CliRunner().invoke(app, ["token", "create", "ci", "-L", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-env.db").is_file()
    assert not (tmp_path / ".tallinn").exists()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given: str, driver: str) -> None:
    assert resolve_url(given).drivername == driver


def test_open_store_creates_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_store with no URL makes <library>/.tallinn/ and the database in it."""
    library = tmp_path / "lib"
    library.mkdir()
    with open_store(library_root=library) as store:
        assert store.ping()
    assert (library / ".tallinn" / "state.db").is_file()
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        assert store.url.endswith(f"{tmp_path}/.tallinn/state.db")


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    """Every pooled SQLite connection gets the pragmas, not just the first."""
    with open_store(f"sqlite:///{tmp_path}/state.db") as store:
        for _ in range(2):
            with store.engine.connect() as connection:
                pragma = connection.exec_driver_sql
                assert pragma("PRAGMA journal_mode").scalar() == "wal"
                assert pragma("PRAGMA foreign_keys").scalar() == 1
                assert pragma("PRAGMA busy_timeout").scalar() == 10_000
                assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_in_memory_sqlite_works_across_threads() -> None:
    """sqlite:// is one shared in-memory database, for quick experiments."""
    import threading

    with open_store("sqlite://") as store:
        token = store.create_token("ci")
        seen: list[str | None] = []
        thread = threading.Thread(target=lambda: seen.append(store.verify_token(token)))
        thread.start()
        thread.join(timeout=10)
        assert seen == ["ci"]


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_unusable_url_is_a_store_error(url: str) -> None:
    with pytest.raises(StoreError):
        make_engine(resolve_url(url))


def test_unreachable_postgresql_is_a_store_error() -> None:
    """open_store fails with one line naming the URL without its password."""
    expected = r"state store postgresql\+psycopg://u:\*\*\*@.*: cannot open it"
    with pytest.raises(StoreError, match=expected) as e:
        open_store("postgresql://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(e.value)


def test_safe_url_hides_passwords() -> None:
    assert safe_url("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
    assert safe_url("::") == "<invalid URL>"


def test_engine_runs_sql(tmp_path: Path) -> None:
    """An engine touches nothing on disk until its first connection, which makes the file."""
    engine = make_engine(resolve_url(f"sqlite:///{tmp_path}/state.db"))
    assert not (tmp_path / "state.db").exists()
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert (tmp_path / "state.db").exists()
