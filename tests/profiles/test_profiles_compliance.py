"""Compliance of an ActiveChargingProfile with the plan: units, time anchors, verdicts, figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from profiles import Compliance, ComplianceVerdict, ElectricalFacts, ProfileSettings, assess_compliance, build_profile

START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
FACTS = ElectricalFacts(phases=3, voltage_v=230.0, max_amperage_a=32.0)
SETTINGS = ProfileSettings(failsafe_delay_s=3600)
PLAN = [11040.0, 11040.0, 5520.0, 5520.0]  # 16 A, 16 A, 8 A, 8 A on 3 x 230 V
FAILSAFE_W = 4140.0  # 6 A


def active(
    at: datetime, *limits: tuple[int, float], unit: ChargingRateUnit = ChargingRateUnit.A, **inner: object
) -> ActiveChargingProfile:
    return ActiveChargingProfile(
        start_date_time=at,
        charging_profile=ChargingProfile(
            charging_rate_unit=unit,
            charging_profile_period=[ChargingProfilePeriod(start_period=s, limit=v) for s, v in limits],
            **inner,  # type: ignore[arg-type]
        ),
    )


def judge(applied: ActiveChargingProfile, plan: list[float] = PLAN, **kwargs: object) -> Compliance:
    options: dict[str, object] = {
        "start": START,
        "slot_s": 900,
        "facts": FACTS,
        "failsafe_w": FAILSAFE_W,
        "settings": SETTINGS,
    }
    options.update(kwargs)
    return assess_compliance(applied, plan, **options)  # type: ignore[arg-type]


def test_the_profile_we_send_reported_back_unchanged_is_compliant_with_per_slot_figures() -> None:
    sent = build_profile(PLAN, start=START, slot_s=900, facts=FACTS, failsafe_w=FAILSAFE_W, settings=SETTINGS)
    result = judge(ActiveChargingProfile(start_date_time=START, charging_profile=sent))
    assert result.verdict is ComplianceVerdict.COMPLIANT
    assert (result.first_slot, result.applied_w) == (0, PLAN)
    assert result.excess_w == result.shortfall_w == [0.0] * 4
    assert result.compliant_fraction == 1.0
    assert not result.shows_evse_maximum


def test_periods_count_from_the_calculation_time_of_the_active_profile() -> None:
    # Calculated 10 minutes in: the step to 8 A at 1800 s of the plan is 1200 s after it.
    result = judge(active(START + timedelta(minutes=10), (0, 16.0), (1200, 8.0)))
    assert result.verdict is ComplianceVerdict.COMPLIANT
    assert result.first_slot == 0
    assert result.applied_w == [11040.0, 11040.0, 5520.0, 5520.0]


def test_an_inner_start_date_time_does_not_move_the_periods() -> None:
    # The spec: "All time measurements within the profile are relative to this timestamp" (the
    # ActiveChargingProfile's). Anchoring on the inner start would put the step at 1200 s.
    result = judge(active(START + timedelta(minutes=10), (0, 16.0), (1200, 8.0), start_date_time=START))
    assert result.verdict is ComplianceVerdict.COMPLIANT


def test_an_active_profile_in_watts_is_compared_in_watts() -> None:
    result = judge(active(START, (0, 11040.0), (1800, 5520.0), unit=ChargingRateUnit.W))
    assert result.verdict is ComplianceVerdict.COMPLIANT
    assert result.applied_w == PLAN


def test_a_profile_showing_the_evse_maximum_reads_as_over_plan_with_nothing_active() -> None:
    result = judge(active(START, (0, 32.0)))
    assert result.verdict is ComplianceVerdict.OVER_PLAN
    assert result.shows_evse_maximum
    assert result.excess_w == [11040.0, 11040.0, 16560.0, 16560.0]
    assert result.worst_excess_w == 16560.0
    assert result.compliant_fraction == 0.0


def test_an_empty_or_missing_period_list_has_no_overlap() -> None:
    missing = msgspec.json.decode(
        b'{"start_date_time":"2024-01-01T10:00:00Z","charging_profile":{"charging_rate_unit":"A"}}',
        type=ActiveChargingProfile,
    )
    for applied in (active(START), missing):
        result = judge(applied)
        assert result.verdict is ComplianceVerdict.NO_OVERLAP
        assert result.applied_w == [] and result.compliant_fraction == 0.0


def test_an_active_profile_outside_the_plan_horizon_has_no_overlap() -> None:
    assert judge(active(START + timedelta(hours=1), (0, 16.0))).verdict is ComplianceVerdict.NO_OVERLAP
    ended = active(START - timedelta(hours=1), (0, 16.0), duration=3600)
    assert judge(ended).verdict is ComplianceVerdict.NO_OVERLAP
    assert judge(active(START, (0, 16.0)), plan=[]).verdict is ComplianceVerdict.NO_OVERLAP


def test_a_duration_limits_the_judged_slots() -> None:
    result = judge(active(START + timedelta(minutes=5), (0, 16.0), duration=900))
    assert (result.first_slot, result.applied_w) == (0, [11040.0, 11040.0])
    assert result.verdict is ComplianceVerdict.COMPLIANT


def test_a_first_period_that_starts_late_leaves_the_time_before_it_unjudged() -> None:
    result = judge(active(START, (1800, 8.0)))
    assert (result.first_slot, result.applied_w) == (2, [5520.0, 5520.0])


def test_a_local_limit_below_the_plan_is_under_plan_and_weighs_in_the_fraction() -> None:
    result = judge(active(START, (0, 16.0), (900, 8.0)), plan=[11040.0, 11040.0])
    assert result.verdict is ComplianceVerdict.UNDER_PLAN
    assert result.shortfall_w == [0.0, 5520.0]
    assert result.compliant_fraction == 0.5


def test_our_own_rounding_and_minimum_rule_are_not_held_against_the_charge_point() -> None:
    # 3000 W is 4.3 A: we send 0 (below 6 A); 7000 W is 10.14 A: we send 10.1 A.
    result = judge(active(START, (0, 0.0), (900, 10.1)), plan=[3000.0, 7000.0])
    assert result.verdict is ComplianceVerdict.COMPLIANT


def test_small_conversion_differences_are_tolerated_but_a_tenth_of_an_ampere_over_is_not() -> None:
    rounded = active(START, (0, 11039.0), (1800, 5519.0), unit=ChargingRateUnit.W)
    assert judge(rounded).verdict is ComplianceVerdict.COMPLIANT
    over = judge(active(START, (0, 16.1), (1800, 8.0)))
    assert over.verdict is ComplianceVerdict.OVER_PLAN
    assert over.worst_excess_w == pytest.approx(69.0)


def test_after_the_failsafe_time_the_failsafe_share_is_the_reference() -> None:
    early = ProfileSettings(failsafe_delay_s=1800)
    plan = [11040.0, 11040.0, 0.0, 0.0]
    result = judge(active(START, (0, 16.0), (1800, 6.0)), plan=plan, settings=early)
    assert result.verdict is ComplianceVerdict.COMPLIANT
    assert judge(active(START, (0, 16.0), (1800, 7.0)), plan=plan, settings=early).verdict is (
        ComplianceVerdict.OVER_PLAN
    )


def test_a_step_less_than_a_second_early_is_truncation_not_an_excess() -> None:
    start = START + timedelta(microseconds=700000)  # the grid starts at 10:00:00.7
    result = judge(active(START, (0, 8.0), (900, 16.0)), plan=[5520.0, 11040.0], start=start)
    assert result.verdict is ComplianceVerdict.COMPLIANT
    assert result.worst_excess_w == 0.0


def test_periods_listed_out_of_order_are_sorted() -> None:
    result = judge(active(START, (1800, 8.0), (0, 16.0)))
    assert result.verdict is ComplianceVerdict.COMPLIANT


def test_the_verdict_values_are_their_names() -> None:
    assert {v.name: v.value for v in ComplianceVerdict} == {
        "COMPLIANT": "COMPLIANT",
        "OVER_PLAN": "OVER_PLAN",
        "UNDER_PLAN": "UNDER_PLAN",
        "NO_OVERLAP": "NO_OVERLAP",
    }


def test_a_naive_grid_start_is_read_as_utc() -> None:
    naive = datetime(2024, 1, 1, 10, 0)  # noqa: DTZ001
    result = judge(active(START, (0, 16.0), (1800, 8.0)), start=naive)
    assert result.verdict is ComplianceVerdict.COMPLIANT
    assert result.applied_w == PLAN
