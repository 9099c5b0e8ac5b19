"""The error log on real SQLite and PostgreSQL: grouping, samples, releases, redaction, prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import func, select
from tests.ops.conftest import FakeClock, write_at_once

from tallinn.ops.error_log import (
    DETAIL_MAX,
    ErrorEvent,
    ErrorLog,
    fingerprint,
    redact,
    shape,
)
from tallinn.ops.schema import error_group_releases, error_groups, error_samples
from tallinn.ops.store import Store, open_store

R1 = "a" * 64
R2 = "b" * 64
TOKEN = "tln_0123456789abcdef_" + "S3cr3t-value_" * 4


def event(clock: FakeClock, detail: str, *, where: str = "code-review", release: str | None = R1,
          error_class: str = "RenderError", client: str | None = "alice",
          replica: str | None = "web-1") -> ErrorEvent:
    return ErrorEvent(clock(), release, where, error_class, detail, client, replica)


def count_rows(store: Store, table: object) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_same_shape_is_one_group(clocked: Store, clock: FakeClock) -> None:
    """Messages that differ only in numbers, quoted strings, hex ids and paths share a group."""
    clocked.errors.record([
        event(clock, "line 3 of /srv/lib/a.md: 'foo' undefined (id 9f86d081884c)"),
        event(clock, "line 41 of /srv/lib/b.md: 'bar' undefined (id 0x1f)"),
    ])
    clock.advance(seconds=5)
    clocked.errors.record([event(clock, "line 7 of commands/c.md: \"baz\" undefined (id ab12cd)")])
    [group] = clocked.errors.groups()
    assert group.count == 3
    assert group.shape == "line <n> of <path>: <str> undefined (id <hex>)"
    assert group.last_seen - group.first_seen == timedelta(seconds=5)
    assert group.where == "code-review"
    assert group.error_class == "RenderError"


def test_different_shapes_classes_or_places_are_different_groups(clocked: Store,
                                                                 clock: FakeClock) -> None:
    """A different message shape, error class or where makes a group of its own."""
    clocked.errors.record([
        event(clock, "missing argument 'path'"),
        event(clock, "argument 'path' is too long"),
        event(clock, "missing argument 'path'", error_class="ValueError"),
        event(clock, "missing argument 'path'", where="render_prompt"),
        event(clock, "missing argument 'other'"),
    ])
    groups = clocked.errors.groups()
    assert sorted(g.count for g in groups) == [1, 1, 1, 2]
    assert len({g.fingerprint for g in groups}) == 4


def test_groups_are_newest_first_and_filtered_by_since(clocked: Store, clock: FakeClock) -> None:
    """Groups come newest first; `since` keeps those last seen at or after it."""
    clocked.errors.record([event(clock, "old problem")])
    clock.advance(hours=2)
    clocked.errors.record([event(clock, "new problem")])
    assert [g.shape for g in clocked.errors.groups()] == ["new problem", "old problem"]
    recent = clocked.errors.groups(since=clock() - timedelta(hours=1))
    assert [g.shape for g in recent] == ["new problem"]
    assert [g.shape for g in clocked.errors.groups(limit=1)] == ["new problem"]
    with pytest.raises(ValueError, match="limit"):
        clocked.errors.groups(limit=0)


def test_releases_are_counted_per_group(clocked: Store, clock: FakeClock) -> None:
    """Each group knows the releases it happened in; read for one release, counts are its own."""
    clocked.errors.record([event(clock, "boom", release=R1), event(clock, "boom", release=R2),
                           event(clock, "boom", release=R2), event(clock, "boom", release=None)])
    clock.advance(minutes=1)
    clocked.errors.record([event(clock, "boom", release=R2), event(clock, "other", release=R1)])
    [boom] = [g for g in clocked.errors.groups() if g.shape == "boom"]
    assert boom.count == 5
    assert {(r.release, r.count) for r in boom.releases} == {(R1, 1), (R2, 3)}
    in_r2 = clocked.errors.groups(release=R2, samples=True)
    assert [(g.shape, g.count) for g in in_r2] == [("boom", 3)]
    assert {s.release for s in in_r2[0].samples} == {R2}
    assert len(in_r2[0].samples) == 3


def test_a_group_keeps_its_latest_samples_only(store: Store, clock: FakeClock) -> None:
    """Past `samples_per_group`, the oldest samples go; the count still counts every event."""
    errors = ErrorLog(store.database, clock=clock, samples_per_group=3)
    for batch in range(4):
        errors.record([event(clock, f"boom {batch}.{i}", client=f"c{batch}.{i}")
                       for i in range(2)])
        clock.advance(seconds=1)
    [group] = errors.groups(samples=True)
    assert group.count == 8
    assert [s.client for s in group.samples] == ["c3.1", "c3.0", "c2.1"]
    assert [s.detail for s in group.samples] == ["boom 3.1", "boom 3.0", "boom 2.1"]
    assert count_rows(store, error_samples) == 3


def test_a_flood_of_one_error_costs_a_fixed_number_of_statements(store: Store,
                                                                 clock: FakeClock) -> None:
    """A batch of 5000 events of one shape stores at most the sample cap, in four statements."""
    errors = ErrorLog(store.database, clock=clock, samples_per_group=20)
    assert errors.record(event(clock, f"timeout after {i} ms") for i in range(5000)) == 5000
    assert errors.statements == 4  # the group, its one release, the samples, the trim
    [group] = errors.groups(samples=True)
    assert group.count == 5000
    assert len(group.samples) == 20
    assert count_rows(store, error_samples) == 20


def test_no_samples_when_the_cap_is_zero(store: Store, clock: FakeClock) -> None:
    """A cap of zero keeps counts and no samples."""
    errors = ErrorLog(store.database, clock=clock, samples_per_group=0)
    errors.record([event(clock, "boom")] * 3)
    [group] = errors.groups(samples=True)
    assert (group.count, group.samples) == (3, ())


def test_prune_removes_what_is_past_retention(store: Store, clock: FakeClock) -> None:
    """Groups, release rows and samples not seen within the retention go; recent ones stay."""
    errors = ErrorLog(store.database, clock=clock, retention=timedelta(days=30))
    errors.record([event(clock, "ancient", release=R1), event(clock, "lasting", release=R1)])
    clock.advance(days=20)
    errors.record([event(clock, "lasting", release=R2)])
    clock.advance(days=15)
    pruned = errors.prune()
    assert (pruned.groups, pruned.samples) == (1, 2)
    [lasting] = errors.groups(samples=True)
    assert lasting.shape == "lasting"
    assert lasting.count == 2  # a count is over the group's whole life
    assert [r.release for r in lasting.releases] == [R2]
    assert [s.release for s in lasting.samples] == [R2]
    assert count_rows(store, error_groups) == 1
    assert count_rows(store, error_group_releases) == 1
    assert errors.prune(older_than=clock() + timedelta(seconds=1)).groups == 1
    assert errors.groups() == []


def test_argument_values_and_secrets_never_reach_the_store(clocked: Store,
                                                            clock: FakeClock) -> None:
    """An argument value and a token-like string in a message are redacted before storage."""
    value = "my private notes about payroll"
    captured = ErrorEvent.capture(
        RuntimeError(f"cannot render {value} with {TOKEN}; password=hunter22 "
                     "url=https://bob:pw1@db.example/x Authorization: Bearer abc.def.ghi "
                     "key sk_live_4eC39HqLyjWDarjtT1zdp7dcXY"),
        at=clock(), where="code-review", arguments=[value, "ab"], client=f"bot {TOKEN}")
    assert value not in captured.detail
    clocked.errors.record([captured])
    with clocked.engine.connect() as connection:
        stored = " ".join(str(v) for table in (error_groups, error_samples)
                          for row in connection.execute(select(table)) for v in row)
    for leaked in (value, "S3cr3t", "hunter22", "bob:pw1", "abc.def.ghi", "sk_live"):
        assert leaked not in stored
    [group] = clocked.errors.groups(samples=True)
    assert group.error_class == "RuntimeError"
    assert group.samples[0].detail.startswith("cannot render <arg> with <secret>; "
                                              "password=<secret>")
    assert group.samples[0].client == "bot <secret>"


def test_record_redacts_events_built_by_hand(clocked: Store, clock: FakeClock) -> None:
    """An event made without `capture` still loses its quoted values and tokens."""
    clocked.errors.record([event(clock, f"bad value 'top secret' from {TOKEN}")])
    [group] = clocked.errors.groups(samples=True)
    assert group.samples[0].detail == "bad value <str> from <secret>"


def test_redaction_rule() -> None:
    """Each part of the documented rule, and what it leaves alone."""
    assert redact("value of focus: hello world", ["hello world"]) == "value of focus: <arg>"
    assert redact("short 'x' and ab", ["ab"]) == "short <str> and ab"
    assert redact("api_key=abc; next") == "api_key=<secret>; next"
    assert redact('token: "quoted secret" end') == "token: <secret> end"
    assert redact("postgresql://u:p@host/db") == "postgresql://<secret>@host/db"
    assert redact("id ABCDEFGHIJKLMNOPQRSTUVWXYZ plain") == "id ABCDEFGHIJKLMNOPQRSTUVWXYZ plain"
    assert redact("blob aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=") == "blob <secret>"
    assert redact("a\x00b\nc") == "a b c"
    assert len(redact("x" * 5000)) == DETAIL_MAX
    assert redact("x" * 995 + " password=hunter22") == "x" * 995 + " pass"  # cut after
    assert shape("took 12.5 s at C:\\lib\\a.md, uuid 123e4567-e89b-12d3-a456-426614174000") == \
        "took <n> s at <path>, uuid <secret>"
    assert fingerprint("E", "w", "n=1") == fingerprint("E", "w", "n=22")
    assert fingerprint("E", "w", "n=1") != fingerprint("E", "v", "n=1")


def test_bad_events_are_refused_and_nothing_is_written(clocked: Store, clock: FakeClock) -> None:
    """A naive time, a malformed release id or a non-event stops the batch before any write."""
    good = event(clock, "fine")
    naive = ErrorEvent(datetime(2026, 1, 1), None, "w", "E", "d")
    with pytest.raises(TypeError, match="naive"):
        clocked.errors.record([good, naive])
    with pytest.raises(ValueError, match="64-digit hex"):
        clocked.errors.record([good, event(clock, "x", release="v3")])
    with pytest.raises(TypeError, match="ErrorEvents"):
        clocked.errors.record([good, "boom"])  # type: ignore[list-item]
    assert clocked.errors.groups() == []
    assert clocked.errors.record([]) == 0
    with pytest.raises(ValueError, match="retention"):
        ErrorLog(clocked.database, retention=timedelta(0))
    with pytest.raises(ValueError, match="samples_per_group"):
        ErrorLog(clocked.database, samples_per_group=-1)


def test_replicas_recording_the_same_new_group_at_once(store_url: str) -> None:
    """Four stores flushing the same new fingerprint together make one group with every count."""
    stores = [open_store(store_url) for _ in range(4)]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    batch = [ErrorEvent(at, R1, "w", "E", "same shape 1")] * 3
    failures = write_at_once([partial(s.errors.record, batch) for s in stores], times=5)
    try:
        assert failures == []
        [group] = stores[0].errors.groups()
        assert group.count == 4 * 5 * 3
        assert [(r.release, r.count) for r in group.releases] == [(R1, 60)]
    finally:
        for store in stores:
            store.close()
