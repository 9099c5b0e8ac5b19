"""The plan: every option of `tallinn rollout start` parsed, checked, and named when wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tallinn.library.errors import TallinnError
from tallinn.ops.rollout.errors import PlanError
from tallinn.ops.rollout.plan import (
    DEFAULT_HOLD,
    RolloutPlan,
    parse_count,
    parse_duration,
    parse_holds,
    parse_plan,
    parse_rate,
    parse_steps,
)


def test_defaults_are_three_steps_of_two_days_with_the_documented_guards() -> None:
    """A plan with only a release is 10,50,100, 48h holds, 5%, 80%, 1000 requests, 100 ratings."""
    plan = parse_plan("v2")
    assert plan == RolloutPlan("v2")
    assert plan.steps == (10, 50, 100)
    assert plan.holds == (DEFAULT_HOLD, DEFAULT_HOLD) == (timedelta(hours=48),) * 2
    assert (plan.max_error_rate, plan.min_satisfaction) == (0.05, 0.80)
    assert (plan.min_requests, plan.min_ratings, plan.alpha) == (1000, 100, 0.05)
    assert plan.hold(2) == timedelta(0)
    assert plan.ratings_judged


def test_every_option_is_read() -> None:
    """Each option as typed on the command line lands in its field."""
    plan = parse_plan("v2.1", channel="beta", steps="5,25,100", hold="48h,7d",
                      max_error_rate="2.5%", min_satisfaction="0.9", min_requests="2_000",
                      min_ratings="0")
    assert plan.channel == "beta"
    assert plan.steps == (5, 25, 100)
    assert plan.holds == (timedelta(hours=48), timedelta(days=7))
    assert plan.max_error_rate == pytest.approx(0.025)
    assert plan.min_satisfaction == pytest.approx(0.9)
    assert (plan.min_requests, plan.min_ratings) == (2000, 0)
    assert not plan.ratings_judged


@pytest.mark.parametrize(("text", "steps"), [
    ("100", (100,)), ("10,50,100", (10, 50, 100)), ("1, 2, 100", (1, 2, 100)),
    ("10%,100%", (10, 100)),
])
def test_steps_that_rise_to_100_are_accepted(text: str, steps: tuple[int, ...]) -> None:
    """Strictly rising whole percentages in 1..100 that end at 100 parse, with or without %."""
    assert parse_steps(text) == steps


@pytest.mark.parametrize(("text", "reason"), [
    ("10,5,100", "steps must rise strictly (5 after 10)"),
    ("10,10,100", "steps must rise strictly (10 after 10)"),
    ("10,50", "the last step must be 100"),
    ("0,100", "0 is not a percentage in 1..100"),
    ("10,150", "150 is not a percentage in 1..100"),
    ("ten,100", "'ten' is not a whole percentage in 1..100"),
    ("10,,100", "'' is not a whole percentage in 1..100"),
    ("-5,100", "'-5' is not a whole percentage in 1..100"),
    ("2.5,100", "'2.5' is not a whole percentage in 1..100"),
    (",".join(str(n) for n in range(1, 22)) + ",100", "at most 20 steps"),
])
def test_bad_steps_name_the_option_the_value_and_the_reason(text: str, reason: str) -> None:
    """Each bad --steps raises a PlanError of one line: option, quoted value, reason."""
    with pytest.raises(PlanError) as caught:
        parse_steps(text)
    message = str(caught.value)
    assert message.startswith("--steps '")
    assert message.endswith(reason)
    assert "\n" not in message
    assert isinstance(caught.value, TallinnError)
    assert caught.value.option == "--steps"


@pytest.mark.parametrize(("text", "duration"), [
    ("30s", timedelta(seconds=30)), ("15m", timedelta(minutes=15)),
    ("48h", timedelta(hours=48)), ("7d", timedelta(days=7)), ("0s", timedelta(0)),
    ("90d", timedelta(days=90)),
])
def test_durations_have_one_unit(text: str, duration: timedelta) -> None:
    """A hold is a whole number with s, m, h or d."""
    assert parse_duration("--hold", text) == duration


@pytest.mark.parametrize(("text", "reason"), [
    ("48", "a duration is a whole number and a unit"),
    ("2w", "a duration is a whole number and a unit"),
    ("1h30m", "a duration is a whole number and a unit"),
    ("-1h", "a duration is a whole number and a unit"),
    ("1.5h", "a duration is a whole number and a unit"),
    ("91d", "at most 90d"),
    ("9999999999h", "a duration is a whole number and a unit"),
])
def test_bad_durations_are_refused(text: str, reason: str) -> None:
    """A hold without a unit, with two, negative, fractional or too long is a PlanError."""
    with pytest.raises(PlanError, match=rf"^--hold '{text}': {reason}"):
        parse_duration("--hold", text)


def test_one_hold_serves_every_step_before_the_last() -> None:
    """`--hold 48h` with four steps gives three holds of 48 hours; the final step has none."""
    assert parse_holds("48h", (1, 10, 50, 100)) == (timedelta(hours=48),) * 3
    assert parse_holds("1h,2h", (10, 50, 100)) == (timedelta(hours=1), timedelta(hours=2))
    assert parse_holds("1h", (50, 100)) == (timedelta(hours=1),)
    assert parse_holds("1h", (100,)) == ()


@pytest.mark.parametrize("text", ["1h,2h,3h", "1h,2h,3h,4h"])
def test_a_hold_for_the_final_step_is_refused(text: str) -> None:
    """Three holds for steps 10,50,100 is an error that explains the final step has none."""
    with pytest.raises(PlanError, match=r"the last, 100%, is final and has no hold"):
        parse_holds(text, (10, 50, 100))


@pytest.mark.parametrize(("text", "rate"), [
    ("5%", 0.05), ("0.05", 0.05), ("2.5%", 0.025), ("100%", 1.0), ("0", 0.0), ("1", 1.0),
    (".5", 0.5), (" 5% ", 0.05),
])
def test_rates_are_percentages_or_fractions(text: str, rate: float) -> None:
    """`5%` and `0.05` are the same rate."""
    assert parse_rate("--max-error-rate", text) == pytest.approx(rate)


@pytest.mark.parametrize(("text", "reason"), [
    ("5", "a fraction must be in 0..1; for a percentage write 5%"),
    ("1.5", "a fraction must be in 0..1; for a percentage write 1.5%"),
    ("105%", "a percentage must be in 0%..100%"),
    ("-1%", "a rate is a percentage like 5% or a fraction like 0.05"),
    ("nan", "a rate is a percentage like 5% or a fraction like 0.05"),
    ("1e-2", "a rate is a percentage like 5% or a fraction like 0.05"),
    ("5%%", "a rate is a percentage like 5% or a fraction like 0.05"),
    ("", "a rate is a percentage like 5% or a fraction like 0.05"),
])
def test_bad_rates_are_refused(text: str, reason: str) -> None:
    """A rate out of range, signed, in exponent form or not a number names option and value."""
    with pytest.raises(PlanError) as caught:
        parse_rate("--max-error-rate", text)
    assert str(caught.value) == f"--max-error-rate {text!r}: {reason}"


@pytest.mark.parametrize("text", ["ten", "-5", "1.5", "", "99999999999"])
def test_bad_counts_are_refused(text: str) -> None:
    """A sample size is a whole, unsigned number of at most ten digits."""
    with pytest.raises(PlanError, match=r"^--min-requests .*: a sample size is a whole number"):
        parse_count("--min-requests", text)


@pytest.mark.parametrize(("options", "message"), [
    ({"max_error_rate": "0%"}, "--max-error-rate 0.0: must be above 0%"),
    ({"min_satisfaction": "100%"}, "--min-satisfaction 1.0: must be below 100%"),
    ({"min_requests": "0"}, "--min-requests 0: must be a whole number in 1..1000000000"),
    ({"min_requests": "2000000000"}, "--min-requests 2000000000: must be a whole number"),
    ({"max_error_rate": "0.1%"},
     "--min-requests 1000: too small for --max-error-rate 0.1%: at least 5000"),
    ({"min_satisfaction": "99%"},
     "--min-ratings 100: too small for --min-satisfaction 99%: at least 500"),
    ({"channel": "no spaces"}, "--channel 'no spaces': a name is 1..128 letters"),
    ({"channel": "x" * 129}, "--channel 'xxxx"),
])
def test_values_that_parse_but_do_not_fit_are_refused(options: dict[str, str],
                                                      message: str) -> None:
    """Limits the guards need (a rate off the edge, a sample too small for it) are PlanErrors."""
    with pytest.raises(PlanError) as caught:
        parse_plan("v2", **options)
    assert str(caught.value).replace("'", "").startswith(message.replace("'", ""))


@pytest.mark.parametrize("release", ["", "-v2", "v2\nforged line", "a b", "x" * 129])
def test_a_bad_release_name_is_refused_on_one_line(release: str) -> None:
    """A release name must be a short plain name; control characters are shown escaped."""
    with pytest.raises(PlanError) as caught:
        parse_plan(release)
    assert str(caught.value).startswith("RELEASE ")
    assert "\n" not in str(caught.value)


def test_guards_can_be_turned_off_at_their_far_edge() -> None:
    """100% error limit and 0% satisfaction floor are accepted: those guards are off."""
    plan = parse_plan("v2", max_error_rate="100%", min_satisfaction="0%", min_requests="1")
    assert plan.max_error_rate == 1.0
    assert not plan.ratings_judged


def test_a_plan_built_in_code_is_checked_as_well() -> None:
    """Building RolloutPlan directly runs the same checks as parse_plan."""
    with pytest.raises(PlanError, match=r"^--steps '10,5,100'"):
        RolloutPlan("v2", steps=(10, 5, 100), holds=(DEFAULT_HOLD,) * 2)
    with pytest.raises(PlanError, match=r"^--hold .*one hold per step before the last"):
        RolloutPlan("v2", holds=(DEFAULT_HOLD,))
    with pytest.raises(PlanError, match=r"^--hold .*between 0s and 90d"):
        RolloutPlan("v2", holds=(DEFAULT_HOLD, timedelta(days=91)))
    with pytest.raises(PlanError, match=r"^--max-error-rate 'nan': a rate must be in"):
        RolloutPlan("v2", max_error_rate=float("nan"))
    with pytest.raises(PlanError, match=r"^alpha '0.5': the false-alarm rate"):
        RolloutPlan("v2", alpha=0.5)
    with pytest.raises(PlanError, match=r"^check_every .*between 1 second and 1 day"):
        RolloutPlan("v2", check_every=timedelta(0))
    with pytest.raises(PlanError, match=r"^--steps '': give 1..20 steps"):
        RolloutPlan("v2", steps=(), holds=())
