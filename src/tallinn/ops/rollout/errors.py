"""Errors of the rollout core.

TallinnError
└── RolloutError            something about a gradual rollout is not usable
    ├── PlanError           an option of `tallinn rollout start` has a bad value (names both)
    ├── ClientHeaderError   an `X-Tallinn-Client` header is too long or has odd characters
    ├── RatingError         a rating is not a whole number of stars in 1..5
    └── TransitionError     a person asked for a change the rollout's phase does not allow
"""

from __future__ import annotations

from tallinn.library.errors import TallinnError

# Values are quoted with their control characters escaped and cut to this length, so a hostile
# value cannot fill a terminal or forge a second line of output.
SHOWN_VALUE_CHARS = 60


def shown(value: object) -> str:
    """Given any value, return it quoted for one line: `'48x'`, `'aaaa…'` past 60 characters."""
    text = str(value)
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[:SHOWN_VALUE_CHARS] + "…"
    return repr(text)


class RolloutError(TallinnError):
    """Base of the rollout core's errors: `RolloutError("rollout 'r1' has ended")`."""


class PlanError(RolloutError):
    """One option has a bad value: `PlanError("--steps", "10,5", "steps must rise strictly")`.

    Its text is one line, `--steps '10,5': steps must rise strictly (5 after 10)`, for the CLI to
    print before it exits with 2.
    """

    def __init__(self, option: str, value: object, reason: str) -> None:
        super().__init__(f"{option} {shown(value)}: {reason}")
        self.option = option
        self.value = value
        self.reason = reason


class ClientHeaderError(RolloutError):
    """The `X-Tallinn-Client` header cannot name a client: `ClientHeaderError("a b", "space")`."""

    def __init__(self, value: str, reason: str) -> None:
        super().__init__(f"X-Tallinn-Client {shown(value)}: {reason}")
        self.value = value
        self.reason = reason


class RatingError(RolloutError):
    """A rating is not 1..5 stars: `RatingError(7)` reads `rating 7: must be a whole 1..5`."""

    def __init__(self, value: object) -> None:
        super().__init__(f"rating {shown(value)}: must be a whole number of stars in 1..5")
        self.value = value


class TransitionError(RolloutError):
    """A change the phase does not allow: `TransitionError("aborted", "running", "resume")`."""

    def __init__(self, current: str, wanted: str, action: str) -> None:
        super().__init__(f"cannot {action}: the rollout is {current}, and {current} cannot "
                         f"become {wanted}")
        self.current = current
        self.wanted = wanted
