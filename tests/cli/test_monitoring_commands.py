"""`tallinn errors`, `events`, `feedback` and `token create --role` through the real CLI app,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tests.ops import conftest as store_fixtures
from typer.testing import CliRunner, Result

from tallinn.ops.error_log import ErrorEvent
from tallinn.ops.records import Release, TokenIdentity
from tallinn.ops.store import Store, open_store

# The store tests' fixtures: a fresh SQLite file, or a fresh PostgreSQL database.
store_url = store_fixtures.store_url
pg_database = store_fixtures.pg_database
runner = CliRunner()
NOW = datetime.now(UTC)
FILES = {"commands/hello.md": b"---\ndescription: Say hello\n---\nHello.\n"}


def tallinn(*args: str) -> Result:
    from tallinn.cli import app

    return runner.invoke(app, list(args))


@pytest.fixture
def state(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def at(store: Store, moment: datetime) -> Store:
    """The same database, seen by a store whose clock stands at `moment`."""
    return Store(store.engine, clock=lambda: moment)


def releases(state: Store) -> tuple[Release, Release]:
    first = state.releases.create(FILES, actor="alice", version="1")
    second = state.releases.create({**FILES, "commands/bye.md": b"Bye.\n"}, actor="alice",
                                   version="2")
    return first, second


def one_line_exit_2(result: Result, words: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert words in result.stderr


# -- tallinn errors ---------------------------------------------------------------------------


def test_errors_json_lists_groups_newest_first_with_samples(state: Store, store_url: str) -> None:
    """--json gives each group with its count, releases by version and redacted samples,
    newest group first."""
    one, two = releases(state)
    state.errors.record([
        ErrorEvent(NOW - timedelta(hours=3), one.id, "hello", "RenderError", "line 3 broke",
                   client="alice", replica="web-1"),
        ErrorEvent(NOW - timedelta(hours=2), two.id, "hello", "RenderError", "line 9 broke"),
        ErrorEvent(NOW - timedelta(minutes=5), two.id, "render_prompt", "KeyError",
                   "no prompt 'secret-name'"),
    ])
    result = tallinn("errors", "--json", "--store", store_url)
    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)
    assert [(g["class"], g["where"], g["count"]) for g in groups] == [
        ("KeyError", "render_prompt", 1), ("RenderError", "hello", 2)]
    older = groups[1]
    assert older["message"] == "line <n> broke"
    assert sorted((r["version"], r["count"]) for r in older["releases"]) == [("1", 1), ("2", 1)]
    assert [(s["detail"], s["version"]) for s in older["samples"]] == [
        ("line 9 broke", "2"), ("line 3 broke", "1")]
    assert older["samples"][1]["client"] == "alice"
    assert "secret-name" not in result.stdout


def test_errors_filtered_by_release_and_since(state: Store, store_url: str) -> None:
    """--release (a version or an id prefix) and --since keep only what matches."""
    one, two = releases(state)
    state.errors.record([
        ErrorEvent(NOW - timedelta(hours=5), one.id, "hello", "E", "old in one"),
        ErrorEvent(NOW - timedelta(minutes=1), two.id, "hello", "E", "new in two"),
    ])
    by_version = json.loads(tallinn("errors", "--release", "1", "--json", "--store",
                                    store_url).stdout)
    assert [g["message"] for g in by_version] == ["old in one"]
    by_prefix = json.loads(tallinn("errors", "--release", two.id[:8], "--json", "--store",
                                   store_url).stdout)
    assert [g["message"] for g in by_prefix] == ["new in two"]
    recent = json.loads(tallinn("errors", "--since", "1h", "--json", "--store", store_url).stdout)
    assert [g["message"] for g in recent] == ["new in two"]
    assert json.loads(tallinn("errors", "--limit", "1", "--json", "--store",
                              store_url).stdout)[0]["message"] == "new in two"


def test_errors_table_for_people(state: Store, store_url: str) -> None:
    """Without --json, a table with the count, class, where, releases and message shape."""
    one, _ = releases(state)
    state.errors.record([ErrorEvent(NOW, one.id, "hello", "RenderError", "took 12 ms")] * 3)
    result = tallinn("errors", "--store", store_url)
    assert result.exit_code == 0, result.output
    assert "1 error group\n" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "RenderError" in line)
    assert row.split()[0] == "3"
    assert "hello" in row
    assert " 1 " in row
    assert "took <n> ms" in row


@pytest.mark.parametrize(("args", "words"), [
    (["--release", "9"], "no release '9'"),
    (["--since", "yesterday"], "--since 'yesterday'"),
    (["--limit", "0"], "--limit '0'"),
    (["--limit", "many"], "--limit 'many'"),
], ids=["release", "since", "limit-0", "limit-word"])
def test_errors_bad_input_is_one_line_and_exit_2(store_url: str, args: list[str],
                                                 words: str) -> None:
    """An unknown release, a time that does not parse or a bad limit: one line, exit 2."""
    one_line_exit_2(tallinn("errors", *args, "--store", store_url), words)


def test_errors_prune_removes_what_is_past_the_retention(state: Store, store_url: str) -> None:
    """`errors prune` removes groups unseen for 30 days by default, or before --older-than."""
    state.errors.record([ErrorEvent(NOW - timedelta(days=40), None, "hello", "E", "ancient"),
                         ErrorEvent(NOW - timedelta(days=2), None, "hello", "E", "recent")])
    result = tallinn("errors", "prune", "--store", store_url)
    assert result.exit_code == 0, result.output
    assert "pruned 1 error group and 1 sample" in result.stderr
    assert [g.shape for g in state.errors.groups()] == ["recent"]
    assert tallinn("errors", "prune", "--older-than", "1d", "--store", store_url).exit_code == 0
    assert state.errors.groups() == []
    one_line_exit_2(tallinn("errors", "prune", "--older-than", "soon", "--store", store_url),
                    "--older-than 'soon'")


# -- tallinn events ---------------------------------------------------------------------------


def test_events_newest_first_by_kind_and_since(state: Store, store_url: str) -> None:
    """--kind and --since filter the stored security events; newest first."""
    at(state, NOW - timedelta(days=2)).record_event("auth_failure", client="10.0.0.1",
                                                     detail="old")
    at(state, NOW - timedelta(minutes=30)).record_event("rate_limited", client="10.0.0.2")
    at(state, NOW - timedelta(minutes=10)).record_event("auth_failure", client="10.0.0.3",
                                                         detail="unknown token")
    every = json.loads(tallinn("events", "--json", "--store", store_url).stdout)
    assert [e["client"] for e in every] == ["10.0.0.3", "10.0.0.2", "10.0.0.1"]
    failures = json.loads(tallinn("events", "--kind", "auth_failure", "--since", "1d",
                                  "--json", "--store", store_url).stdout)
    assert [(e["kind"], e["detail"]) for e in failures] == [("auth_failure", "unknown token")]
    assert json.loads(tallinn("events", "--limit", "1", "--json", "--store",
                              store_url).stdout)[0]["client"] == "10.0.0.3"
    table = tallinn("events", "--store", store_url)
    assert table.exit_code == 0
    assert "3 events\n" in table.stdout
    assert "unknown token" in table.stdout


def test_events_bad_kind_is_one_line_and_exit_2(store_url: str) -> None:
    """A kind that is not a lowercase word is refused before the store is opened."""
    one_line_exit_2(tallinn("events", "--kind", "Auth Failure", "--store", store_url),
                    "--kind 'Auth Failure'")


# -- tallinn feedback -------------------------------------------------------------------------


def test_feedback_summarises_per_release_and_prompt(state: Store, store_url: str) -> None:
    """--json gives per (release, prompt) the count, mean and satisfaction, then the ratings."""
    one, two = releases(state)
    early, late = at(state, NOW - timedelta(days=3)), at(state, NOW - timedelta(hours=1))
    early.rollouts.rate(one.id, "hello", 2, client="bob", comment="too terse")
    late.rollouts.rate(two.id, "hello", 5, client="alice", comment="clear")
    late.rollouts.rate(two.id, "hello", 4, client="carol")
    late.rollouts.rate(two.id, "bye", 1, client="dan")
    result = tallinn("feedback", "--json", "--store", store_url)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    summary = {(s["version"], s["prompt"]): s for s in data["summary"]}
    assert set(summary) == {("1", "hello"), ("2", "hello"), ("2", "bye")}
    assert (summary["2", "hello"]["ratings"], summary["2", "hello"]["mean"],
            summary["2", "hello"]["satisfaction"], summary["2", "hello"]["comments"]) == \
        (2, 4.5, 1.0, 1)
    assert summary["1", "hello"]["satisfaction"] == 0.0
    assert len(data["ratings"]) == 4
    only = json.loads(tallinn("feedback", "--release", "2", "--prompt", "hello", "--since", "1d",
                              "--json", "--store", store_url).stdout)
    assert [(r["client"], r["rating"]) for r in only["ratings"]] == [("carol", 4), ("alice", 5)]
    assert [s["prompt"] for s in only["summary"]] == ["hello"]


def test_feedback_table_for_people(state: Store, store_url: str) -> None:
    """Without --json, the summary and the latest ratings with their comments."""
    one, _ = releases(state)
    state.rollouts.rate(one.id, "hello", 4, client="alice", comment="works well")
    result = tallinn("feedback", "--store", store_url)
    assert result.exit_code == 0, result.output
    assert "1 rating\n" in result.stdout
    assert "100%" in result.stdout
    assert "works well" in result.stdout


def test_feedback_unknown_release_is_one_line_and_exit_2(store_url: str) -> None:
    """A release no version or id prefix names: one line, exit 2."""
    one_line_exit_2(tallinn("feedback", "--release", "beta", "--store", store_url),
                    "no release 'beta'")


# -- tallinn token create --role --------------------------------------------------------------


def test_token_role_is_stored_listed_and_verified(store_url: str) -> None:
    """--role is kept with the token, shown by `token list` and returned on verification."""
    token = tallinn("token", "create", "ops", "--role", "operator", "--store", store_url)
    assert token.exit_code == 0, token.output
    tallinn("token", "create", "ci", "--store", store_url)
    listed = json.loads(tallinn("token", "list", "--json", "--store", store_url).stdout)
    assert [(t["name"], t["role"]) for t in listed] == [("ops", "operator"), ("ci", "reader")]
    table = tallinn("token", "list", "--store", store_url).stdout
    assert "operator" in next(line for line in table.splitlines() if "ops" in line)
    with open_store(store_url) as store:
        assert store.verify_token_role(token.stdout.strip()) == TokenIdentity("ops", "operator")


def test_token_bad_role_is_one_line_and_exit_2(store_url: str) -> None:
    """A role outside reader, viewer, operator, admin: one line, exit 2, no token made."""
    one_line_exit_2(tallinn("token", "create", "x", "--role", "root", "--store", store_url),
                    "--role 'root'")
    with open_store(store_url) as store:
        assert store.list_tokens() == []
