"""What one failed request leaves behind, redacted, and the fingerprint of its group.

Pure text work, apart from the store (`tallinn.ops.error_log`), so that a server can capture
errors without loading the database layer: the rule of redaction and of the fingerprint is
told in `tallinn.ops.error_log`'s docstring.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

DETAIL_MAX = 1000
SAMPLES_PER_GROUP = 20  # the latest samples a group keeps, unless told otherwise
SCAN_MAX = 4 * DETAIL_MAX
NAME_MAX = 255  # an error class, a where, a client
REPLICA_MAX = 128
ARGUMENT_MIN = 4

_TOKEN = re.compile(r"\btln_[0-9A-Za-z]+_[A-Za-z0-9_-]+")
_SCHEME_CREDENTIAL = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)
# Any `word=value` or `word: value`; the key is checked apart (`_SECRET_KEY`), which keeps the
# scan linear: a key pattern with the secret words in its middle backtracks at every letter.
_PAIR = re.compile(r"(?P<key>\b[\w-]+)(?P<sep>\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
_SECRET_KEY = re.compile(r"token|passw(?:or)?d|secret|api[_-]?key|authorization|credential|"
                         r"cookie|session", re.IGNORECASE)
_URL_USER = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^\s/@]+@", re.IGNORECASE)
_LONG_RUN = re.compile(r"[A-Za-z0-9_+/=-]{24,}")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")

_HEX = re.compile(r"\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{6,}\b")
_RUN = re.compile(r"\S+")
_PATH = re.compile(r"(?:\b[A-Za-z]:\\|\.{0,2}/)?[\w.-]+(?:[/\\][\w.-]+)+[/\\]?|(?<![\w<])/[\w.-]+")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")


def redact(detail: str, arguments: Iterable[str] = ()) -> str:
    """Given `render failed for 'src/app.py' with token=abc123`, return
    `render failed for <str> with token=<secret>` (by the rule told in `tallinn.ops.error_log`)."""
    text = detail
    for value in sorted({v for v in arguments if isinstance(v, str) and
                         len(v) >= ARGUMENT_MIN}, key=len, reverse=True):
        text = text.replace(value, "<arg>")
    # A huge message costs the patterns below no more than a few times what is kept.
    text = text[:SCAN_MAX]
    # Each pattern runs only where its cheap sign is present: most messages hold none.
    if "tln_" in text:
        text = _TOKEN.sub("<secret>", text)
    lowered = text.lower()
    if "bearer" in lowered or "basic" in lowered or "token" in lowered:
        text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m[1]} <secret>", text)
    if _SECRET_KEY.search(text) is not None:
        text = _PAIR.sub(_secret_if_key, text)
    if "://" in text:
        text = _URL_USER.sub(lambda m: f"{m['scheme']}<secret>@", text)
    text = _LONG_RUN.sub(_secret_if_mixed, text)
    text = _QUOTED.sub("<str>", text)
    text = _CONTROL.sub(" ", text).strip()
    return text[:DETAIL_MAX]


def _secret_if_key(match: re.Match[str]) -> str:
    if _SECRET_KEY.search(match["key"]) is None:
        return match[0]
    return f"{match['key']}{match['sep']}<secret>"


def _secret_if_mixed(match: re.Match[str]) -> str:
    run = match[0]
    mixed = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
    return "<secret>" if mixed else run


def shape(detail: str) -> str:
    """Given `line 12 of /srv/lib/a.md: id 9f86d081884c`, return
    `line <n> of <path>: id <hex>` (after `redact`, which this applies first)."""
    return shape_of_redacted(redact(detail))


def shape_of_redacted(text: str) -> str:
    text = _HEX.sub("<hex>", text)
    # Only the runs that hold a slash can be paths; the path pattern is costly elsewhere.
    text = _RUN.sub(_paths_in, text)
    return _NUMBER.sub("<n>", text)


def _paths_in(match: re.Match[str]) -> str:
    run = match[0]
    return _PATH.sub("<path>", run) if "/" in run or "\\" in run else run


def fingerprint(error_class: str, where: str, detail: str) -> str:
    """The hex SHA-256 naming the group of an error: its class, where, and `shape(detail)`."""
    return fingerprint_of_shape(error_class, where, shape(detail))


def fingerprint_of_shape(error_class: str, where: str, shaped: str) -> str:
    body = "\n".join((error_class, where, shaped))
    return hashlib.sha256(body.encode("utf-8", "replace")).hexdigest()


def stored_name(value: str | None, limit: int, default: str) -> str:
    """A class, where or client as stored: printable, without secrets, at most `limit`."""
    if value is None:
        return default
    text = _CONTROL.sub(" ", _TOKEN.sub("<secret>", value[:2 * limit])).strip()[:limit]
    return text or default


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """One error a server answered with, e.g. `ErrorEvent(at, None, "code-review",
    "RenderError", "missing argument <str>", client="alice", replica="web-1")`.

    `release` is the id of the release that served the request (None when serving a folder),
    `where` the prompt, tool or resource the request named. Build it with `capture`, which
    redacts the message with the request's argument values; `ErrorLog.record` redacts again
    (all but the argument values, which it does not know).
    """

    at: datetime
    release: str | None
    where: str
    error_class: str
    detail: str
    client: str | None = None
    replica: str | None = None

    @classmethod
    def capture(cls, error: BaseException | str, *, at: datetime, where: str,
                arguments: Iterable[str] = (), release: str | None = None,
                client: str | None = None, replica: str | None = None,
                error_class: str | None = None) -> ErrorEvent:
        """The event for `error`, its message redacted with `arguments` (the request's values)
        before it is kept anywhere; the class is the exception's unless given."""
        if error_class is None:
            error_class = "Error" if isinstance(error, str) else type(error).__name__
        return cls(at, release, where, error_class, redact(str(error), arguments),
                   client, replica)


_RELEASE_ID = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class PendingGroup:
    """One group's share of a batch, added up in memory before it is written: its count,
    first and last seen, per release `[count, first, last]`, and its latest samples."""

    error_class: str
    where: str
    shape: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    releases: dict[str, list[Any]] = field(default_factory=dict)  # id: [count, first, last]
    samples: list[dict[str, Any]] = field(default_factory=list)

    def add(self, at: datetime, release: str | None, sample: dict[str, Any], keep: int) -> None:
        self.count += 1
        self.first = at if self.first is None or at < self.first else self.first
        self.last = at if self.last is None or at > self.last else self.last
        if release is not None:
            seen = self.releases.setdefault(release, [0, at, at])
            seen[0] += 1
            seen[1], seen[2] = min(seen[1], at), max(seen[2], at)
        self.samples.append(sample)
        if len(self.samples) > 2 * keep:  # a flood of one error keeps memory bounded
            self.samples = self.latest(keep)

    def latest(self, keep: int) -> list[dict[str, Any]]:
        return sorted(self.samples, key=lambda s: s["at"])[-keep:] if keep else []


def pending_groups(events: Iterable[ErrorEvent], keep: int) -> dict[str, PendingGroup]:
    """A batch of events by the fingerprint of its groups, checked, redacted and added up,
    keeping at most the latest `keep` samples of each: what every writer of the error log
    (`tallinn.ops.error_log`, `tallinn.ops.verifier`) writes."""
    pending: dict[str, PendingGroup] = {}
    seen: dict[tuple[str, str, str], tuple[str, str, str]] = {}
    for event in events:
        if not isinstance(event, ErrorEvent):
            raise TypeError(f"record takes ErrorEvents, not {type(event).__name__}")
        if event.at.tzinfo is None:
            raise TypeError("naive datetime in an ErrorEvent; use datetime.now(UTC)")
        release = event.release
        if release is not None and not _RELEASE_ID.fullmatch(release):
            raise ValueError(f"an ErrorEvent's release is a 64-digit hex id, not {release!r}")
        error_class = stored_name(event.error_class, NAME_MAX, "Error")
        where = stored_name(event.where, NAME_MAX, "-")
        # A flood repeats one message: each distinct one is redacted and shaped once.
        known = seen.get((error_class, where, event.detail))
        if known is None:
            detail = redact(event.detail)
            shaped = shape_of_redacted(detail)
            known = seen[error_class, where, event.detail] = (
                detail, shaped, fingerprint_of_shape(error_class, where, shaped))
        detail, shaped, print_ = known
        group = pending.get(print_)
        if group is None:
            group = pending[print_] = PendingGroup(error_class, where, shaped)
        group.add(event.at, release, {
            "at": event.at, "release_id": release, "detail": detail,
            "client": (None if event.client is None
                       else stored_name(event.client, NAME_MAX, "-")),
            "replica": (None if event.replica is None
                        else stored_name(event.replica, REPLICA_MAX, "-")),
        }, keep)
    return pending
