"""The error log written through the database driver alone (`tallinn.ops.verifier.DirectErrors`),
on SQLite and PostgreSQL, against the store's own `ErrorLog` on the same kind of database: the
same groups, counts, releases and samples, the same refusals, and no count lost when writers of
both kinds flush the same group at once."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import text
from tests.ops.conftest import write_at_once

from tallinn.ops import error_log, verifier
from tallinn.ops.error_log import ErrorEvent, ErrorGroup
from tallinn.ops.store import Store, open_store
from tallinn.ops.verifier import DirectErrors, DirectTokens, direct_target

R1, R2 = "a" * 64, "b" * 64
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
TOKEN = "tln_0123456789abcdef_" + "S3cr3t-value_" * 4


def _direct(url: str, samples: int = error_log.SAMPLES_PER_GROUP) -> DirectErrors:
    target = direct_target(url)
    assert target is not None, url
    tokens = DirectTokens(target)
    tokens.database.open()
    return DirectErrors(tokens.database, samples_per_group=samples)


def _batches(seed: int) -> list[list[ErrorEvent]]:
    """Random flushes: a few shapes, classes, places, releases (or none), clients, times out
    of order, secrets and control characters in the details."""
    rng = random.Random(seed)
    batches = []
    for _ in range(6):
        batch = []
        for _ in range(rng.randint(0, 40)):
            at = START + timedelta(seconds=rng.randint(-3600, 3600),
                                   microseconds=rng.randint(0, 999_999))
            detail = rng.choice([f"missing argument {rng.randint(1, 9)}", f"token={TOKEN}",
                                 "bad\x00value\n in 'src/app.py'", "x" * 3000, ""])
            batch.append(ErrorEvent(at, rng.choice([R1, R2, None]), rng.choice(["a", "b\x01"]),
                                    rng.choice(["RenderError", "E"]), detail,
                                    rng.choice([None, "alice", TOKEN]),
                                    rng.choice([None, "web-1"])))
        batches.append(batch)
    return batches


def _groups(store: Store) -> list[ErrorGroup]:
    """Every group with its samples, by fingerprint, without the ids the database gave (a
    PostgreSQL upsert takes a number from the sequence even when it updates)."""
    found = store.errors.groups(limit=1000, samples=True)
    return sorted((dataclasses.replace(g, id=0) for g in found), key=lambda g: g.fingerprint)


@pytest.mark.parametrize("samples", [20, 3, 0])
def test_flushes_are_stored_as_the_error_log_stores_them(store_url: str, tmp_path: object,
                                                         samples: int) -> None:
    """The same random flushes through the driver into one database and through `ErrorLog`
    into another give the same groups, counts, first and last seen, releases and samples."""
    direct = _direct(store_url, samples)
    other_url = f"sqlite:///{tmp_path}/other.db"
    try:
        with open_store(store_url) as mine, open_store(other_url) as theirs:
            log = error_log.ErrorLog(theirs.database, samples_per_group=samples)
            for batch in _batches(samples):
                assert direct.record(batch) == log.record(batch) == len(batch)
            assert _groups(mine) == _groups(theirs)
            assert _groups(mine), "the batches made no group"
    finally:
        direct.database.close()


def test_bad_events_are_refused_and_nothing_is_written(store: Store, store_url: str) -> None:
    """A naive time, a release that is no id or something not an event fails the whole flush,
    before the database is written, as the error log refuses it."""
    direct = _direct(store_url)
    good = ErrorEvent(START, R1, "w", "E", "fine")
    try:
        for bad, error in ((ErrorEvent(START.replace(tzinfo=None), R1, "w", "E", "x"), TypeError),
                           (ErrorEvent(START, "v1", "w", "E", "x"), ValueError),
                           ("not an event", TypeError)):
            with pytest.raises(error):
                direct.record([good, bad])  # type: ignore[list-item]
        assert direct.record([]) == 0
        assert store.errors.groups() == []
    finally:
        direct.database.close()


def test_a_failed_statement_rolls_the_whole_flush_back(store: Store, store_url: str) -> None:
    """With the samples table gone, a flush fails with the store's StoreError and leaves no
    group behind: one transaction, all or nothing."""
    direct = _direct(store_url)
    try:
        direct.database.query("drop a table", "DROP TABLE error_samples")
        with pytest.raises(verifier.StoreError, match="record errors"):
            direct.record([ErrorEvent(START, R1, "w", "E", "boom")])
        assert direct.database.query("count", "SELECT count(*) FROM error_groups") == [(0,)]
    finally:
        direct.database.close()


def test_driver_and_store_writers_flushing_one_group_at_once_lose_no_count(
    store_url: str,
) -> None:
    """Two driver writers and two stores flush the same new group together, five times each:
    one group, every event counted, the samples trimmed to the cap."""
    directs = [_direct(store_url) for _ in range(2)]
    stores = [open_store(store_url) for _ in range(2)]
    batch = [ErrorEvent(START, R1, "w", "E", "same shape 1")] * 3
    writers = [d.record for d in directs] + [s.errors.record for s in stores]
    failures = write_at_once([partial(write, batch) for write in writers], times=5)
    try:
        assert failures == []
        [group] = stores[0].errors.groups(samples=True)
        assert group.count == 4 * 5 * 3
        assert [(r.release, r.count) for r in group.releases] == [(R1, 60)]
        assert len(group.samples) == error_log.SAMPLES_PER_GROUP
    finally:
        for direct in directs:
            direct.database.close()
        for store in stores:
            store.close()


def test_the_driver_keeps_as_many_samples_as_the_error_log() -> None:
    assert verifier.SAMPLES_PER_GROUP == error_log.SAMPLES_PER_GROUP


@pytest.mark.postgres
def test_a_lost_postgresql_connection_costs_no_flush(pg_database: str) -> None:
    """A connection the server ended since its last use (a restart, an idle timeout) is made
    again and the flush written once, as the store's pool does."""
    with open_store(pg_database) as store:
        direct = _direct(pg_database)
        try:
            assert direct.record([ErrorEvent(START, R1, "w", "E", "first")]) == 1
            with store.database.transaction("end the writer's connection") as connection:
                ended = connection.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all()
            assert ended
            assert direct.record([ErrorEvent(START, R1, "w", "E", "first")]) == 1
            [group] = store.errors.groups()
            assert group.count == 2
        finally:
            direct.database.close()
