"""`tallinn status` and `tallinn status --slo` through the real CLI app, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from tests.cli import test_monitoring_commands as monitoring
from tests.ops import conftest as store_fixtures

from tallinn.ops.error_log import ErrorEvent
from tallinn.ops.records import Release
from tallinn.ops.rollout import ReleaseTotals, SignalBatch, parse_plan
from tallinn.ops.rollout.signals import minute_of
from tallinn.ops.store import Store

# The store tests' fixtures (a fresh SQLite file, or a fresh PostgreSQL database), and the
# monitoring commands' helpers: the CLI app, a store on that database, a one-line refusal.
store_url = store_fixtures.store_url
pg_database = store_fixtures.pg_database
state = monitoring.state
tallinn = monitoring.tallinn
one_line_exit_2 = monitoring.one_line_exit_2
FILES = {"commands/pay.md": b"---\ndescription: Take a payment\ncritical: true\n---\nPay.\n",
         "commands/hello.md": b"---\ndescription: Say hello\n---\nHello.\n"}
_seq = count(1)


def released(state: Store) -> tuple[Release, Release]:
    one = state.releases.create(FILES, actor="ci", version="1")
    two = state.releases.create({**FILES, "commands/bye.md": b"Bye.\n"}, actor="ci",
                                version="2")
    state.channels.promote("1", actor="ci", reason="first")
    return one, two


def start_rollout(state: Store) -> None:
    """Release 2 to 10%, then 50% and 100% of production's clients."""
    state.rollouts.start(parse_plan("2", channel="production", steps="10,50,100", hold="1h",
                                    min_ratings="0"), actor="a", reason="go")


def signal(state: Store, release: Release, requests: int, server: int = 0,
           ago: timedelta = timedelta(hours=1)) -> None:
    state.rollouts.record_signals([SignalBatch(
        "web-1", next(_seq), release.id, minute_of(datetime.now(UTC) - ago),
        ReleaseTotals(requests, server))])


def test_status_json_gives_the_releases_rollout_and_figures(state: Store,
                                                            store_url: str) -> None:
    """`status --json` names the stable and candidate, the step and shares, and each
    release's figures with latency fields still empty."""
    one, two = released(state)
    start_rollout(state)
    signal(state, one, 400, server=4)
    signal(state, two, 50)
    state.rollouts.rate(two.id, "pay", 5, client="alice")
    result = tallinn("status", "--store", store_url, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stable"] == {"version": "1", "id": one.id}
    assert data["window_seconds"] == 86400.0
    assert data["rollout"]["share"] == 10
    assert data["rollout"]["shares"] == {"candidate": 10, "stable": 90}
    assert data["rollout"]["candidate"]["version"] == "2"
    stable, candidate = data["releases"]
    assert (stable["role"], stable["requests"], stable["server_errors"],
            stable["error_rate"]) == ("stable", 400, 4, 0.01)
    assert (candidate["role"], candidate["ratings"], candidate["satisfaction"]) == (
        "candidate", 1, 1.0)
    assert stable["latency"] == {"p50_seconds": None, "p95_seconds": None}


def test_status_text_says_no_rollout_and_shows_dashes_without_data(state: Store,
                                                                   store_url: str) -> None:
    """Without a rollout the text says so, and figures without data are `-`."""
    released(state)
    result = tallinn("status", "--store", store_url, "--window", "6h")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "production: stable 1, no rollout"
    row = next(line for line in lines if line.strip().startswith("1 "))
    assert row.split() == ["1", "stable", "0", "0", "0", "-", "0", "-", "-", "-"]


def test_slo_passes_exit_0_and_a_failure_exits_1(state: Store, store_url: str) -> None:
    """All metrics passing exit 0; a server error on a critical command then exits 1."""
    one, _ = released(state)
    signal(state, one, 10_000, server=1)
    state.rollouts.rate(one.id, "pay", 5, client="alice")
    passing = tallinn("status", "--slo", "--store", store_url)
    assert passing.exit_code == 0, passing.output
    assert passing.stdout.splitlines()[-1] == "verdict: PASS"
    state.errors.record([ErrorEvent.capture("boom", at=datetime.now(UTC), where="pay",
                                            release=one.id, error_class="RenderError")])
    failing = tallinn("status", "--slo", "--store", store_url, "--json")
    assert failing.exit_code == 1, failing.output
    data = json.loads(failing.stdout)
    assert data["verdict"] == "FAIL"
    assert data["window_seconds"] == 7 * 86400.0
    (release,) = data["releases"]
    assert {c["name"]: c["verdict"] for c in release["checks"]} == {
        "error rate": "PASS", "satisfaction": "PASS", "critical errors": "FAIL",
        "availability": "PASS"}
    assert [(e["class"], e["where"], e["count"]) for e in release["critical_errors"]] == [
        ("RenderError", "pay", 1)]
    check = release["checks"][0]
    assert set(check) == {"name", "verdict", "figure", "comparison", "threshold", "detail"}
    assert (check["comparison"], check["threshold"]) == ("<", 0.05)


def test_slo_with_no_data_exits_0_and_says_so(state: Store, store_url: str) -> None:
    """A window without requests or ratings is NO DATA for every metric, and exit 0."""
    released(state)
    result = tallinn("status", "--slo", "--store", store_url, "--window", "90d")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("NO DATA") == 6  # the release, its four metrics, the verdict
    assert "no ratings in the window" in result.stdout


@pytest.mark.parametrize(("args", "words"), [
    (("--window", "91d"), "at most 90 days"),
    (("--window", "soon"), "--window 'soon'"),
    (("--window", "0m"), "at least 1 minute"),
    (("--window", "2999-01-01"), "no start in the future"),
    (("--channel", "Bad Name"), "invalid channel name"),
    (("--channel", "staging"), "channel 'staging' serves no release"),
])
@pytest.mark.parametrize("slo", [(), ("--slo",)])
def test_bad_input_is_one_line_and_exit_2(state: Store, store_url: str,
                                          args: tuple[str, ...], slo: tuple[str, ...],
                                          words: str) -> None:
    """A window out of bounds or unreadable, a bad or empty channel: one line, exit 2."""
    released(state)
    one_line_exit_2(tallinn("status", *slo, *args, "--store", store_url), words)


def test_status_text_during_a_rollout_names_the_step_and_shares(state: Store,
                                                                store_url: str) -> None:
    """During a rollout the first line names the candidate, its share and the step."""
    released(state)
    start_rollout(state)
    result = tallinn("status", "--store", store_url)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        "production: stable 1, rollout 1 running: candidate 2 at 10% "
        "(step 1 of 3, shares 10,50,100)")
    assert [line.split()[:2] for line in result.stdout.splitlines()
            if line.strip()[:2] in ("1 ", "2 ")] == [["1", "stable"], ["2", "candidate"]]


def test_slo_text_names_each_metric_with_its_figure_and_threshold(state: Store,
                                                                  store_url: str) -> None:
    """The text report gives each metric's verdict, figure, threshold and counts."""
    one, _ = released(state)
    signal(state, one, 100, server=6)
    result = tallinn("status", "--slo", "--store", store_url, "--window", "24h")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "release 1 (stable): FAIL"
    assert lines[2].split() == ["FAIL", "error", "rate", "6.00%", "<", "5%", "6", "server",
                                "errors", "of", "100", "served", "requests"]
    assert lines[4].split()[:6] == ["PASS", "critical", "errors", "0", "=", "0"]
    assert lines[5].split()[:5] == ["FAIL", "availability", "94.00%", ">=", "99.9%"]
    assert lines[-1] == "verdict: FAIL"
