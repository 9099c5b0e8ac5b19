"""The gradual-rollout core: plan, client assignment, signals, guards and the controller.

Pure logic: no database, no network, no clock of its own. The store persists what it
produces (`SignalBatch`, `RolloutState`, `Decision`), the server asks it which release a
client gets; see docs/rollout.md.
"""

from tallinn.ops.rollout.assign import (
    ClientIdentity,
    IdentitySource,
    bucket,
    client_identity,
    on_candidate,
)
from tallinn.ops.rollout.controller import (
    TRANSITIONS,
    Action,
    Decision,
    Phase,
    RolloutState,
    WindowSignals,
    abort,
    apply,
    decide,
    pause,
    resume,
    serving_share,
    window_signals,
)
from tallinn.ops.rollout.errors import (
    ClientHeaderError,
    PlanError,
    RatingError,
    RolloutError,
    TransitionError,
)
from tallinn.ops.rollout.guards import GuardResult, Verdict
from tallinn.ops.rollout.plan import RolloutPlan, parse_plan
from tallinn.ops.rollout.signals import (
    Outcome,
    ReleaseTotals,
    SignalAggregator,
    SignalBatch,
    merge_batches,
)

__all__ = [
    "TRANSITIONS",
    "Action",
    "ClientHeaderError",
    "ClientIdentity",
    "Decision",
    "GuardResult",
    "IdentitySource",
    "Outcome",
    "Phase",
    "PlanError",
    "RatingError",
    "ReleaseTotals",
    "RolloutError",
    "RolloutPlan",
    "RolloutState",
    "SignalAggregator",
    "SignalBatch",
    "TransitionError",
    "Verdict",
    "WindowSignals",
    "abort",
    "apply",
    "bucket",
    "client_identity",
    "decide",
    "merge_batches",
    "on_candidate",
    "parse_plan",
    "pause",
    "resume",
    "serving_share",
    "window_signals",
]
