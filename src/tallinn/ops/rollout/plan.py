"""The plan of a gradual rollout: the options of `tallinn rollout start`, parsed and checked.

Given `steps="10,50,100", hold="48h,7d"`, `parse_plan` returns a frozen `RolloutPlan` in which
the candidate is served to 10% of clients for at least 48 hours, then to 50% for at least 7
days, and then to everyone: the last step (always 100%) is final and has no hold. One hold
(`--hold 48h`) is used for every step before the last. Every bad value raises `PlanError`,
whose one line names the option and the value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta

from tallinn.ops.rollout.errors import PlanError, shown

DEFAULT_STEPS = (10, 50, 100)
DEFAULT_HOLD = timedelta(hours=48)
DEFAULT_MAX_ERROR_RATE = 0.05
DEFAULT_MIN_SATISFACTION = 0.80
DEFAULT_MIN_REQUESTS = 1000
DEFAULT_MIN_RATINGS = 100
DEFAULT_ALPHA = 0.05
DEFAULT_CHECK_EVERY = timedelta(minutes=5)
DEFAULT_RESOLUTION = timedelta(minutes=1)
MAX_RESOLUTION = timedelta(hours=1)

MAX_STEPS = 20
MAX_HOLD = timedelta(days=90)
MAX_CHECK_EVERY = timedelta(days=1)
MAX_SAMPLE = 1_000_000_000
# The guards' tests use the normal approximation of a binomial count, which is close enough
# once the expected count of the rarer outcome at the threshold is at least this many.
MIN_EXPECTED_COUNT = 5
MAX_NAME_CHARS = 128
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+:-]*")
DURATION = re.compile(r"(\d{1,9})([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A rate as a fraction or a percentage: "0.05", "5%", "2.5%"; no signs, exponents or words.
RATE = re.compile(r"(\d{1,3}(?:\.\d{1,6})?|\.\d{1,6})(%?)")


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """What `tallinn rollout start RELEASE` asked for, checked.

    `RolloutPlan("v2")` is 10%, 50%, 100% with 48 hours at each of the first two steps, an
    error-rate limit of 5%, a satisfaction floor of 80%, and samples of at least 1000 requests
    and 100 ratings per release before a step is judged. Building one checks it as
    `parse_plan` does, naming the option of each bad value.
    """

    release: str
    channel: str = "default"
    steps: tuple[int, ...] = DEFAULT_STEPS
    holds: tuple[timedelta, ...] = field(default=(DEFAULT_HOLD, DEFAULT_HOLD))
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    min_satisfaction: float = DEFAULT_MIN_SATISFACTION
    min_requests: int = DEFAULT_MIN_REQUESTS
    min_ratings: int = DEFAULT_MIN_RATINGS
    alpha: float = DEFAULT_ALPHA
    check_every: timedelta = DEFAULT_CHECK_EVERY
    resolution: timedelta = DEFAULT_RESOLUTION

    def __post_init__(self) -> None:
        _check_name("RELEASE", self.release)
        _check_name("--channel", self.channel)
        _check_steps(self.steps)
        _check_holds(self.holds, self.steps)
        _check_rate("--max-error-rate", self.max_error_rate, low_open=True)
        _check_rate("--min-satisfaction", self.min_satisfaction, high_open=True)
        _check_sample("--min-requests", self.min_requests, minimum=1,
                      threshold=("--max-error-rate", self.max_error_rate))
        _check_sample("--min-ratings", self.min_ratings, minimum=0,
                      threshold=("--min-satisfaction", self.min_satisfaction))
        if not (isinstance(self.alpha, float) and 0.0 < self.alpha < 0.5):
            raise PlanError("alpha", self.alpha, "the false-alarm rate must be above 0 and "
                            "below 0.5")
        if not timedelta(seconds=1) <= self.check_every <= MAX_CHECK_EVERY:
            raise PlanError("check_every", self.check_every,
                            "must be between 1 second and 1 day")
        if (not timedelta(seconds=1) <= self.resolution <= MAX_RESOLUTION
                or self.resolution.total_seconds() % 1
                or 3600 % self.resolution.total_seconds()):
            raise PlanError("--resolution", self.resolution,
                            "signals are counted per 1s to 1h, a whole number of seconds that "
                            "divides an hour")

    def hold(self, step: int) -> timedelta:
        """The hold of step index `step`; the last step has none (zero)."""
        return self.holds[step] if step < len(self.holds) else timedelta(0)

    @property
    def ratings_judged(self) -> bool:
        """Whether ratings count: `--min-ratings 0` turns the satisfaction guards off."""
        return self.min_ratings > 0 and self.min_satisfaction > 0


def parse_plan(
    release: str,
    *,
    channel: str | None = None,
    steps: str | None = None,
    hold: str | None = None,
    max_error_rate: str | None = None,
    min_satisfaction: str | None = None,
    min_requests: str | None = None,
    min_ratings: str | None = None,
    resolution: str | None = None,
) -> RolloutPlan:
    """Given the options as typed (`steps="10,50,100"`, `hold="48h,7d"`), return the plan.

    An option left out (None) takes its default. Raises `PlanError` for the first bad value.
    """
    parsed_steps = parse_steps(steps) if steps is not None else DEFAULT_STEPS
    return RolloutPlan(
        release=release,
        channel=channel if channel is not None else "default",
        steps=parsed_steps,
        holds=(parse_holds(hold, parsed_steps) if hold is not None
               else (DEFAULT_HOLD,) * (len(parsed_steps) - 1)),
        max_error_rate=(parse_rate("--max-error-rate", max_error_rate)
                        if max_error_rate is not None else DEFAULT_MAX_ERROR_RATE),
        min_satisfaction=(parse_rate("--min-satisfaction", min_satisfaction)
                          if min_satisfaction is not None else DEFAULT_MIN_SATISFACTION),
        min_requests=(parse_count("--min-requests", min_requests)
                      if min_requests is not None else DEFAULT_MIN_REQUESTS),
        min_ratings=(parse_count("--min-ratings", min_ratings)
                     if min_ratings is not None else DEFAULT_MIN_RATINGS),
        resolution=(parse_duration("--resolution", resolution)
                    if resolution is not None else DEFAULT_RESOLUTION),
    )


def parse_steps(text: str) -> tuple[int, ...]:
    """Given `"10,50,100"`, return `(10, 50, 100)`; they must rise strictly and end at 100."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > MAX_STEPS:
        raise PlanError("--steps", text, f"at most {MAX_STEPS} steps")
    values = []
    for part in parts:
        if not re.fullmatch(r"\d{1,3}%?", part):
            raise PlanError("--steps", text, f"{shown(part)} is not a whole percentage "
                            "in 1..100")
        values.append(int(part.rstrip("%")))
    steps = tuple(values)
    _check_steps(steps, text)
    return steps


def parse_duration(option: str, text: str) -> timedelta:
    """Given `"30s"`, `"15m"`, `"48h"` or `"7d"`, return that duration (at most 90 days)."""
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise PlanError(option, text, "a duration is a whole number and a unit: 30s, 15m, 48h "
                        "or 7d")
    duration = timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2]])
    if duration > MAX_HOLD:
        raise PlanError(option, text, f"at most {MAX_HOLD.days}d")
    return duration


def parse_holds(text: str, steps: tuple[int, ...]) -> tuple[timedelta, ...]:
    """Given `"48h,7d"` for steps 10,50,100, return one hold per step before the last.

    One hold (`"48h"`) is used for all of them. Any other count is an error: the last step,
    100%, is final and takes no hold.
    """
    holds = tuple(parse_duration("--hold", part) for part in text.split(","))
    wanted = len(steps) - 1
    if len(holds) == 1 and wanted != 1:
        return holds * wanted
    if len(holds) != wanted:
        raise PlanError("--hold", text, f"give one hold for all steps or one per step before "
                        f"the last ({wanted} for steps {','.join(map(str, steps))}; the last, "
                        "100%, is final and has no hold)")
    return holds


def parse_rate(option: str, text: str) -> float:
    """Given `"5%"`, `"2.5%"` or `"0.05"`, return the fraction 0.05; it must lie in 0..1."""
    match = RATE.fullmatch(text.strip())
    if match is None:
        raise PlanError(option, text, "a rate is a percentage like 5% or a fraction like 0.05")
    number = float(match[1])
    if match[2]:
        number /= 100
    elif number > 1:
        raise PlanError(option, text, f"a fraction must be in 0..1; for a percentage write "
                        f"{match[1]}%")
    if number > 1:
        raise PlanError(option, text, "a percentage must be in 0%..100%")
    return number


def parse_count(option: str, text: str) -> int:
    """Given `"1000"` (or `"1_000"`), return 1000: a whole number of at most a billion."""
    cleaned = text.strip().replace("_", "")
    if not re.fullmatch(r"\d{1,10}", cleaned):
        raise PlanError(option, text, "a sample size is a whole number, like 1000")
    return int(cleaned)


def percent(rate: float) -> str:
    """Given 0.025, return `"2.5%"`: a rate as people write it."""
    return f"{rate * 100:.4g}%"


def _check_name(option: str, name: object) -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise PlanError(option, name, f"a name is 1..{MAX_NAME_CHARS} letters, digits and "
                        "._+:- starting with a letter or digit")


def _check_steps(steps: tuple[int, ...], text: object = None) -> None:
    value = text if text is not None else ",".join(map(str, steps))
    if not steps or len(steps) > MAX_STEPS:
        raise PlanError("--steps", value, f"give 1..{MAX_STEPS} steps")
    for before, after in zip((0, *steps), steps, strict=False):
        if not isinstance(after, int) or not 1 <= after <= 100:
            raise PlanError("--steps", value, f"{after} is not a percentage in 1..100")
        if after <= before:
            raise PlanError("--steps", value, f"steps must rise strictly ({after} after "
                            f"{before})")
    if steps[-1] != 100:
        raise PlanError("--steps", value, "the last step must be 100")


def _check_holds(holds: tuple[timedelta, ...], steps: tuple[int, ...]) -> None:
    value = ",".join(str(hold) for hold in holds)
    if len(holds) != len(steps) - 1:
        raise PlanError("--hold", value, f"one hold per step before the last: "
                        f"{len(steps) - 1} for {len(steps)} steps")
    for hold in holds:
        if not timedelta(0) <= hold <= MAX_HOLD:
            raise PlanError("--hold", value, f"each hold must be between 0s and "
                            f"{MAX_HOLD.days}d")


def _check_rate(option: str, rate: object, *, low_open: bool = False,
                high_open: bool = False) -> None:
    if not isinstance(rate, float | int) or isinstance(rate, bool) or not math.isfinite(rate) \
            or not 0 <= rate <= 1:
        raise PlanError(option, rate, "a rate must be in 0%..100%")
    if low_open and rate == 0:
        raise PlanError(option, rate, "must be above 0% (give a small rate like 0.5%; 100% "
                        "turns the guard off)")
    if high_open and rate == 1:
        raise PlanError(option, rate, "must be below 100% (0% turns the guard off)")


def _check_sample(option: str, size: object, *, minimum: int,
                  threshold: tuple[str, float]) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or not minimum <= size <= MAX_SAMPLE:
        raise PlanError(option, size, f"must be a whole number in {minimum}..{MAX_SAMPLE}")
    # The rarer outcome at the guard's threshold: errors at the error limit, unhappy ratings
    # at the satisfaction floor; a threshold of 0% or 100% turns its guard off.
    threshold_option, rate = threshold
    rare = min(rate, 1 - rate)
    if size and rare > 0 and size * rare < MIN_EXPECTED_COUNT:
        needed = math.ceil(MIN_EXPECTED_COUNT / rare - 1e-9)
        raise PlanError(option, size, f"too small for {threshold_option} {percent(rate)}: at least "
                        f"{needed}, so that {MIN_EXPECTED_COUNT} or more of the rarer outcome "
                        "are expected at the threshold")
