"""Hostile input: whatever reaches the plan parser or the identity, only their errors come out."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tallinn.ops.rollout.assign import ALLOWED, client_identity
from tallinn.ops.rollout.errors import ClientHeaderError, PlanError
from tallinn.ops.rollout.plan import RolloutPlan, parse_plan

OPTIONS = ("channel", "steps", "hold", "max_error_rate", "min_satisfaction", "min_requests",
           "min_ratings")
# Text near the valid forms, where parser bugs live, and any text at all.
NEAR = st.from_regex(r"[0-9,.% smhd_-]{0,12}", fullmatch=True)
TEXT = st.one_of(NEAR, st.text(max_size=40))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.dictionaries(st.sampled_from(OPTIONS), TEXT))
def test_the_plan_parser_raises_only_plan_errors(release: str,
                                                 options: dict[str, str]) -> None:
    """Any release and option text gives a RolloutPlan or a one-line PlanError, nothing else."""
    message = ""
    try:
        plan = parse_plan(release, **options)
    except PlanError as error:
        message = str(error)
    else:
        assert isinstance(plan, RolloutPlan)
        assert plan.steps[-1] == 100
        assert len(plan.holds) == len(plan.steps) - 1
    assert "\n" not in message
    assert len(message) < 400


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=200)), st.one_of(st.none(), st.text(max_size=100)),
       st.one_of(st.none(), st.text(max_size=100)), st.one_of(st.none(), st.text(max_size=50)))
def test_any_client_gives_a_tidy_identity_or_a_header_error(header: str | None,
                                                            name: str | None,
                                                            version: str | None,
                                                            address: str | None) -> None:
    """The identity is always short and of the allowed characters; a bad header is refused."""
    try:
        identity = client_identity(header=header, client_name=name, client_version=version,
                                   address=address)
    except ClientHeaderError as error:
        refused = str(error)
        assert refused.startswith("X-Tallinn-Client ")
        assert "\n" not in refused
        return
    assert len(identity.value) <= 3 * 64 + 2 + 128
    assert re.fullmatch(f"[{ALLOWED}]+", identity.value)
