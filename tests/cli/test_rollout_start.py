"""`tallinn rollout start`: every option reaches the stored plan and `rollout status` shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.ops.test_rollout_cli import cli, entries

from tallinn.ops.store import open_store


@pytest.fixture(autouse=True)
def actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALLINN_ACTOR", "alice@ci")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store whose production channel points at release 1, with release 2 made."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with open_store(url) as store:
        store.releases.create({"tallinn.toml": b"v1"}, actor="ci")
        store.releases.create({"tallinn.toml": b"v2"}, actor="ci")
        store.channels.promote("1", actor="ci", reason="first")
    return url


def test_every_start_option_reaches_the_plan_and_is_shown(store_url: str) -> None:
    """Each option of `rollout start` is in the stored plan, in `status --json` as it was
    typed, and on the status line; the next check is due one interval from now."""
    started = cli(store_url, "rollout", "start", "2", "--steps", "5,20,60,100", "--hold",
                  "90s,2h,3d", "--max-error-rate", "2.5%", "--min-satisfaction", "0.7",
                  "--min-requests", "400", "--min-ratings", "50", "--check-every", "30s",
                  "--resolution", "5s", "--reason", "every option")
    assert started.exit_code == 0, started.output
    with open_store(store_url) as store:
        rollout = store.rollouts.latest("production")
        assert rollout is not None
        plan = rollout.plan
    assert (plan.steps, plan.holds, plan.max_error_rate, plan.min_satisfaction,
            plan.min_requests, plan.min_ratings, plan.check_every, plan.resolution) == (
        (5, 20, 60, 100), (timedelta(seconds=90), timedelta(hours=2), timedelta(days=3)),
        0.025, 0.7, 400, 50, timedelta(seconds=30), timedelta(seconds=5))
    before = datetime.now(UTC)
    data = json.loads(cli(store_url, "rollout", "status", "--json").stdout)
    after = datetime.now(UTC)
    assert data["plan"] == {"steps": [5, 20, 60, 100], "holds": ["90s", "2h", "3d"],
                            "max_error_rate": 0.025, "min_satisfaction": 0.7,
                            "min_requests": 400, "min_ratings": 50, "alpha": 0.05,
                            "check_every": "30s", "resolution": "5s"}
    # Decided while the command ran: one interval after a moment between before and after.
    due = datetime.fromisoformat(data["next"]["due"])
    assert before + timedelta(seconds=30) <= due <= after + timedelta(seconds=30)
    line = cli(store_url, "rollout", "status").stdout
    assert ("plan: steps 5,20,60,100, hold 90s,2h,3d, max error rate 2.5%, min satisfaction "
            "70%, min 400 requests and 50 ratings per release, check every 30s") in line


def test_the_defaults_are_shown_when_no_option_is_given(store_url: str) -> None:
    """Without options the plan shown is the documented default, checked every 5 minutes."""
    assert cli(store_url, "rollout", "start", "2").exit_code == 0
    plan = json.loads(cli(store_url, "rollout", "status", "--json").stdout)["plan"]
    assert plan == {"steps": [10, 50, 100], "holds": ["2d", "2d"], "max_error_rate": 0.05,
                    "min_satisfaction": 0.8, "min_requests": 1000, "min_ratings": 100,
                    "alpha": 0.05, "check_every": "5m", "resolution": "1m"}


@pytest.mark.parametrize(("value", "reason"), [
    ("0s", "at least 1s"), ("2d", "at most 1d"), ("100d", "at most 1d"),
    ("5 minutes", "a duration is a whole number and a unit"), ("-5m", "a whole number"),
    ("", "a whole number"),
])
def test_a_bad_check_interval_is_one_line_exit_2_and_nothing_written(
    store_url: str, value: str, reason: str
) -> None:
    """A `--check-every` that is no duration, or outside 1s..1d, is refused with one line
    naming the option, exit 2, and no rollout is started."""
    before = entries(store_url)
    done = cli(store_url, "rollout", "start", "2", "--check-every", value)
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert "--check-every" in line
    assert reason in line
    assert entries(store_url) == before
    assert cli(store_url, "rollout", "status").stdout.strip() == "no rollout on production"


def test_one_day_and_one_second_are_the_bounds(store_url: str) -> None:
    """`--check-every 1d` and `--check-every 1s` are both accepted."""
    assert cli(store_url, "rollout", "start", "2", "--check-every", "1d").exit_code == 0
    assert json.loads(cli(store_url, "rollout", "status", "--json").stdout)[
        "plan"]["check_every"] == "1d"
    assert cli(store_url, "rollout", "abort", "--reason", "again").exit_code == 0
    assert cli(store_url, "rollout", "start", "2", "--check-every", "1s").exit_code == 0
    assert json.loads(cli(store_url, "rollout", "status", "--json").stdout)[
        "plan"]["check_every"] == "1s"


@pytest.mark.parametrize("value", ["7s", "0s", "2h", "1 minute"])
def test_a_bad_resolution_is_one_line_exit_2_and_nothing_written(
    store_url: str, value: str
) -> None:
    """A `--resolution` that is no duration, outside 1s..1h, or not dividing an hour is
    refused with one line naming the option, exit 2, and no rollout is started."""
    before = entries(store_url)
    done = cli(store_url, "rollout", "start", "2", "--resolution", value)
    assert done.exit_code == 2, done.output
    (line,) = done.stderr.strip().splitlines()
    assert "--resolution" in line
    assert entries(store_url) == before
