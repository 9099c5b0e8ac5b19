"""Write a release's files into a folder, whole or not at all.

The files go into a fresh folder beside the target (`.<name>.checkout-<random>`), which is
renamed into place once every file is written and flushed: a process killed halfway leaves at
most that hidden folder, never a half-written target. A target that holds anything is refused
unless `force`, which renames it aside first and removes it once the new one is in place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tallinn.ops.errors import ReleaseError
from tallinn.ops.releases import check_path


def check_out(files: Mapping[str, bytes], target: Path, *, force: bool = False) -> None:
    """Write `files` (`{relative posix path: bytes}`) to the folder `target`, byte for byte."""
    if target.exists() and not target.is_dir():
        raise ReleaseError(f"{target} exists and is not a folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ReleaseError(f"{target} is not empty; pass --force to replace what it holds")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.checkout-", dir=target.parent))
    try:
        for rel, content in sorted(files.items()):
            path = staging.joinpath(*check_path(rel).split("/"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("xb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
        staging.chmod(0o755)  # mkdtemp makes it private; a checkout is an ordinary folder
        old: Path | None = None
        if target.is_dir() and any(target.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        elif target.is_dir():
            target.rmdir()
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
