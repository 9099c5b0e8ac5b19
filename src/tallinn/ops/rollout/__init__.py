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
    "ClientHeaderError",
    "ClientIdentity",
    "GuardResult",
    "IdentitySource",
    "Outcome",
    "PlanError",
    "RatingError",
    "ReleaseTotals",
    "RolloutError",
    "RolloutPlan",
    "SignalAggregator",
    "SignalBatch",
    "TransitionError",
    "Verdict",
    "bucket",
    "client_identity",
    "merge_batches",
    "on_candidate",
    "parse_plan",
]
