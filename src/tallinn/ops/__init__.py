"""Operations: the state store (tokens, security events, releases, channels, the audit log),
its schema migrations, and the rollout core (`tallinn.ops.rollout`, pure logic).

The store is an adapter over SQLAlchemy and Alembic; the library core never imports it. The
names below are loaded when first used, so `import tallinn.ops.rollout` loads no database code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tallinn.ops.errors import StoreError, TokenExistsError, TokenNameError
    from tallinn.ops.records import SecurityEvent, TokenInfo
    from tallinn.ops.store import Store, open_store

_WHERE = {
    "StoreError": "tallinn.ops.errors",
    "TokenExistsError": "tallinn.ops.errors",
    "TokenNameError": "tallinn.ops.errors",
    "SecurityEvent": "tallinn.ops.records",
    "TokenInfo": "tallinn.ops.records",
    "Store": "tallinn.ops.store",
    "open_store": "tallinn.ops.store",
}

__all__ = [
    "SecurityEvent",
    "Store",
    "StoreError",
    "TokenExistsError",
    "TokenInfo",
    "TokenNameError",
    "open_store",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tallinn.ops' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
