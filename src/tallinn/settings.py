"""Process settings from the environment, read once at the edge (CLI, server).

The library location follows the 2025 system: `--library`, else `TALLINN_LIBRARY`, else
`PROJECT_ROOT`, else the starter library bundled with the package.
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tallinn.library.errors import TallinnError

PRODUCTION_VALUES = frozenset({"production", "prod"})


def starter_path() -> Path:
    """The bundled starter library, inside the installed package."""
    return Path(str(resources.files("tallinn") / "starter"))


class SettingsError(TallinnError):
    """An environment variable has a value Tallinn cannot use:
    `SettingsError("TALLINN_NO_CACHE='nope': Input should be a valid boolean")`."""


class Settings(BaseModel):
    """Environment variables Tallinn reads, validated: `Settings()` reads them at that moment.

    Each field's alias is its variable. Values given by name win over the environment. A
    variable set to the empty string (or only spaces) counts as unset, as in most shells'
    `VAR= command`: `TALLINN_NO_CACHE=` keeps the cache, `TALLINN_LIBRARY=` falls through to
    `PROJECT_ROOT`.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    library: Path | None = Field(default=None, alias="TALLINN_LIBRARY")
    project_root: Path | None = Field(default=None, alias="PROJECT_ROOT")
    env: str = Field(default="", alias="TALLINN_ENV")
    claude_code_env: str = Field(default="", alias="CLAUDE_CODE_ENV")
    store_url: str | None = Field(default=None, alias="TALLINN_STORE_URL")
    cache_root: Path | None = Field(default=None, alias="TALLINN_CACHE_DIR")
    no_cache: bool = Field(default=False, alias="TALLINN_NO_CACHE")
    # Processes that share a large load (`tallinn validate`); unset: one per CPU; 1: one.
    workers: int | None = Field(default=None, alias="TALLINN_WORKERS", ge=1, le=64)
    allowed_hosts: str | None = Field(default=None, alias="TALLINN_ALLOWED_HOSTS")
    actor: str | None = Field(default=None, alias="TALLINN_ACTOR", max_length=255)
    # Signs the dashboard's session and CSRF cookies: the same on every replica, so a sign-in
    # works on all of them and outlives a restart.
    dashboard_secret: str | None = Field(default=None, alias="TALLINN_DASHBOARD_SECRET",
                                         min_length=32, repr=False)
    # How long a dashboard sign-in lasts, in seconds (8 hours; at most a week).
    dashboard_session: int = Field(default=8 * 3600, alias="TALLINN_DASHBOARD_SESSION",
                                   ge=1, le=7 * 24 * 3600)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}={e['input']!r}: {e['msg']}" for e in exc.errors()
            )
            raise SettingsError(f"invalid environment: {problems}") from None

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, values: Any) -> Any:
        names = {field.alias for field in cls.model_fields.values()}
        found = {
            name: value for name, value in os.environ.items() if name in names and value.strip()
        }
        return {**found, **values} if isinstance(values, dict) else values

    @property
    def production(self) -> bool:
        return (
            self.env.lower() in PRODUCTION_VALUES
            or self.claude_code_env.lower() in PRODUCTION_VALUES
        )

    def library_path(self, explicit: Path | None = None) -> Path:
        for candidate in (explicit, self.library, self.project_root):
            if candidate is not None:
                return candidate
        return starter_path()

    def cache_dir(self, library: Path) -> Path | None:
        """Where loads of `library` keep parsed front matter; None for no cache.

        `<library>/.tallinn/cache`, beside the state store, unless `TALLINN_CACHE_DIR` names
        another folder (for a library on a read-only mount); none with `TALLINN_NO_CACHE=1`,
        and none for the bundled starter, which is small and may sit in a read-only install.
        """
        if self.no_cache:
            return None
        root = library.resolve()
        if self.cache_root is not None:
            digest = hashlib.blake2b(str(root).encode("utf-8"), digest_size=8).hexdigest()
            return self.cache_root / f"{root.name}-{digest}"
        if root == starter_path().resolve():
            return None
        return root / ".tallinn" / "cache"
