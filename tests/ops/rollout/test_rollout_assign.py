"""Client assignment: sticky, even buckets from (rollout id, client identity)."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from tallinn.ops.rollout.assign import (
    BUCKETS,
    ClientIdentity,
    IdentitySource,
    bucket,
    client_identity,
    on_candidate,
)
from tallinn.ops.rollout.errors import ClientHeaderError

CLIENTS = [f"header:client-{number}" for number in range(10_000)]


@pytest.mark.parametrize("share", [1, 5, 10, 25, 50, 75, 90, 99, 100])
def test_each_share_is_within_two_points_of_its_target(share: int) -> None:
    """Over 10,000 synthetic clients the share on the candidate is within 2 points of target."""
    on = sum(on_candidate("rollout-1", client, share) for client in CLIENTS)
    assert abs(on / len(CLIENTS) * 100 - share) <= 2


def test_buckets_are_spread_evenly() -> None:
    """No bucket of the 100 holds more than twice or less than half its fair 100 clients."""
    counts = Counter(bucket("rollout-1", client) for client in CLIENTS)
    assert set(counts) == set(range(BUCKETS))
    assert min(counts.values()) >= 50
    assert max(counts.values()) <= 200


def test_raising_the_share_never_moves_a_client_back() -> None:
    """A client on the candidate at one step is on it at every later, larger step."""
    steps = (1, 10, 50, 100)
    for client in CLIENTS:
        served = [on_candidate("rollout-1", client, share) for share in steps]
        assert served == sorted(served), client  # False... then True..., never back
    assert all(on_candidate("rollout-1", client, 100) for client in CLIENTS)
    assert not any(on_candidate("rollout-1", client, 0) for client in CLIENTS)


def test_a_different_rollout_id_reshuffles_the_clients() -> None:
    """The 10% on the candidate in one rollout are mostly others in the next."""
    first = {client for client in CLIENTS if on_candidate("rollout-1", client, 10)}
    second = {client for client in CLIENTS if on_candidate("rollout-2", client, 10)}
    assert abs(len(second) - 1000) <= 200
    # Independent draws share about 10% of the first group; the same group would share 100%.
    assert len(first & second) / len(first) < 0.2


def test_the_bucket_is_a_keyed_blake2b_and_stable_across_processes() -> None:
    """The bucket is computed from BLAKE2b (not Python's salted hash), so it never changes."""
    key = len(b"r1").to_bytes(4, "big") + b"r1" + b"token:ci"
    expected = int.from_bytes(
        hashlib.blake2b(key, digest_size=8, person=b"tallinn-rollout").digest(), "big") % 100
    assert bucket("r1", "token:ci") == expected
    assert bucket("r1", ClientIdentity(IdentitySource.TOKEN, "ci")) == expected


def test_the_rollout_id_is_length_prefixed() -> None:
    """Shifting characters from the rollout id into the client gives other buckets."""
    same = sum(bucket(f"r{n}", "x") == bucket("r", f"{n}x") for n in range(100))
    assert same < 10  # about 1 by chance; unprefixed keys would make all 100 equal


def test_the_identity_order_is_token_then_header_then_client_info() -> None:
    """The first known of token name, header, client info with address is the identity."""
    everything = {"token_name": "ci-bot", "header": "laptop-7", "client_name": "claude-code",
                  "client_version": "1.0.3", "address": "10.0.0.7"}
    assert str(client_identity(**everything)) == "token:ci-bot"
    assert str(client_identity(**{**everything, "token_name": None})) == "header:laptop-7"
    assert str(client_identity(**{**everything, "token_name": None, "header": "  "})) == \
        "client:claude-code/1.0.3@10.0.0.7"
    assert str(client_identity()) == "client:unknown/unknown@local"


def test_a_header_cannot_pose_as_a_token() -> None:
    """A header equal to a token's name is still another identity, in another bucket family."""
    token = client_identity(token_name="ci-bot")
    header = client_identity(header="ci-bot")
    assert token != header
    assert str(header) == "header:ci-bot"


@pytest.mark.parametrize(("header", "reason"), [
    ("x" * 129, "longer than 128 characters"),
    ("two words", "character ' ' at 4 is not one of"),
    ("evil\r\nX-Other: 1", "character '\\r' at 5 is not one of"),
    ("naïve", "character 'ï' at 3 is not one of"),
    ("a\x00b", "character '\\x00' at 2 is not one of"),
])
def test_a_hostile_header_is_refused_with_a_reason(header: str, reason: str) -> None:
    """Too long, spaces, control or non-ASCII characters raise ClientHeaderError on one line."""
    with pytest.raises(ClientHeaderError) as caught:
        client_identity(header=header, client_name="c")
    message = str(caught.value)
    assert message.startswith("X-Tallinn-Client '")
    assert reason in message
    assert "\n" not in message
    assert "\r" not in message
    assert len(message) < 200


def test_the_header_bound_is_a_setting() -> None:
    """`max_header_chars` moves the length limit."""
    assert str(client_identity(header="a" * 200, max_header_chars=200)) == "header:" + "a" * 200
    with pytest.raises(ClientHeaderError, match="longer than 8 characters"):
        client_identity(header="a" * 9, max_header_chars=8)


def test_free_text_client_info_is_cut_and_tidied() -> None:
    """Client name and version are cut to 64 characters and odd characters become `_`."""
    identity = client_identity(client_name="Claude Code\n" + "x" * 100, client_version="1.0 β",
                               address="::1")
    name, rest = identity.value.split("/", 1)
    assert name.startswith("Claude_Code_x")
    assert len(name) == 64
    assert rest == "1.0__@::1"


def test_the_client_info_bound_is_a_setting() -> None:
    """`max_info_chars` moves the cut of each part of the client info."""
    identity = client_identity(client_name="abcdef", client_version="123456", address="10.0.0.7",
                               max_info_chars=3)
    assert identity.value == "abc/123@10."
