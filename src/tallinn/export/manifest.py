"""The manifest an export writes beside its files: `.tallinn-export/<target>.json`.

    {"tallinn": "0.1.0", "target": "claude-skills",
     "agent": "Claude Code", "agent_version": "2.1.332",
     "library": {"name": "acme", "content_hash": "<sha-256>"},
     "files": {".claude/skills/code-review/SKILL.md": "<sha-256>", ...}}

It says which files the export owns: a later export of the target replaces or removes those,
and nothing else. One folder can hold the exports of several targets (a repository's root holds
`.claude/`, `.github/prompts/` and `.gemini/` side by side), each with its own manifest. A
manifest read back is hostile input: it is read through the library's one read path
(`tallinn.library.files`: a regular file, at most `MAX_MANIFEST_BYTES`, UTF-8), never through a
symbolic link, and every path it names must stay inside the folder.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tallinn.export._base import ExportError
from tallinn.library.diagnostics import Diagnostic
from tallinn.library.files import LibraryFiles, Limits, decode

MANIFESTS = ".tallinn-export"
_HASH = re.compile(r"[0-9a-f]{64}")
_TARGET = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A manifest holds a path and a hash per file, about 120 bytes: 16 MiB is 100,000s of files.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def manifest_file(target: str) -> str:
    """Given `claude-skills`, return `.tallinn-export/claude-skills.json`."""
    return f"{MANIFESTS}/{target}.json"


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
            or path.split("/")[0] == MANIFESTS):
        raise ExportError(where, f"unsafe path {path!r}: it must be relative and stay inside")
    return path


def read(folder: Path, target: str, *, max_bytes: int = MAX_MANIFEST_BYTES) -> Manifest | None:
    """The manifest of `target`'s export in `folder`, or None when there is none. Raises
    `ExportError` with the place of the problem for a manifest that cannot be read (a link, a
    FIFO, larger than `max_bytes`, not UTF-8) or is not what an export writes."""
    rel = manifest_file(target)
    path = folder / rel
    for step in (folder / MANIFESTS, path):
        if step.is_symlink():
            raise ExportError(str(step), "is a symbolic link; refusing to read it")
    if not path.exists():
        return None
    files = LibraryFiles(folder, Limits(max_file_bytes=max_bytes))
    raw = files.read_bytes(rel)
    text = raw if isinstance(raw, Diagnostic) else decode(raw, rel)
    if isinstance(text, Diagnostic):
        raise ExportError(str(path), text.message, text.line, text.col)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportError(str(path), f"not valid JSON: {exc.msg}", exc.lineno, exc.colno) \
            from None
    except RecursionError:
        raise ExportError(str(path), "not valid JSON: nested too deeply") from None
    record = _parse(data, str(path))
    if record.target != target:
        raise ExportError(str(path), f"names target {record.target!r}, not {target!r}")
    return record


def read_all(folder: Path, *, max_bytes: int = MAX_MANIFEST_BYTES) -> list[Manifest]:
    """Every export manifest in `folder`, by target name (each read as `read` does)."""
    where = folder / MANIFESTS
    if where.is_symlink():
        raise ExportError(str(where), "is a symbolic link; refusing to read it")
    if not where.is_dir():
        return []
    found = []
    for path in sorted(where.iterdir()):
        target = path.name.removesuffix(".json")
        if not path.name.endswith(".json") or not _TARGET.fullmatch(target):
            raise ExportError(str(path), "is not an export manifest (<target>.json)")
        record = read(folder, target, max_bytes=max_bytes)
        if record is not None:
            found.append(record)
    return found


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
