"""`tallinn rollout ...` and `tallinn rollback` during a rollout, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tallinn.cli import app
from tallinn.ops.store import Store, open_store

runner = CliRunner()


@pytest.fixture(autouse=True)
def actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLINN_ACTOR", "alice@ci")


@pytest.fixture
def seeded(store: Store, store_url: str) -> str:
    """A store whose production channel points at release 1, with release 2 made."""
    store.releases.create({"tallinn.toml": b"v1"}, actor="ci")
    store.releases.create({"tallinn.toml": b"v2"}, actor="ci")
    store.channels.promote("1", actor="ci", reason="first")
    return store_url


def cli(store_url: str, *args: str) -> Result:
    return runner.invoke(app, [*args, "--store", store_url])


def entries(store_url: str) -> int:
    with open_store(store_url) as store:
        return len(store.audit_log.entries())


START = ("rollout", "start", "2", "--steps", "10,50,100", "--hold", "1m",
         "--min-requests", "100", "--min-ratings", "0", "--reason", "new prompt")


def test_start_status_and_steps_by_hand(seeded: str) -> None:
    """Start, status, pause, resume, advance twice: the rollout completes at 100%."""
    assert cli(seeded, *START).exit_code == 0
    shown = cli(seeded, "rollout", "status", "--json")
    data = json.loads(shown.stdout)
    assert (data["phase"], data["share"], data["stable"], data["candidate"]) == (
        "running", 10, "1", "2")
    assert data["next"]["action"] == "hold"
    assert "candidate 2 at 10%" in cli(seeded, "rollout", "status").stdout
    for action, share in (("pause", "10"), ("resume", "10"), ("advance", "50"),
                          ("advance", "100")):
        done = cli(seeded, "rollout", action, "--reason", "by hand")
        assert (done.exit_code, done.stdout.strip()) == (0, share), done.output
    assert json.loads(cli(seeded, "rollout", "status", "--json").stdout)["phase"] == "completed"
    assert cli(seeded, "channel", "list", "--json").stdout.count('"version": "2"') == 1


@pytest.mark.parametrize(("args", "message"), [
    (("rollout", "start", "9", "--reason", "x"), "no release"),
    (("rollout", "start", "2", "--steps", "50,10,100"), "--steps"),
    (("rollout", "start", "2", "--steps", "10,50"), "last step must be 100"),
    (("rollout", "start", "2", "--hold", "2 days"), "--hold"),
    (("rollout", "start", "2", "--channel", "staging"), "no release yet"),
    (("rollout", "pause", "--reason", " "), "no rollout is under way"),
])
def test_bad_input_is_one_line_and_exit_2(seeded: str, args: tuple[str, ...],
                                          message: str) -> None:
    """Unknown release, bad steps or hold, an empty channel, nothing under way: exit 2,
    nothing written."""
    before = entries(seeded)
    done = cli(seeded, *args)
    assert done.exit_code == 2, done.output
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert entries(seeded) == before


def test_a_second_start_and_an_empty_reason_are_refused(seeded: str) -> None:
    """A second start on the channel and an empty reason exit 2 and write nothing."""
    assert cli(seeded, *START).exit_code == 0
    before = entries(seeded)
    for args in (START, ("rollout", "abort", "--reason", "")):
        done = cli(seeded, *args)
        assert done.exit_code == 2, done.output
    assert entries(seeded) == before


def test_rollback_during_a_rollout_ends_it_at_the_stable_release(seeded: str) -> None:
    """`tallinn rollback` with a rollout under way ends it; the channel stays at release 1."""
    assert cli(seeded, *START).exit_code == 0
    done = cli(seeded, "rollback", "--reason", "bad answers")
    assert (done.exit_code, done.stdout.strip()) == (0, "1"), done.output
    data = json.loads(cli(seeded, "rollout", "status", "--json").stdout)
    assert (data["phase"], data["share"]) == ("rolled_back", 0)


def test_two_rollbacks_in_real_processes_one_wins(seeded: str, tmp_path: Path) -> None:
    """Two `tallinn rollback` processes at once during a rollout: one ends it, the other is
    told (exit 1 for a conflict, or 2 when the rollout had ended before it read it)."""
    assert cli(seeded, *START).exit_code == 0
    env = {**os.environ, "TALLINN_ACTOR": "racer"}
    command = [sys.executable, "-m", "tallinn", "rollback", "--reason", "race", "--store",
               seeded]
    processes = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.communicate(timeout=120)[1], p.returncode) for p in processes]
    codes = sorted(code for _, code in results)
    assert codes[0] == 0, results
    assert codes[1] in (1, 2), results
    with open_store(seeded) as store:
        assert [e.action for e in store.audit_log.entries()].count("rollout-rollback") == 1
        assert store.audit_log.verify().ok
