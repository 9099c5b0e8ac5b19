"""Which release a client is served: a sticky bucket per (rollout, client).

A client's bucket is a number in 0..99 drawn from a BLAKE2b hash of the rollout id and the
client's identity; the client is on the candidate while its bucket is below the step's share.
Raising the share from 10 to 50 therefore only adds clients (buckets 10..49): nobody who had
the candidate goes back to the stable release, and a new rollout id deals the buckets anew.

The identity of a client, in this order (the first that is known wins):

1. the name of its bearer token, in production (`token:ci-bot`);
2. else its `X-Tallinn-Client` header (`header:laptop-7`), at most 128 characters of
   letters, digits and `._~:@/+=-`; anything else there raises `ClientHeaderError`;
3. else the MCP client info it sent at initialisation, with its address
   (`client:claude-code/1.0.3@10.0.0.7`); each part is cut to 64 characters and characters
   outside the header's set become `_`, since that info is the client's own free text.

The source is part of the identity, so a header cannot pose as a token.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from tallinn.ops.rollout.errors import ClientHeaderError

BUCKETS = 100
MAX_HEADER_CHARS = 128
MAX_INFO_CHARS = 64
HEADER_NAME = "X-Tallinn-Client"
ALLOWED = r"A-Za-z0-9._~:@/+=\-"
HEADER_VALUE = re.compile(f"[{ALLOWED}]+")
NOT_ALLOWED = re.compile(f"[^{ALLOWED}]")
# A personalisation string keeps these buckets apart from any other use of BLAKE2b on the
# same inputs.
PERSON = b"tallinn-rollout"


class IdentitySource(StrEnum):
    """Where a client's identity came from, in the order they are tried."""

    TOKEN = "token"  # noqa: S105 (the name of a source, not a secret)
    HEADER = "header"
    CLIENT = "client"


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who a client is, for its bucket: `ClientIdentity(IdentitySource.TOKEN, "ci-bot")`.

    `str()` gives `token:ci-bot`, the text that is hashed (and may be logged).
    """

    source: IdentitySource
    value: str

    def __str__(self) -> str:
        return f"{self.source}:{self.value}"


def client_identity(
    *,
    token_name: str | None = None,
    header: str | None = None,
    client_name: str | None = None,
    client_version: str | None = None,
    address: str | None = None,
    max_header_chars: int = MAX_HEADER_CHARS,
    max_info_chars: int = MAX_INFO_CHARS,
) -> ClientIdentity:
    """Given what the server knows of a request's client, return its identity.

    `token_name` is the verified token's name, given in production only. A `header` that is
    empty or only spaces counts as absent; one that is too long or has other characters raises
    `ClientHeaderError` (the server answers 400 and names the header). Client name, version
    and address are cut to `max_info_chars` each. With nothing known, the identity is
    `client:unknown/unknown@local`: all such clients share one bucket.
    """
    if token_name:
        return ClientIdentity(IdentitySource.TOKEN, token_name)
    if header is not None and header.strip():
        value = header.strip()
        if len(value) > max_header_chars:
            raise ClientHeaderError(value, f"longer than {max_header_chars} characters")
        if not HEADER_VALUE.fullmatch(value):
            bad = NOT_ALLOWED.search(value)
            assert bad is not None  # the full match failed, so some character is not allowed
            raise ClientHeaderError(value, f"character {bad[0]!r} at {bad.start() + 1} is not "
                                    "one of the letters, digits and ._~:@/+=-")
        return ClientIdentity(IdentitySource.HEADER, value)
    name = _tidy(client_name, max_info_chars) or "unknown"
    version = _tidy(client_version, max_info_chars) or "unknown"
    where = _tidy(address, max_info_chars) or "local"
    return ClientIdentity(IdentitySource.CLIENT, f"{name}/{version}@{where}")


def bucket(rollout_id: str, identity: ClientIdentity | str) -> int:
    """Given a rollout id and a client, return the client's bucket, 0..99, the same every time.

    The rollout id is length-prefixed, so `("ab", "c")` and `("a", "bc")` hash apart.
    """
    rollout = rollout_id.encode("utf-8")
    key = len(rollout).to_bytes(4, "big") + rollout + str(identity).encode("utf-8")
    digest = hashlib.blake2b(key, digest_size=8, person=PERSON).digest()
    # 2**64 is not a multiple of 100; the bias this leaves is below 1e-17 per bucket.
    return int.from_bytes(digest, "big") % BUCKETS


def on_candidate(rollout_id: str, identity: ClientIdentity | str, share: int) -> bool:
    """Whether the client gets the candidate at `share` percent: its bucket is below it."""
    return bucket(rollout_id, identity) < share


def _tidy(text: str | None, limit: int) -> str:
    """Given free text from a client (`"Claude Code 1.0"`), return `"Claude_Code_1.0"`."""
    if not text:
        return ""
    return NOT_ALLOWED.sub("_", text[:limit].strip())
