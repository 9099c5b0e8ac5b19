"""The state store under faults, in this process: a SQLite file deleted or replaced while in use,
a path that cannot exist, a store that is down when opened and answers later, and the bound on
how long a token revoked elsewhere is still accepted."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.ops.conftest import FakeClock
from tests.serve.serve_helpers import wait_until
from typer.testing import CliRunner

from tallinn.cli import app
from tallinn.ops import StoreError, open_store
from tallinn.ops.store import REVOCATION_POLL, Store, connect_store

runner = CliRunner()


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# -- a SQLite file deleted or replaced while in use ----------------------------------------


def test_a_deleted_file_makes_the_store_missing_until_one_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting the SQLite file while in use is noticed (store_missing), tokens fail closed,
    and a store made again at the path (here by the CLI) is used without reopening by hand."""
    path = tmp_path / ".tallinn" / "state.db"
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        old = store.create_token("old")
        assert store.verify_token(old) == "old"
        _remove_sqlite(path)
        with caplog.at_level(logging.WARNING, logger="tallinn.ops"):
            health = store.health()
        assert not health.ok
        assert health.code == "store_missing"
        assert "was deleted while in use" in health.message
        assert any("was deleted while in use" in r.getMessage() for r in caplog.records)
        with pytest.raises(StoreError) as refused:
            store.verify_token(old)
        assert refused.value.code == "store_missing"
        assert not path.exists(), "a store that vanished is not silently made again"

        created = runner.invoke(app, ["token", "create", "new", "--store", url])
        assert created.exit_code == 0, created.output
        new = created.stdout.strip()
        wait_until(lambda: store.health().ok)
        assert store.verify_token(new) == "new"
        assert store.verify_token(old) is None  # the old file's tokens went with it
        assert any("opened it again" in r.getMessage() for r in caplog.records)


def test_an_empty_file_put_at_the_path_gets_the_schema(tmp_path: Path) -> None:
    """An empty file where the store was is migrated when the store reopens, then works."""
    path = tmp_path / "state.db"
    with open_store(f"sqlite:///{path}") as store:
        store.create_token("a")
        _remove_sqlite(path)
        assert store.health().code == "store_missing"
        path.write_bytes(b"")
        wait_until(lambda: store.health().ok)
        token = store.create_token("b")
        assert store.verify_token(token) == "b"
        assert [t.name for t in store.list_tokens()] == ["b"]


def test_a_replaced_file_is_reopened_within_the_check_interval(tmp_path: Path) -> None:
    """A file restored over the store's path (another inode) is the one used from then on."""
    path = tmp_path / "state.db"
    backup = tmp_path / "backup.db"
    with open_store(f"sqlite:///{backup}") as other:
        restored = other.create_token("restored")
    with open_store(f"sqlite:///{path}") as store:
        lost = store.create_token("lost")
        shutil.copy(backup, tmp_path / "incoming.db")
        # As docs/operations.md says: the old file's log and index go first, or SQLite would
        # replay the old log into the restored file.
        _remove_sqlite(path)
        (tmp_path / "incoming.db").replace(path)
        # The next operation after the file check interval sees the other file.
        wait_until(lambda: store.verify_token(restored) == "restored")
        assert store.verify_token(lost) is None
        assert store.health().ok


def test_a_file_that_is_no_database_is_a_clear_error(tmp_path: Path) -> None:
    """Garbage put at the path makes the store unavailable with SQLite's reason, not a crash."""
    path = tmp_path / "state.db"
    with open_store(f"sqlite:///{path}") as store:
        _remove_sqlite(path)
        path.write_bytes(b"this is not a database" * 100)
        health = wait_until(lambda: (h := store.health()).code == "store_unavailable" and h)
        assert "file is not a database" in health.message


# -- paths that cannot exist ------------------------------------------------------------------


def test_a_path_under_a_regular_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """`tallinn token create` with a store under a regular file: one line, exit 2."""
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    url = f"sqlite:///{blocker}/sub/state.db"
    result = runner.invoke(app, ["token", "create", "ci", "--store", url])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: state store {url}: cannot create the folder {blocker}/sub: "
        "a part of the path is a file, not a folder\n"
    )


def test_a_folder_at_the_file_path_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "state.db").mkdir()
    with pytest.raises(StoreError, match="is a folder, not a file") as caught:
        open_store(f"sqlite:///{tmp_path / 'state.db'}")
    assert caught.value.code == "store_path"


# -- down at the start, then back -----------------------------------------------------------


def test_a_store_that_cannot_open_at_first_opens_once_it_can(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """connect_store does not need the database; each use tries again (failing fast in
    between) and the store works as soon as the cause is gone."""
    blocker = tmp_path / "state"
    blocker.write_text("in the way", encoding="utf-8")
    store = connect_store(f"sqlite:///{blocker}/state.db")
    try:
        with caplog.at_level(logging.ERROR, logger="tallinn.ops"):
            first = store.health()
            for _ in range(3):
                with pytest.raises(StoreError) as again:
                    store.create_token("ci")
                assert again.value.code == "store_path"
        assert (first.ok, first.code) == (False, "store_path")
        # One log line for the condition, not one per attempt.
        assert len([r for r in caplog.records if "cannot create the folder" in r.getMessage()]) == 1
        blocker.unlink()
        wait_until(lambda: store.health().ok)
        token = store.create_token("ci")
        assert store.verify_token(token) == "ci"
    finally:
        store.close()


def test_an_unreachable_postgresql_is_not_ready_with_a_code() -> None:
    store = connect_store("postgresql://u:secret@127.0.0.1:1/db")
    try:
        health = store.health()
        assert (health.ok, health.code) == (False, "store_unavailable")
        assert "secret" not in health.message
        with pytest.raises(StoreError):
            store.verify_token("tln_0123456789abcdef_" + "s" * 43)
    finally:
        store.close()
    assert store.health().code == "store_closed"


# -- revocation lag ---------------------------------------------------------------------------


def test_a_token_revoked_in_another_process_is_refused_at_the_next_poll(
    store_url: str, clock: FakeClock
) -> None:
    """A token revoked by another process (the CLI) is still answered from this store's cache
    until its next revocation poll (REVOCATION_POLL on its clock), and refused from then on."""
    with open_store(store_url) as opened:
        store = Store(opened.engine, clock=clock)
        token = store.create_token("ci")
        assert store.verify_token(token) == "ci"
        revoke = subprocess.run(
            [sys.executable, "-m", "tallinn", "token", "revoke", "ci", "--store", store_url],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert revoke.returncode == 0, revoke.stderr
        assert "within 2 s" in revoke.stderr
        assert store.verify_token(token) == "ci"  # cached: the database is not asked
        clock.advance(seconds=REVOCATION_POLL.total_seconds())
        assert store.verify_token(token) is None


def test_the_revocation_poll_is_at_most_one_second() -> None:
    """With the server's one-second guard, a revocation takes effect within 2 s everywhere."""
    assert REVOCATION_POLL.total_seconds() <= 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to drop privileges")
def test_a_folder_without_permission_is_one_line(tmp_path: Path) -> None:
    """A user who may not write the store's folder gets one line naming it, exit 2 (run in a
    child process that drops root to `nobody`, as permissions do not bind root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    import pwd

    nobody = pwd.getpwnam("nobody")
    locked = tmp_path / "locked"
    locked.mkdir()
    tmp_path.chmod(0o755)
    locked.chmod(0o755)  # nobody may enter but not write
    url = f"sqlite:///{locked}/.tallinn/state.db"
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and exits
        try:
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = runner.invoke(app, ["token", "create", "ci", "--store", url])
            os.write(write, json.dumps([result.exit_code, result.stderr]).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        exit_code, stderr = json.loads(pipe.read() or b"[null, null]")
    os.waitpid(child, 0)
    assert exit_code == 2
    assert stderr == (
        f"error: state store {url}: cannot create the folder {locked}/.tallinn: "
        "Permission denied\n"
    )


def test_a_development_server_store_that_cannot_open_yet_is_kept_and_retried(
    tmp_path: Path,
) -> None:
    """The server's opener keeps a store that cannot open yet (not a stand-in that never
    recovers): /ready's health says why, and once the cause is gone it answers."""
    from tallinn.serve import LazyStore, UnavailableStore, open_state_store

    blocker = tmp_path / "blocked"
    blocker.write_text("x", encoding="utf-8")
    store = open_state_store(f"sqlite:///{blocker}/state.db", tmp_path, required=False)
    lazy = LazyStore(lambda: store)
    try:
        assert not isinstance(store, UnavailableStore)
        health = lazy.health()
        assert (health.ok, health.code) == (False, "store_path")
        blocker.unlink()
        wait_until(lambda: lazy.health().ok)
        assert lazy.ping()
    finally:
        lazy.close()
    stand_in = UnavailableStore("nonsense:// is not a store URL")
    assert stand_in.health().code == "store_unavailable"
