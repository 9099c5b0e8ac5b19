"""The store in narrow parts: each part and the whole `Store` offer the protocols consumers take."""

from __future__ import annotations

from pathlib import Path

import pytest

from tallinn.ops import types
from tallinn.ops.checkout import check_out
from tallinn.ops.errors import ReleaseError
from tallinn.ops.release_diff import unified
from tallinn.ops.store import Store


def test_the_store_and_its_parts_offer_the_narrow_protocols(store: Store) -> None:
    """Each consumer's protocol is met by the part that does the work, and by `Store`."""
    assert isinstance(store, types.HealthSource)
    assert isinstance(store, types.TokenVerifier)
    assert isinstance(store, types.TokenAdmin)
    assert isinstance(store, types.SecurityEventLog)
    assert isinstance(store.tokens, types.TokenVerifier)
    assert isinstance(store.tokens, types.TokenAdmin)
    assert isinstance(store.security_events, types.SecurityEventLog)
    assert isinstance(store.releases, types.ReleaseArchive)
    assert isinstance(store.channels, types.ChannelPointers)
    assert isinstance(store.audit_log, types.AuditTrail)
    assert not isinstance(store.releases, types.TokenVerifier)


def test_the_parts_share_one_database(store: Store) -> None:
    """A token made through the store is seen by its token part: one engine, one database."""
    token = store.create_token("ci")
    assert store.tokens.verify_token(token) == "ci"
    store.record_event("auth_failure", client="10.0.0.1")
    assert [e.kind for e in store.security_events.events()] == ["auth_failure"]


def test_checkout_refuses_a_file_in_the_way_and_fills_an_empty_folder(tmp_path: Path) -> None:
    """A target that is a file is refused; an empty folder is filled in place."""
    in_the_way = tmp_path / "file"
    in_the_way.write_text("x")
    with pytest.raises(ReleaseError, match="not a folder"):
        check_out({"a.md": b"1"}, in_the_way)
    empty = tmp_path / "empty"
    empty.mkdir()
    check_out({"commands/a.md": b"1"}, empty)
    assert (empty / "commands" / "a.md").read_bytes() == b"1"


def test_a_checkout_with_a_hostile_path_writes_nothing(tmp_path: Path) -> None:
    """A path leading out of the folder stops the checkout and leaves no folder behind."""
    with pytest.raises(ReleaseError, match="invalid file path"):
        check_out({"a.md": b"1", "../escape.md": b"2"}, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_text_diff_names_binary_files_and_a_missing_final_newline() -> None:
    """Bytes that are not UTF-8 are named, not shown; a last line without newline is marked."""
    contents = {("a", "x.bin"): b"\xff\x00", ("b", "x.bin"): b"\xfe",
                ("a", "t.md"): b"one\n", ("b", "t.md"): b"one\ntwo"}
    text = unified({"x.bin": "1", "t.md": "1"}, {"x.bin": "2", "t.md": "2"}, ("1", "2"),
                   lambda side, path: contents[side, path])
    assert "Binary file x.bin differs" in text
    assert "+two\n\\ No newline at end of file" in text
