"""Operations: the state store (API tokens, security events) and its schema migrations.

An adapter over SQLAlchemy and Alembic; the library core never imports it.
"""

from tallinn.ops.errors import StoreError, TokenExistsError, TokenNameError
from tallinn.ops.records import SecurityEvent, TokenInfo
from tallinn.ops.store import Store, open_store

__all__ = [
    "SecurityEvent",
    "Store",
    "StoreError",
    "TokenExistsError",
    "TokenInfo",
    "TokenNameError",
    "open_store",
]
