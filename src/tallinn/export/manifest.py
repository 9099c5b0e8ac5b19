"""The manifest an export writes beside its files: `.tallinn-export.json`.

    {"tallinn": "0.1.0", "target": "claude-skills",
     "agent": "Claude Code", "agent_version": "2.1.332",
     "library": {"name": "acme", "content_hash": "<sha-256>"},
     "files": {".claude/skills/code-review/SKILL.md": "<sha-256>", ...}}

It says which files the export owns: a later export replaces or removes those, and nothing
else. A manifest read back is hostile input: every path must stay inside the folder.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tallinn.export._base import ExportError

MANIFEST = ".tallinn-export.json"
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Manifest:
    """What one export wrote: its target, versions, source hash and each file's hash."""

    tallinn: str
    target: str
    agent: str
    agent_version: str
    library_name: str
    content_hash: str
    files: Mapping[str, str]

    def dumps(self) -> str:
        data = {
            "tallinn": self.tallinn,
            "target": self.target,
            "agent": self.agent,
            "agent_version": self.agent_version,
            "library": {"name": self.library_name, "content_hash": self.content_hash},
            "files": dict(sorted(self.files.items())),
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_path(path: str, where: str) -> str:
    """Given `a/b.md`, return it; raise `ExportError` for a path that is absolute, climbs out
    (`..`), is empty or is not in POSIX form: a manifest or target must not reach outside."""
    pure = PurePosixPath(path)
    if (not path or "\\" in path or "\0" in path or pure.is_absolute()
            or any(part in ("", ".", "..") for part in path.split("/"))
            or path == MANIFEST):
        raise ExportError(where, f"unsafe path {path!r}: it must be relative and stay inside")
    return path


def read(folder: Path) -> Manifest | None:
    """The manifest in `folder`, or None when there is none. Raises `ExportError` with the
    place of the problem for a manifest that is not what an export writes."""
    path = folder / MANIFEST
    if not path.is_file() or path.is_symlink():
        if path.is_symlink():
            raise ExportError(str(path), "the manifest is a symbolic link; refusing to read it")
        return None
    text = path.read_bytes().decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(str(path), f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) \
            from None
    return _parse(data, str(path))


def _parse(data: object, where: str) -> Manifest:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ExportError(where, f"not a Tallinn export manifest: {what}")

    need(isinstance(data, dict), "expected a JSON object")
    assert isinstance(data, dict)
    fields = {}
    for key in ("tallinn", "target", "agent", "agent_version"):
        need(isinstance(data.get(key), str), f"'{key}' must be a string")
        fields[key] = data[key]
    library = data.get("library")
    need(isinstance(library, dict), "'library' must be an object")
    assert isinstance(library, dict)
    need(isinstance(library.get("name"), str), "'library.name' must be a string")
    need(isinstance(library.get("content_hash"), str)
         and bool(_HASH.fullmatch(library["content_hash"])),
         "'library.content_hash' must be a SHA-256 in hex")
    files = data.get("files")
    need(isinstance(files, dict), "'files' must be an object")
    assert isinstance(files, dict)
    for name, digest in files.items():
        check_path(name, where)
        need(isinstance(digest, str) and bool(_HASH.fullmatch(digest)),
             f"the hash of {name!r} must be a SHA-256 in hex")
    return Manifest(fields["tallinn"], fields["target"], fields["agent"],
                    fields["agent_version"], library["name"], library["content_hash"],
                    dict(files))
