"""What each release's clients experienced: counters per (release, minute), and their totals.

Every server replica keeps a `SignalAggregator`: requests are counted in memory, per release
and per minute of the injected clock, and `drain()` hands out the finished minutes as
`SignalBatch` records for the store to persist. The controller judges a window: `merge_batches`
adds the batches of all replicas for the minutes in it into one `ReleaseTotals` per release.

What counts (`Outcome`):

- `ok`: a request answered;
- `server_error`: a prompts/get, resource read or tool call that failed or could not be
  rendered: the release's fault, so it is in the error rate;
- `client_error`: bad arguments and other mistakes of the client, counted apart and never in
  the error rate (a client that sends nonsense must not roll a release back).

The error rate is `server_errors / (requests - client_errors)`. Ratings are 1..5 stars;
satisfaction is the share of ratings of 4 or 5.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tallinn.ops.rollout.errors import RatingError

MAX_BUCKETS = 1024
STARS = 5
# Upper bounds, in milliseconds, of the latency histogram each counter keeps; the last bucket
# holds everything slower. Fixed, so that every replica's histograms add up.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500)
NO_LATENCY = (0,) * (len(LATENCY_BOUNDS_MS) + 1)
SATISFIED_FROM = 4
NO_RATINGS = (0,) * STARS
MINUTE = timedelta(minutes=1)


class Outcome(StrEnum):
    """How one request of a client ended."""

    OK = "ok"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"


@dataclass(frozen=True, slots=True)
class ReleaseTotals:
    """Counts for one release over some time: `ReleaseTotals(requests=200, server_errors=3)`.

    `requests` counts every request, client errors included; `ratings[i]` is how many ratings
    gave `i + 1` stars. Totals add up with `+`.
    """

    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    ratings: tuple[int, ...] = NO_RATINGS
    latency: tuple[int, ...] = NO_LATENCY

    def __add__(self, other: ReleaseTotals) -> ReleaseTotals:
        return ReleaseTotals(
            self.requests + other.requests,
            self.server_errors + other.server_errors,
            self.client_errors + other.client_errors,
            tuple(a + b for a, b in zip(self.ratings, other.ratings, strict=True)),
            tuple(a + b for a, b in zip(self.latency, other.latency, strict=True)),
        )

    def latency_ms(self, quantile: float) -> float | None:
        """The `quantile` (0.5, 0.95) of the timed requests' latency, in milliseconds, by
        linear interpolation inside its histogram bucket (as Prometheus'
        `histogram_quantile`); None with no timed request. The slowest bucket has no upper
        bound: a quantile there is its lower bound."""
        return latency_quantile(self.latency, quantile)

    @property
    def served(self) -> int:
        """The requests the error rate is about: all but the client errors."""
        return self.requests - self.client_errors

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.served if self.served > 0 else 0.0

    @property
    def rated(self) -> int:
        return sum(self.ratings)

    @property
    def satisfied(self) -> int:
        return satisfied_of(self.ratings)

    @property
    def satisfaction(self) -> float:
        return self.satisfied / self.rated if self.rated > 0 else 0.0


@dataclass(frozen=True, slots=True)
class SignalBatch:
    """One replica's counts for one release in one minute, as the store keeps them.

    `SignalBatch("web-1", 17, "v2", datetime(2026, 1, 1, 12, 5, tzinfo=UTC), totals)`.
    `minute` is the minute's start, in UTC; (`replica`, `seq`) is unique, so a store can make
    it the key and a batch written twice (a retried flush) counts once. Batches add up: two
    for the same replica, release and minute (a late request after a flush) are both kept.
    """

    replica: str
    seq: int
    release: str
    minute: datetime
    totals: ReleaseTotals


def latency_quantile(histogram: tuple[int, ...], quantile: float) -> float | None:
    """See `ReleaseTotals.latency_ms`."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = quantile * total
    seen = 0
    for index, count in enumerate(histogram):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[index - 1] if index > 0 else 0.0
            if index == len(LATENCY_BOUNDS_MS):
                return float(low)
            return low + (LATENCY_BOUNDS_MS[index] - low) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])  # pragma: no cover (the loop always returns)


def stored_counts(text: str | None, empty: tuple[int, ...]) -> tuple[int, ...]:
    """Counts as the store keeps them (`"0,3,9,..."`); an empty text, or one not of `empty`'s
    length (a row written before these counts were kept), reads as `empty`."""
    counts = tuple(int(n) for n in text.split(",")) if text else ()
    return counts if len(counts) == len(empty) else empty


def stored_latency(text: str | None) -> tuple[int, ...]:
    """A batch's latency histogram as stored; rows written before latency was kept read as
    not timed (all zero)."""
    return stored_counts(text, NO_LATENCY)


def stored_ratings(text: str | None) -> tuple[int, ...]:
    """The ratings a batch counted, per star, as stored; none when it counted none."""
    return stored_counts(text, NO_RATINGS)


def satisfied_of(ratings: Sequence[int]) -> int:
    """How many of `ratings` (a count per star, 1 to 5) gave `SATISFIED_FROM` stars or more."""
    return sum(ratings[SATISFIED_FROM - 1:])


def add_batch(counts: list[int], requests: int, server_errors: int, client_errors: int,
              stars: str | None, times: int = 1) -> None:
    """Add a signal batch as stored to `counts` (requests, server errors, client errors,
    ratings, satisfied ratings): its counts, and the ratings the replica counted itself, in
    its `stars`; `times` when rows with the same stars were summed as one."""
    counts[0] += int(requests)
    counts[1] += int(server_errors)
    counts[2] += int(client_errors)
    given = stored_ratings(stars)
    counts[3] += sum(given) * times
    counts[4] += satisfied_of(given) * times


def add_rating(counts: list[int], rating: int, times: int = 1) -> None:
    """Add `times` ratings of `rating` stars to `counts`, laid out as for `add_batch`."""
    counts[3] += times
    counts[4] += times if int(rating) >= SATISFIED_FROM else 0


def latency_bucket(seconds: float) -> int:
    """The histogram bucket of a request that took `seconds`."""
    milliseconds = seconds * 1000
    for index, bound in enumerate(LATENCY_BOUNDS_MS):
        if milliseconds <= bound:
            return index
    return len(LATENCY_BOUNDS_MS)


@dataclass(slots=True)
class _Counter:
    requests: int = 0
    server_errors: int = 0
    client_errors: int = 0
    ratings: list[int] = field(default_factory=lambda: [0] * STARS)
    latency: list[int] = field(default_factory=lambda: [0] * len(NO_LATENCY))

    def totals(self) -> ReleaseTotals:
        return ReleaseTotals(self.requests, self.server_errors, self.client_errors,
                             tuple(self.ratings), tuple(self.latency))

    def events(self) -> int:
        return self.requests + sum(self.ratings)


class SignalAggregator:
    """Counts one replica's requests and ratings in memory, per (release, minute).

    Thread-safe: one lock guards the counters; `record` holds it for a dict look-up and an
    addition. Memory is bounded: at most `max_buckets` (release, minute) counters of fixed size
    are kept (1024 by default: 8 hours of two releases when nothing is drained). A new one
    past that evicts the oldest minute's counter, and `dropped` counts the events lost so;
    drain every minute and it never happens.
    """

    def __init__(self, replica: str, clock: Callable[[], datetime],
                 max_buckets: int = MAX_BUCKETS, resolution: timedelta = MINUTE) -> None:
        if max_buckets < 1:
            raise ValueError("max_buckets must be at least 1")
        self.replica = replica
        # The width of a counter's interval; a server sets it to the running rollout's, so
        # the controller's windows and the counters line up.
        self.resolution = resolution
        self._clock = clock
        self._max_buckets = max_buckets
        self._counters: dict[tuple[str, datetime], _Counter] = {}
        self._lock = threading.Lock()
        self._seq = 0
        self.dropped = 0

    def record(self, release: str, outcome: Outcome, seconds: float | None = None) -> None:
        """Count one request of `release` that ended with `outcome`, in this minute, and
        when given how long it took."""
        bucket = None if seconds is None else latency_bucket(seconds)
        with self._lock:
            counter = self._counter(release)
            counter.requests += 1
            if bucket is not None:
                counter.latency[bucket] += 1
            if outcome is Outcome.SERVER_ERROR:
                counter.server_errors += 1
            elif outcome is Outcome.CLIENT_ERROR:
                counter.client_errors += 1

    def rate(self, release: str, stars: object) -> None:
        """Count one rating of `release`; `stars` must be a whole 1..5, else `RatingError`."""
        if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= STARS:
            raise RatingError(stars)
        with self._lock:
            self._counter(release).ratings[stars - 1] += 1

    def drain(self, *, everything: bool = False) -> list[SignalBatch]:
        """Hand out the counts of finished minutes as batches, and forget them.

        The current minute is kept counting unless `everything` (at shutdown). Batches come
        oldest first; each has the next sequence number of this replica.
        """
        current = minute_of(self._clock(), self.resolution)
        with self._lock:
            keys = sorted((key for key in self._counters if everything or key[1] < current),
                          key=lambda key: (key[1], key[0]))
            batches = []
            for key in keys:
                self._seq += 1
                batches.append(SignalBatch(self.replica, self._seq, key[0], key[1],
                                           self._counters.pop(key).totals()))
            return batches

    def restore(self, batches: Iterable[SignalBatch]) -> None:
        """Take back batches a flush could not write, to hand them out again with the next.

        They count again under the same bound; their sequence numbers are new next time.
        """
        with self._lock:
            for batch in batches:
                counter = self._counter(batch.release, batch.minute)
                counter.requests += batch.totals.requests
                counter.server_errors += batch.totals.server_errors
                counter.client_errors += batch.totals.client_errors
                for index, count in enumerate(batch.totals.ratings):
                    counter.ratings[index] += count
                for index, count in enumerate(batch.totals.latency):
                    counter.latency[index] += count

    def __len__(self) -> int:
        with self._lock:
            return len(self._counters)

    def _counter(self, release: str, minute: datetime | None = None) -> _Counter:
        key = (release, minute_of(self._clock(), self.resolution) if minute is None else minute)
        counter = self._counters.get(key)
        if counter is None:
            if len(self._counters) >= self._max_buckets:
                oldest = min(self._counters, key=lambda k: (k[1], k[0]))
                self.dropped += self._counters.pop(oldest).events()
            counter = self._counters[key] = _Counter()
        return counter


def minute_of(moment: datetime, resolution: timedelta = MINUTE) -> datetime:
    """Given 14:05:31.2 in UTC+2, return 12:05:00 UTC; a naive time is refused (`TypeError`).

    With another `resolution` (a whole number of seconds), the start of its interval since the
    epoch: `minute_of(t, timedelta(seconds=5))` of 12:05:31.2 is 12:05:30.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise TypeError(f"a rollout clock must give aware datetimes, not {moment!r}")
    if resolution == MINUTE:
        return moment.astimezone(UTC).replace(second=0, microsecond=0)
    width = int(resolution.total_seconds())
    seconds = math.floor(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % width, UTC)


def window_start(since: datetime, resolution: timedelta = MINUTE) -> datetime:
    """The first whole interval at or after `since`: a step that began at 12:05:30 counts
    from 12:06, so no interval mixes two steps' shares."""
    start = minute_of(since, resolution)
    return start + resolution if start < since else start


def merge_batches(batches: Iterable[SignalBatch], since: datetime,
                  until: datetime | None = None,
                  resolution: timedelta = MINUTE) -> dict[str, ReleaseTotals]:
    """Add the batches of every replica into totals per release, for a window of minutes.

    The window starts at the first whole minute at or after `since` (a step that began at
    12:05:30 counts from 12:06, so no minute mixes two steps' shares) and ends before the
    minute of `until`, if given. A batch seen twice (same replica and seq) counts once.
    """
    start = window_start(since, resolution)
    end = minute_of(until, resolution) if until is not None else None
    seen: set[tuple[str, int]] = set()
    totals: dict[str, ReleaseTotals] = {}
    for batch in batches:
        if batch.minute < start or (end is not None and batch.minute >= end):
            continue
        key = (batch.replica, batch.seq)
        if key in seen:
            continue
        seen.add(key)
        totals[batch.release] = totals.get(batch.release, ReleaseTotals()) + batch.totals
    return totals
