"""What a release is made of: the library's own files, read through the library's read path,
and the git commit they came from.

A release holds `tallinn.toml`, the `README*` files at the top of the library, and every file
under `commands/`, `components/` and `tests/` (prompt tests and their snapshots): what the
loader, the gates and the server read. Names that start with a dot are never read (so neither
`.git/` nor `.tallinn/`, where the state store, the caches and the security baseline live),
nor are `node_modules/` and `__pycache__/` folders. Each file is read with
`LibraryFiles.read_bytes`, within the library's `[limits] max_file_bytes`; a file that cannot
be read stops the release with its path, rather than leaving it out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tallinn.library.diagnostics import Diagnostic
from tallinn.library.files import LibraryFiles, Limits

CONFIG_FILE = "tallinn.toml"
FOLDERS = ("commands", "components", "tests")
SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__"})
GIT_TIMEOUT_S = 10


@dataclass(frozen=True, slots=True)
class GitState:
    """The commit checked out where the library is, and whether its files differ from it."""

    commit: str | None
    dirty: bool | None


def library_files(root: Path, limits: Limits | None = None,
                  ) -> tuple[dict[str, bytes], list[Diagnostic]]:
    """Given a library folder, return `{relative posix path: bytes}` of what a release holds,
    and the files that could not be read."""
    reader = LibraryFiles(root, limits or Limits())
    candidates: list[str] = []
    problems: list[Diagnostic] = []
    try:
        top = sorted(entry.name for entry in os.scandir(root))
    except OSError as exc:
        return {}, [Diagnostic("V111", f"folder not read: {exc.strerror or exc}", str(root))]
    candidates.extend(name for name in top
                      if name == CONFIG_FILE or name.lower().startswith("readme"))
    for folder in FOLDERS:
        paths, walked = reader.walk(folder, lambda name: not name.startswith("."),
                                    SKIPPED_FOLDERS)
        candidates.extend(paths)
        problems.extend(walked)
    files: dict[str, bytes] = {}
    for rel in candidates:
        content = reader.read_bytes(rel)
        if isinstance(content, Diagnostic):
            problems.append(content)
        else:
            files[rel] = content
    return files, problems


def git_state(root: Path) -> GitState:
    """The commit at HEAD of the git work tree holding `root`, and whether the library's
    files have uncommitted changes; `GitState(None, None)` outside git (or without git)."""
    git = shutil.which("git")
    if git is None:
        return GitState(None, None)

    def run(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                [git, "-C", str(root), *arguments], capture_output=True, text=True,
                timeout=GIT_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = run("rev-parse", "--verify", "HEAD")
    if commit is None:
        return GitState(None, None)
    status = run("status", "--porcelain", "--untracked-files=normal", "--", ".")
    return GitState(commit.strip(), None if status is None else bool(status.strip()))
