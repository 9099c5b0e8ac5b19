"""Releases in the state store: content-addressed, immutable, named by version or id prefix."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select, update
from tests.ops.concurrency import race

from tallinn.ops.errors import ReleaseError, ReleaseExistsError, ReleaseNotFoundError, StoreError
from tallinn.ops.releases import check_path, check_version, next_version, release_id
from tallinn.ops.schema import audit_log, blobs, release_files, releases
from tallinn.ops.store import Store

FILES = {
    "tallinn.toml": b'[library]\nname = "t"\n',
    "commands/review.md": b"---\ndescription: Review\n---\nReview it.\n",
    "components/shared/tone.md": b"Be kind.\r\n",  # CRLF kept byte for byte
}


def counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {table.name: connection.execute(select(func.count()).select_from(table))
                .scalar_one() for table in (blobs, releases, release_files, audit_log)}


def test_a_release_keeps_every_file_byte_for_byte(store: Store) -> None:
    """The files read back from a release are the bytes stored, CRLF and all."""
    made = store.releases.create(FILES, actor="alice@ci", notes="first")
    assert (made.version, made.seq, made.files, made.created_by) == ("1", 1, 3, "alice@ci")
    assert store.releases.files(made.id) == FILES
    manifest = store.releases.manifest(made.id)
    assert manifest == {p: hashlib.sha256(b).hexdigest() for p, b in FILES.items()}
    assert made.id == release_id(manifest)


def test_the_id_is_the_hash_of_the_sorted_manifest() -> None:
    """The same (path, blob hash) pairs give the same id in any order; any change another."""
    manifest = {"b.md": "2" * 64, "a.md": "1" * 64}
    assert release_id(manifest) == release_id(dict(reversed(list(manifest.items()))))
    assert release_id(manifest) != release_id({**manifest, "a.md": "3" * 64})
    assert release_id(manifest) != release_id({"c.md": "2" * 64, "a.md": "1" * 64})


def test_blobs_are_stored_once_however_many_releases_hold_them(store: Store) -> None:
    """A second release with one file changed adds exactly one blob."""
    store.releases.create(FILES, actor="a")
    before = counts(store)["blobs"]
    store.releases.create({**FILES, "commands/review.md": b"changed\n"}, actor="a")
    after = counts(store)
    assert before == 3
    assert after["blobs"] == 4
    assert after["release_files"] == 6


def test_identical_content_is_refused_naming_the_release(store: Store) -> None:
    """Releasing what a release holds already names that release, and writes nothing."""
    first = store.releases.create(FILES, actor="a")
    before = counts(store)
    with pytest.raises(ReleaseExistsError, match=rf"release 1 \({first.id[:12]}\) already"):
        store.releases.create(dict(reversed(list(FILES.items()))), actor="b", version="9")
    assert counts(store) == before


def test_a_version_that_exists_is_refused_and_nothing_written(store: Store) -> None:
    """--version of an existing release fails before any row is written."""
    store.releases.create(FILES, actor="a", version="2.0.0")
    before = counts(store)
    with pytest.raises(ReleaseExistsError, match=r"version 2\.0\.0 exists already"):
        store.releases.create({"tallinn.toml": b"other"}, actor="a", version="2.0.0")
    assert counts(store) == before


@pytest.mark.parametrize("version", ["", "latest", "1..2", "1.2.", "v", "-1", "1 2", "x" * 65,
                                     "1.0.0-", "abcd"])
def test_invalid_versions_are_refused(version: str) -> None:
    """A version is numbers joined by dots with an optional v and -suffix; nothing else."""
    with pytest.raises(ReleaseError, match="invalid version"):
        check_version(version)


@pytest.mark.parametrize("version", ["1", "1.4.0", "v2", "1.0.0-rc.1", "2026.3.1+build.7"])
def test_valid_versions_pass(version: str) -> None:
    """Plain, dotted, v-prefixed and suffixed versions are accepted as given."""
    assert check_version(version) == version


@pytest.mark.parametrize(("taken", "latest", "expected"), [
    ([], None, "1"),
    (["1", "2"], "2", "3"),
    (["1.4.0"], "1.4.0", "1.4.1"),
    (["v2"], "v2", "v3"),
    (["1.0.0-rc.1"], "1.0.0-rc.1", "1.0.0"),
    (["3", "4"], "3", "5"),
])
def test_the_next_version_follows_the_latest(taken: list[str], latest: str | None,
                                             expected: str) -> None:
    """The next version adds one to the latest one's last number, skipping taken ones."""
    assert next_version(taken, latest) == expected


def test_versions_count_on_from_a_given_one(store: Store) -> None:
    """Without --version a release takes the next version after the newest release's."""
    store.releases.create(FILES, actor="a", version="1.4.0")
    second = store.releases.create({**FILES, "README.md": b"hi"}, actor="a")
    assert second.version == "1.4.1"
    assert [r.version for r in store.releases.all()] == ["1.4.1", "1.4.0"]


def test_a_release_is_found_by_version_or_id_prefix(store: Store) -> None:
    """Version, full id and any unique prefix of 4+ hex digits name the same release."""
    made = store.releases.create(FILES, actor="a", version="7")
    for name in ("7", made.id, made.id[:4], made.id[:10].upper()):
        assert store.releases.get(name).id == made.id
    with pytest.raises(ReleaseNotFoundError, match="no release"):
        store.releases.get(made.id[:3])  # too short to be a prefix
    with pytest.raises(ReleaseNotFoundError, match="no release 'v9'"):
        store.releases.get("v9")


def test_an_ambiguous_prefix_names_the_candidates(store: Store) -> None:
    """A 4-digit prefix two ids share is refused, listing both releases."""
    seen: dict[str, bytes] = {}
    for i in range(100_000):  # a birthday pair of 16-bit prefixes turns up in a few hundred
        content = str(i).encode()
        rid = release_id({"tallinn.toml": hashlib.sha256(content).hexdigest()})
        if rid[:4] in seen:
            break
        seen[rid[:4]] = content
    first = store.releases.create({"tallinn.toml": seen[rid[:4]]}, actor="a")
    second = store.releases.create({"tallinn.toml": content}, actor="a")
    assert first.id[:4] == second.id[:4] == rid[:4]
    with pytest.raises(ReleaseNotFoundError, match="ambiguous") as caught:
        store.releases.get(rid[:4])
    assert f"{first.label}" in str(caught.value)
    assert f"{second.label}" in str(caught.value)


def test_a_blob_changed_by_hand_is_detected_on_read(store: Store) -> None:
    """Reading a release checks each blob against its hash and refuses a changed one."""
    made = store.releases.create(FILES, actor="a")
    digest = store.releases.manifest(made.id)["commands/review.md"]
    with store.engine.begin() as connection:
        connection.execute(update(blobs).where(blobs.c.hash == digest).values(content=b"evil"))
    with pytest.raises(StoreError, match="does not match its hash"):
        store.releases.files(made.id)


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.md", "commands/../../x", "a\\b.md",
                                  "commands//x.md", "./x.md", ""])
def test_paths_outside_the_library_are_refused(path: str) -> None:
    """A release path is relative, POSIX and stays inside the library."""
    with pytest.raises(ReleaseError, match="invalid file path"):
        check_path(path)


def test_bad_input_writes_nothing(store: Store) -> None:
    """An empty release, a bad path, an empty force reason: refused, no row written."""
    for files, options in (({}, {}), ({"../x": b"1"}, {}), (FILES, {"force_reason": "  "}),
                           (FILES, {"version": "latest"})):
        with pytest.raises(ReleaseError):
            store.releases.create(files, actor="a", **options)  # type: ignore[arg-type]
    assert counts(store) == {"blobs": 0, "releases": 0, "release_files": 0, "audit_log": 0}


def test_a_forced_release_records_its_reason(store: Store) -> None:
    """--force with a reason is kept with the release and in its audit entry."""
    made = store.releases.create(FILES, actor="a", force_reason="perf gate flaky", report="{}")
    assert (made.forced, made.force_reason) == (True, "perf gate flaky")
    assert store.releases.report(made.id) == "{}"
    [entry] = store.audit_log.entries()
    assert (entry.action, entry.subject, entry.reason) == ("release", "1", "perf gate flaky")


def test_concurrent_releases_share_blobs_and_number_in_turn(store: Store, store_url: str) -> None:
    """Writers releasing at once, with files in common, all succeed: versions 1..n, each
    shared blob stored once, one audit entry each."""
    outcomes = race(store_url, 4, lambda opened, i: opened.releases.create(
        {**FILES, "README.md": f"writer {i}".encode()}, actor=f"w{i}"))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sorted(r.version for r in store.releases.all()) == ["1", "2", "3", "4"]
    assert counts(store) == {"blobs": 3 + 4, "releases": 4, "release_files": 16,
                             "audit_log": 4}
    assert store.audit_log.verify().ok
