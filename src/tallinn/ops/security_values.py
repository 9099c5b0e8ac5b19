"""What a security event may hold, checked without the database layer: the store
(`tallinn.ops.security_events`) and the driver-only writer (`tallinn.ops.verifier`) record the
same values.

    kind, client, detail = event_values("auth_failure", "10.0.0.7", "bad token")
"""

from __future__ import annotations

import re

KIND_MAX = 64
CLIENT_MAX = 255
DETAIL_MAX = 2000
_KIND = re.compile(r"[a-z][a-z0-9_.]*")


def event_values(kind: str, client: str | None, detail: str) -> tuple[str, str | None, str]:
    """`kind`, `client` and `detail` as they are stored: `kind` must be a short lowercase
    word (`auth_failure`, `path_traversal`, ...), else ValueError. `client` and `detail` may
    come from an attacker: they are cut to 255 and 2000 characters and NUL characters are
    replaced, so recording never fails on their content."""
    if len(kind) > KIND_MAX or not _KIND.fullmatch(kind):
        raise ValueError(f"event kind must be a short word like 'auth_failure', got {kind!r}")
    return kind, None if client is None else _clean(client, CLIENT_MAX), _clean(detail, DETAIL_MAX)


def _clean(value: str, limit: int) -> str:
    return value[:limit].replace("\x00", "\ufffd")
