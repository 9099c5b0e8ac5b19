"""Errors the state store raises.

TallinnError
└── StoreError              the store could not be opened or an operation failed
    ├── TokenExistsError    an active token already has that name
    └── TokenNameError      a token name is empty, too long or has odd characters
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
