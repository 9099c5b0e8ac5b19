"""`tallinn release`, `promote`, `rollback`, `channel` and `audit-log` through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from tests.helpers import write_files
from typer.testing import CliRunner, Result

from tallinn.cli import app
from tallinn.ops.schema import audit_log, blobs, channel_history, release_files, releases
from tallinn.ops.store import open_store

runner = CliRunner()

HELLO = """\
---
description: Say hello to someone
argument-hint: "<name>"
arguments:
  - {name: name, description: Who to greet, required: true}
examples:
  - {description: Greet Ada, args: {name: Ada}}
---
Hello, {{name}}.
"""
HELLO_TEST = """\
tests:
- description: greets by name
  command: hello
  vars: {name: Ada}
  assert:
  - type: contains
    value: Hello, Ada.
"""


@pytest.fixture(autouse=True)
def actor(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TALLINN_ACTOR", "alice@ci")
    return "alice@ci"


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A one-command library that passes every gate."""
    return write_files(tmp_path / "lib", {
        "tallinn.toml": '[library]\nname = "mini"\n',
        "README.md": "# mini\n",
        "commands/a/hello.md": HELLO,
        "tests/hello.yaml": HELLO_TEST,
    })


class Tallinn:
    """The CLI against one library and one store."""

    def __init__(self, library: Path, store_url: str) -> None:
        self.library, self.store_url = library, store_url

    def __call__(self, *args: str) -> Result:
        return runner.invoke(app, [*args, "--library", str(self.library),
                                   "--store", self.store_url])

    def rows(self) -> dict[str, int]:
        with open_store(self.store_url) as store, store.engine.connect() as connection:
            return {t.name: connection.execute(select(func.count()).select_from(t))
                    .scalar_one() for t in (blobs, releases, release_files, channel_history,
                                            audit_log)}


@pytest.fixture
def tallinn(library: Path, store_url: str) -> Tallinn:
    return Tallinn(library, store_url)


def released(tallinn: Tallinn, *args: str) -> str:
    result = tallinn("release", "create", *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def component(text: str) -> str:
    return f"---\ndescription: The {text} part of every greeting, kept short\n---\n{text}\n"


def digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and ".tallinn" not in p.parts}


def test_create_gates_and_stores_the_library(tallinn: Tallinn, library: Path) -> None:
    """A GO library becomes release 1, made by $TALLINN_ACTOR, its verdict kept with it."""
    assert released(tallinn, "--notes", "first") == "1"
    shown = json.loads(tallinn("release", "show", "1", "--json").stdout)
    assert shown["created_by"] == "alice@ci"
    assert shown["verdict"] == "GO"
    assert shown["notes"] == "first"
    assert (shown["git_commit"], shown["git_dirty"], shown["forced"]) == (None, None, False)
    assert sorted(shown["files"]) == ["README.md", "commands/a/hello.md", "tallinn.toml",
                                      "tests/hello.yaml"]
    listed = json.loads(tallinn("release", "list", "--json").stdout)
    assert [(r["version"], r["id"]) for r in listed] == [("1", shown["id"])]


def test_a_no_go_library_is_refused_unless_forced_with_a_reason(tallinn: Tallinn,
                                                                 library: Path) -> None:
    """NO-GO exits 1 with its reasons; --force needs a reason, which is then recorded."""
    (library / "tests" / "hello.yaml").unlink()
    refused = tallinn("release", "create")
    assert refused.exit_code == 1
    assert "tests FAILED" in refused.stderr
    assert "not released" in refused.stderr
    for args in (["--force"], ["--force", "--reason", "  "], ["--reason", "why"]):
        bad = tallinn("release", "create", *args)
        assert bad.exit_code == 2, bad.output
        assert "--reason" in bad.stderr
    assert tallinn.rows() == dict.fromkeys(tallinn.rows(), 0)
    assert released(tallinn, "--force", "--reason", "tests gate rewritten next week") == "1"
    shown = json.loads(tallinn("release", "show", "1", "--json").stdout)
    assert (shown["forced"], shown["force_reason"], shown["verdict"]) == (
        True, "tests gate rewritten next week", "NO-GO")
    listed = tallinn("release", "list")
    assert listed.exit_code == 0, listed.output
    assert "FORCED" in listed.stdout
    assert "forced:    tests gate rewritten next week" in tallinn("release", "show", "1").stdout


def test_bad_releases_are_one_line_exit_2_and_write_nothing(tallinn: Tallinn,
                                                            library: Path) -> None:
    """The same content again, a taken version, a bad version: refused before the gates run,
    nothing written."""
    released(tallinn, "--version", "1.0.0")
    before = tallinn.rows()
    again = tallinn("release", "create")
    assert again.exit_code == 2
    assert "release 1.0.0 (" in again.stderr
    assert "already holds this content" in again.stderr
    assert "quality gates" not in again.stderr
    (library / "README.md").write_text("# mini, changed\n")
    taken = tallinn("release", "create", "--version", "1.0.0")
    assert taken.exit_code == 2
    assert "version 1.0.0 exists already" in taken.stderr
    assert "quality gates" not in taken.stderr
    invalid = tallinn("release", "create", "--version", "latest")
    assert invalid.exit_code == 2
    assert "invalid version 'latest'" in invalid.stderr
    assert tallinn.rows() == before


def test_unknown_releases_and_channels_are_one_line_exit_2(tallinn: Tallinn) -> None:
    """Naming a release or channel that does not exist writes nothing and says so."""
    released(tallinn)
    before = tallinn.rows()
    for args, message in (
        (["release", "show", "9"], "no release '9'"),
        (["promote", "9", "--reason", "x"], "no release '9'"),
        (["promote", "1", "--reason", ""], "must say why"),
        (["rollback", "--reason", "x"], "channel production has no release yet"),
        (["channel", "history", "Bad_Name"], "invalid channel name"),
        (["release", "diff", "1", "abcdef"], "no release 'abcdef'"),
    ):
        result = tallinn(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert tallinn.rows() == before


def test_checkout_writes_the_files_back_byte_for_byte(tallinn: Tallinn, library: Path,
                                                      tmp_path: Path) -> None:
    """Every file checked out has the hash it had when released; a full DIR needs --force."""
    (library / "components" / "tone.md").parent.mkdir()
    (library / "components" / "tone.md").write_bytes(
        b"---\r\ndescription: The tone of voice every answer keeps\r\n---\r\n"
        b"Be kind.\r\nAlways.\r\n")
    released(tallinn)
    expected = digests(library)
    out = tmp_path / "out"
    assert tallinn("release", "checkout", "1", "--out", str(out)).exit_code == 0
    assert digests(out) == expected
    full = tallinn("release", "checkout", "1", "--out", str(out))
    assert full.exit_code == 2
    assert "not empty" in full.stderr
    (out / "stray.txt").write_text("left over")
    assert tallinn("release", "checkout", "1", "--out", str(out), "--force").exit_code == 0
    assert digests(out) == expected
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_a_release_leaves_out_dot_files_and_the_state_store(tmp_path: Path,
                                                           library: Path) -> None:
    """.git, .tallinn (where the default store lives) and dot files are never released."""
    (library / "commands" / ".draft.md").write_text(HELLO)
    (library / ".env").write_text("SECRET=1")
    store = f"sqlite:///{library / '.tallinn' / 'state.db'}"
    tallinn = Tallinn(library, store)
    released(tallinn)
    shown = json.loads(tallinn("release", "show", "1", "--json").stdout)
    assert not [p for p in shown["files"] if "/." in f"/{p}"]


def test_a_file_that_cannot_be_read_stops_the_release(tallinn: Tallinn, library: Path) -> None:
    """A FIFO among the commands is named with its path; nothing is written."""
    os.mkfifo(library / "commands" / "a" / "pipe.md")
    result = tallinn("release", "create")
    assert result.exit_code == 2
    assert "commands/a/pipe.md:" in result.stderr
    assert tallinn.rows() == dict.fromkeys(tallinn.rows(), 0)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_git_commit_and_dirty_state_are_recorded(tallinn: Tallinn, library: Path) -> None:
    """Inside git a release records HEAD, and whether the library had changes not committed."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(library), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "add", ".")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x")
    released(tallinn)
    (library / "README.md").write_text("# changed\n")
    released(tallinn)
    head = git("rev-parse", "HEAD")
    listed = json.loads(tallinn("release", "list", "--json").stdout)
    assert [(r["git_commit"], r["git_dirty"]) for r in listed] == [(head, True), (head, False)]


def test_diff_names_commands_and_components_and_shows_text(tallinn: Tallinn,
                                                           library: Path) -> None:
    """Added, removed and changed commands and components by name; --text a unified diff."""
    (library / "components").mkdir()
    (library / "components" / "old.md").write_text(component("old"))
    released(tallinn)
    (library / "components" / "old.md").unlink()
    (library / "components" / "new.md").write_text(component("new"))
    hello = library / "commands" / "a" / "hello.md"
    hello.write_text(hello.read_text().replace("Hello,", "Good day,"))
    (library / "tests" / "hello.yaml").write_text(HELLO_TEST.replace("Hello,", "Good day,"))
    released(tallinn)
    found = json.loads(tallinn("release", "diff", "1", "2", "--json").stdout)
    assert found["commands"] == {"added": [], "removed": [], "changed": ["hello"]}
    assert found["components"] == {"added": ["new"], "removed": ["old"], "changed": []}
    assert found["files"]["changed"] == ["tests/hello.yaml"]
    text = tallinn("release", "diff", "1", "2", "--text")
    assert text.exit_code == 0
    assert "~ command hello" in text.stdout
    assert "+ component new" in text.stdout
    assert "-Hello, {{name}}." in text.stdout
    assert "+Good day, {{name}}." in text.stdout
    assert "--- 1/components/old.md" in text.stdout


def test_gates_release_gates_the_release_as_it_was(tallinn: Tallinn, library: Path) -> None:
    """A release made GO stays GO under `gates --release` after the folder went NO-GO."""
    released(tallinn)
    (library / "tests" / "hello.yaml").unlink()
    assert tallinn("gates").exit_code == 1
    again = tallinn("gates", "--release", "1", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["decision"]["verdict"] == "GO"
    missing = tallinn("gates", "--release", "7")
    assert missing.exit_code == 2
    assert "no release '7'" in missing.stderr


def test_promote_rollback_and_the_channel_history(tallinn: Tallinn, library: Path) -> None:
    """Promotions and rollbacks move production and staging, each move in its history."""
    released(tallinn)
    (library / "README.md").write_text("# two\n")
    released(tallinn)
    assert tallinn("promote", "1", "--reason", "first").exit_code == 0
    assert tallinn("promote", "2", "--reason", "second").exit_code == 0
    assert tallinn("promote", "2", "-c", "staging", "--reason", "try").exit_code == 0
    back = tallinn("rollback", "--reason", "answers got worse")
    assert back.exit_code == 0, back.output
    assert back.stdout.strip() == "1"
    channels = json.loads(tallinn("channel", "list", "--json").stdout)
    assert {c["channel"]: c["release"]["version"] for c in channels} == {
        "production": "1", "staging": "2"}
    history = json.loads(tallinn("channel", "history", "production", "--json").stdout)
    assert [(h["action"], h["from"], h["to"], h["actor"], h["reason"]) for h in history] == [
        ("rollback", "2", "1", "alice@ci", "answers got worse"),
        ("promote", "1", "2", "alice@ci", "second"),
        ("promote", None, "1", "alice@ci", "first")]
    listed = json.loads(tallinn("release", "list", "--json").stdout)
    assert {r["version"]: r["channels"] for r in listed} == {"2": ["staging"],
                                                             "1": ["production"]}
    for command in (["channel", "list"], ["channel", "history"], ["release", "list"],
                    ["release", "show", "2"], ["audit-log"]):
        shown = tallinn(*command)
        assert shown.exit_code == 0, (command, shown.output)
        assert "alice@ci" in shown.stdout or "staging" in shown.stdout


def test_audit_log_lists_and_verifies(tallinn: Tallinn, library: Path) -> None:
    """The log holds each change; verify passes, then fails naming an entry edited by hand."""
    released(tallinn)
    tallinn("promote", "1", "--reason", "ship it")
    entries = json.loads(tallinn("audit-log", "--json").stdout)
    assert [(e["seq"], e["action"], e["actor"]) for e in entries] == [
        (1, "release", "alice@ci"), (2, "promote", "alice@ci")]
    assert entries[1]["prev_hash"] == entries[0]["hash"]
    assert json.loads(tallinn("audit-log", "--since", "1h", "--json").stdout) == entries
    assert json.loads(tallinn("audit-log", "--since", "2999-01-01", "--json").stdout) == []
    bad_since = tallinn("audit-log", "--since", "yesterday")
    assert bad_since.exit_code == 2
    ok = tallinn("audit-log", "verify")
    assert ok.exit_code == 0
    assert "intact: 2 entries" in ok.stderr
    with open_store(tallinn.store_url) as store, store.engine.begin() as connection:
        connection.execute(update(audit_log).where(audit_log.c.seq == 1)
                           .values(actor="mallory"))
    broken = tallinn("audit-log", "verify")
    assert broken.exit_code == 1
    assert "audit log broken at entry 1" in broken.stderr


def test_the_actor_defaults_to_user_and_host(tallinn: Tallinn,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Without $TALLINN_ACTOR a release is made by user@host of the process."""
    import getpass
    import socket

    monkeypatch.delenv("TALLINN_ACTOR")
    released(tallinn)
    shown = json.loads(tallinn("release", "show", "1", "--json").stdout)
    assert shown["created_by"] == f"{getpass.getuser()}@{socket.gethostname()}"
