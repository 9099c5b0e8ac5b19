"""Errors the state store raises.

TallinnError
└── StoreError              the store could not be opened or an operation failed
    ├── TokenExistsError    an active token already has that name
    └── TokenNameError      a token name is empty, too long or has odd characters
ReleaseError                a release, channel or audit request cannot be done as asked
├── ReleaseNotFoundError    no release has that version or id prefix (or several ids do)
├── ReleaseExistsError      a release holds this content already, or has this version
└── ChannelConflictError    the channel moved since it was read: nothing changed
"""

from __future__ import annotations

from tallinn.library.errors import TallinnError


class StoreError(TallinnError):
    """The store failed: `StoreError("cannot open store sqlite:///x.db: unable to open file")`.

    `code` names the condition for `/ready` and logs: `store_unavailable` (the database does
    not answer), `store_missing` (the SQLite file vanished while serving), `store_full` (its
    file system is full), `store_read_only` (it cannot be written), `store_path` (the path
    cannot exist).
    """

    def __init__(self, message: str, code: str = "store_unavailable") -> None:
        super().__init__(message)
        self.code = code


class TokenExistsError(StoreError):
    """An active token has this name: revoke it first, or pick another name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an active token named '{name}' already exists (revoke it first)")
        self.name = name


class TokenNameError(StoreError):
    """A token name is not usable: `TokenNameError("ci bot", "no spaces")`."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid token name {name!r}: {reason}")
        self.name = name


class ReleaseError(TallinnError):
    """A release, channel or audit request that cannot be done as asked; nothing was written.

    `ReleaseError("--reason must say why, not be empty")`
    """


class ReleaseNotFoundError(ReleaseError):
    """No release is named so: `ReleaseNotFoundError("no release 'v9' (versions: 1, 2)")`."""


class ReleaseExistsError(ReleaseError):
    """The content or the version is taken: "release 3 (ab12cd) already holds this content"."""


class ChannelConflictError(ReleaseError):
    """Someone moved the channel first: "channel production moved to 4 by alice at ...;
    nothing changed"."""
