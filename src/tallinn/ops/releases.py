"""Immutable releases of a library: its files as content-addressed blobs, and who made it.

    release = releases.create(files, actor="alice@ci", notes="new review prompt",
                              report=readiness_json)
    releases.get("3").id == releases.get(release.id[:6]).id
    releases.files(release.id)            # {"commands/review.md": b"...", ...}

A release's id is the SHA-256 over its sorted `(path, blob hash)` list (`release_id`), so the
same files give the same id wherever they are released; releasing content an existing release
holds is refused. Each file's bytes are a blob named by its own SHA-256, stored once however
many releases hold it. A release is written in one transaction with its audit entry: a process
killed at any moment leaves the whole release or none.

A release is named by its version (`3`, `1.4.0`, `v2`) or by a prefix of its id of at least
`MIN_PREFIX` hex digits; a version wins over an id prefix that reads the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from tallinn.ops.audit_log import AuditLog
from tallinn.ops.database import Clock, Database, utcnow
from tallinn.ops.errors import ReleaseError, ReleaseExistsError, ReleaseNotFoundError, StoreError
from tallinn.ops.records import Release
from tallinn.ops.schema import blobs, release_files, releases

MIN_PREFIX = 4
VERSION_MAX = 64
PATH_MAX = 1024
REASON_MAX = 2000
NOTES_MAX = 10_000
# Parameters per statement stay well below SQLite's limit (32766) and PostgreSQL's (65535).
BATCH = 500
_VERSION = re.compile(r"v?\d+(?:\.\d+)*(?:[-+][0-9A-Za-z][0-9A-Za-z.-]*)?")
_HEX = re.compile(r"[0-9a-f]+")
_LAST_NUMBER = re.compile(r"(\d+)(?=\D*$)")

Step = Callable[[str], None]


def blob_hash(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def release_id(manifest: Mapping[str, str]) -> str:
    """Given `{path: blob hash}`, return the release id: SHA-256 over `path NUL hash LF` lines
    in path order."""
    digest = hashlib.sha256()
    for path in sorted(manifest):
        digest.update(f"{path}\0{manifest[path]}\n".encode())
    return digest.hexdigest()


def check_version(version: str) -> str:
    """`version` when it is a version string (`3`, `1.4.0`, `v2`, `1.0.0-rc.1`), else raise."""
    if len(version) > VERSION_MAX or not _VERSION.fullmatch(version):
        raise ReleaseError(
            f"invalid version {version!r}: a version is numbers joined by dots, an optional "
            "leading 'v' and an optional -suffix, e.g. 3, 1.4.0, v2 or 1.0.0-rc.1"
        )
    return version


def check_reason(reason: str | None, option: str = "--reason") -> str:
    """The reason, stripped, when it says something; else raise naming `option`."""
    text = (reason or "").strip()
    if not text:
        raise ReleaseError(f"{option} must say why: it is recorded in the audit log, and an "
                           "empty one is refused")
    if len(text) > REASON_MAX:
        raise ReleaseError(f"{option} is {len(text):,} characters; at most {REASON_MAX:,}")
    return text


def check_path(path: str) -> str:
    """`path` when it is a relative POSIX path inside the library, else raise."""
    parts = path.split("/")
    if (not path or len(path) > PATH_MAX or path.startswith("/") or "\\" in path
            or "\x00" in path or any(part in ("", ".", "..") for part in parts)):
        raise ReleaseError(f"invalid file path in a release: {path!r}")
    return path


def next_version(taken: Iterable[str], latest: str | None) -> str:
    """The version after `latest`: its last number plus one (`3` -> `4`, `1.4.0` -> `1.4.1`,
    `v2` -> `v3`; `1.0.0-rc.1` -> `1.0.0`), the next free one if that is taken; `1` first."""
    used = set(taken)
    if latest is None:
        candidate = "1"
    else:
        base = re.split(r"[-+]", latest, maxsplit=1)[0]
        candidate = base if base != latest else _bump(base)
    while candidate in used:
        candidate = _bump(candidate)
    return candidate


def _bump(version: str) -> str:
    """Given `1.4.0`, return `1.4.1`: the last number plus one."""
    match = _LAST_NUMBER.search(version)
    if match is None:  # only a version changed by hand has no number
        return f"{version}.1"
    return f"{version[:match.start()]}{int(match[1]) + 1}{version[match.end():]}"


class Releases:
    """Releases in the shared `Database`; each write appends to the `AuditLog` with it."""

    def __init__(self, database: Database, audit: AuditLog, *, clock: Clock = utcnow) -> None:
        self._db = database
        self._audit = audit
        self._clock = clock

    def create(
        self,
        files: Mapping[str, bytes],
        *,
        actor: str,
        version: str | None = None,
        notes: str = "",
        git_commit: str | None = None,
        git_dirty: bool | None = None,
        report: str | None = None,
        force_reason: str | None = None,
        on_step: Step | None = None,
    ) -> Release:
        """Store `files` (`{relative posix path: bytes}`) as a new release; return it.

        `force_reason` records that the release went out despite a NO-GO, and why. Raises
        `ReleaseError` for bad input and `ReleaseExistsError` when a release holds this content
        or has this version, before anything is written. `on_step` is called with the name of
        each step inside the transaction (tests stop the writer there and kill it).
        """
        step = on_step or _no_step
        if version is not None:
            check_version(version)
        if force_reason is not None:
            force_reason = check_reason(force_reason, "--reason")
        if len(notes) > NOTES_MAX:
            raise ReleaseError(f"--notes is {len(notes):,} characters; at most {NOTES_MAX:,}")
        if not files:
            raise ReleaseError("a release needs at least one file")
        manifest = {check_path(path): blob_hash(content) for path, content in files.items()}
        new_id = release_id(manifest)
        try:
            with self._audit.writing("create a release") as connection:
                step("locked")
                self._refuse_taken(connection, new_id, version)
                seq, version = self._next(connection, version)
                self._store_blobs(connection, files, manifest, step)
                at = self._clock()
                connection.execute(insert(releases).values(
                    id=new_id, seq=seq, version=version, notes=notes, created_by=actor,
                    created_at=at, git_commit=git_commit, git_dirty=git_dirty, report=report,
                    forced=force_reason is not None, force_reason=force_reason,
                ))
                step("release")
                rows = [{"release_id": new_id, "path": p, "blob_hash": h}
                        for p, h in sorted(manifest.items())]
                for start in range(0, len(rows), BATCH):
                    connection.execute(insert(release_files), rows[start:start + BATCH])
                    step(f"files {start}")
                self._audit.append(
                    connection, actor=actor, action="release", subject=version,
                    to_ref=new_id[:12], reason=force_reason or notes or "released",
                    details={"id": new_id, "files": len(manifest),
                             "forced": force_reason is not None,
                             "git_commit": git_commit, "git_dirty": git_dirty},
                )
                step("audit")
        except IntegrityError:
            # Another writer took the version or the content between our check and our insert;
            # the lock makes that impossible, so this is a database changed by hand.
            raise ReleaseExistsError(
                f"release {version or new_id[:12]} could not be stored: its version or "
                "content was taken meanwhile; nothing was written") from None
        step("committed")
        return self.get(new_id)

    def check_new(self, files: Mapping[str, bytes], version: str | None = None) -> str:
        """Raise as `create` would for content or a version that is taken, without writing;
        return the id the release would have. `create` checks again under its lock."""
        if version is not None:
            check_version(version)
        new_id = release_id({check_path(p): blob_hash(b) for p, b in files.items()})
        with self._db.transaction("check a release") as connection:
            self._refuse_taken(connection, new_id, version)
        return new_id

    def _refuse_taken(self, connection: Connection, new_id: str, version: str | None) -> None:
        same = connection.execute(
            select(releases.c.version).where(releases.c.id == new_id)).scalar()
        if same is not None:
            raise ReleaseExistsError(
                f"release {same} ({new_id[:12]}) already holds this content; nothing was "
                "written (promote it instead)")
        if version is not None:
            other = connection.execute(
                select(releases.c.id).where(releases.c.version == version)).scalar()
            if other is not None:
                raise ReleaseExistsError(
                    f"version {version} exists already (release {str(other)[:12]}); pick "
                    "another with --version, or leave it out for the next one")

    def _next(self, connection: Connection, version: str | None) -> tuple[int, str]:
        seq = int(connection.execute(select(func.coalesce(func.max(releases.c.seq), 0)))
                  .scalar_one()) + 1
        if version is None:
            taken = connection.execute(select(releases.c.version)).scalars().all()
            latest = connection.execute(
                select(releases.c.version).order_by(releases.c.seq.desc()).limit(1)).scalar()
            version = next_version(taken, latest)
        return seq, version

    def _store_blobs(self, connection: Connection, files: Mapping[str, bytes],
                     manifest: Mapping[str, str], step: Step) -> None:
        """Insert the blobs the store does not hold yet: each content is stored once."""
        wanted = {manifest[path]: path for path in sorted(manifest)}
        hashes = sorted(wanted)
        held: set[str] = set()
        for start in range(0, len(hashes), BATCH):
            chunk = hashes[start:start + BATCH]
            held.update(connection.execute(
                select(blobs.c.hash).where(blobs.c.hash.in_(chunk))).scalars())
        rows = [{"hash": h, "size": len(files[wanted[h]]), "content": files[wanted[h]]}
                for h in hashes if h not in held]
        for start in range(0, len(rows), BATCH):
            connection.execute(insert(blobs), rows[start:start + BATCH])
            step(f"blobs {start}")

    # -- reading ----------------------------------------------------------------------------

    def all(self) -> list[Release]:
        """Every release, newest first."""
        with self._db.transaction("list releases") as connection:
            rows = connection.execute(_RELEASES.order_by(releases.c.seq.desc())).all()
        return [_release(row) for row in rows]

    def get(self, name: str) -> Release:
        """The release named `name`: its version, else a unique id prefix (>= 4 hex digits)."""
        with self._db.transaction("find a release") as connection:
            return self.find(connection, name)

    def find(self, connection: Connection, name: str) -> Release:
        """`get` inside the caller's transaction."""
        wanted = name.strip()
        row = connection.execute(_RELEASES.where(releases.c.version == wanted)).first()
        if row is not None:
            return _release(row)
        prefix = wanted.lower()
        if len(prefix) >= MIN_PREFIX and _HEX.fullmatch(prefix):
            rows = connection.execute(
                _RELEASES.where(releases.c.id.like(f"{prefix}%")).order_by(releases.c.seq)
                .limit(6)).all()
            if len(rows) == 1:
                return _release(rows[0])
            if rows:
                shown = ", ".join(_release(r).label for r in rows[:5])
                more = " and more" if len(rows) > 5 else ""
                raise ReleaseNotFoundError(
                    f"release id prefix {prefix!r} is ambiguous: it starts {shown}{more}; give "
                    "more digits")
        count = connection.execute(select(func.count()).select_from(releases)).scalar_one()
        hint = (f"a release is named by its version or at least {MIN_PREFIX} hex digits of "
                f"its id; 'tallinn release list' shows the {count}" if count
                else "there are no releases yet; make one with 'tallinn release create'")
        raise ReleaseNotFoundError(f"no release {name!r} ({hint})")

    def manifest(self, release: str) -> dict[str, str]:
        """`{path: blob hash}` of the release with id `release`."""
        query = select(release_files.c.path, release_files.c.blob_hash).where(
            release_files.c.release_id == release).order_by(release_files.c.path)
        with self._db.transaction("read a release") as connection:
            return {row.path: row.blob_hash for row in connection.execute(query)}

    def files(self, release: str) -> dict[str, bytes]:
        """The files of the release with id `release`, `{relative posix path: bytes}`: the one
        place a release's content is read, each blob checked against its hash."""
        query = (
            select(release_files.c.path, release_files.c.blob_hash, blobs.c.content)
            .join(blobs, blobs.c.hash == release_files.c.blob_hash)
            .where(release_files.c.release_id == release)
            .order_by(release_files.c.path)
        )
        with self._db.transaction("read a release") as connection:
            rows = connection.execute(query).all()
        files: dict[str, bytes] = {}
        for row in rows:
            content = bytes(row.content)
            if blob_hash(content) != row.blob_hash:
                raise StoreError(f"state store {self._db.url}: the blob of {row.path} in "
                                 f"release {release[:12]} does not match its hash (the "
                                 "database was changed by hand)", "store_corrupt")
            files[check_path(row.path)] = content
        return files

    def report(self, release: str) -> str | None:
        """The readiness report (JSON) stored with the release with id `release`."""
        with self._db.transaction("read a release") as connection:
            value = connection.execute(
                select(releases.c.report).where(releases.c.id == release)).scalar()
        return None if value is None else str(value)


def _no_step(_name: str) -> None:
    pass


_FILE_COUNT = (
    select(func.count()).select_from(release_files)
    .where(release_files.c.release_id == releases.c.id).scalar_subquery()
)
_RELEASES = select(
    releases.c.id, releases.c.seq, releases.c.version, releases.c.notes, releases.c.created_by,
    releases.c.created_at, releases.c.git_commit, releases.c.git_dirty, releases.c.forced,
    releases.c.force_reason, _FILE_COUNT.label("files"),
)


def _release(row: Any) -> Release:
    return Release(
        id=row.id, seq=int(row.seq), version=row.version, notes=row.notes,
        created_by=row.created_by, created_at=row.created_at, git_commit=row.git_commit,
        git_dirty=row.git_dirty, forced=bool(row.forced), force_reason=row.force_reason,
        files=int(row.files),
    )
