"""Building one session's ChargingProfile: units, rounding, minimum rate, failsafe tail, budget."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from ocpi221.chargingprofiles import ChargingRateUnit
from profiles import (
    ElectricalFacts,
    ProfileSettings,
    build_profile,
    coarsen_periods,
    facts_from_connector,
    failsafe_time,
)

START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
THREE_PHASE = ElectricalFacts(phases=3, voltage_v=230.0)


def periods(power_w: list[float], **kwargs: object) -> list[tuple[int, float]]:
    options: dict[str, object] = {
        "start": START,
        "slot_s": 900,
        "facts": THREE_PHASE,
        "failsafe_w": 0.0,
        "settings": ProfileSettings(),
    }
    options.update(kwargs)
    profile = build_profile(power_w, **options)  # type: ignore[arg-type]
    return [(p.start_period, p.limit) for p in profile.charging_profile_period]


def test_the_profile_starts_at_the_grid_start_in_utc_and_has_no_duration() -> None:
    cet = timezone(timedelta(hours=1))
    profile = build_profile(
        [6900.0],
        start=datetime(2024, 1, 1, 11, 0, tzinfo=cet),
        slot_s=900,
        facts=THREE_PHASE,
        failsafe_w=0.0,
        settings=ProfileSettings(),
    )
    assert profile.start_date_time == START
    assert profile.duration is None


def test_a_naive_start_is_read_as_utc() -> None:
    profile = build_profile(
        [6900.0],
        start=datetime(2024, 1, 1, 10, 0),  # noqa: DTZ001
        slot_s=900,
        facts=THREE_PHASE,
        failsafe_w=0.0,
        settings=ProfileSettings(),
    )
    assert profile.start_date_time == START


def test_ac_is_sent_in_amperes_per_phase_and_dc_in_watts() -> None:
    ac = build_profile(
        [11040.0], start=START, slot_s=900, facts=THREE_PHASE, failsafe_w=0.0, settings=ProfileSettings()
    )
    dc = build_profile(
        [11040.0],
        start=START,
        slot_s=900,
        facts=ElectricalFacts(dc=True, voltage_v=800.0),
        failsafe_w=0.0,
        settings=ProfileSettings(ac_charging_rate_unit=ChargingRateUnit.A),
    )
    assert (ac.charging_rate_unit, ac.charging_profile_period[0].limit) == (ChargingRateUnit.A, 16.0)
    assert (dc.charging_rate_unit, dc.charging_profile_period[0].limit) == (ChargingRateUnit.W, 11040.0)


def test_a_limit_a_hair_below_a_whole_tenth_is_not_pushed_down_a_step() -> None:
    # 16 A x 230 V x 3 computed the other way round in floating point.
    almost = 16.0 * 230.0 * 3.0 * (1 - 1e-15)
    assert almost < 11040.0
    assert periods([almost], settings=ProfileSettings(failsafe_delay_s=900))[0] == (0, 16.0)


def test_a_limit_just_under_a_tenth_rounds_down_even_when_round_would_go_up() -> None:
    assert periods([16.09 * 690.0], settings=ProfileSettings(failsafe_delay_s=900))[0] == (0, 16.0)


def test_a_non_zero_limit_below_the_minimum_is_sent_as_zero_never_raised() -> None:
    facts = ElectricalFacts(phases=1, voltage_v=230.0, min_current_a=10.0)
    profile = build_profile(
        [2200.0, 2300.0],
        start=START,
        slot_s=900,
        facts=facts,
        failsafe_w=0.0,
        settings=ProfileSettings(failsafe_delay_s=1800),
    )
    assert [(p.start_period, p.limit) for p in profile.charging_profile_period] == [
        (0, 0.0),
        (900, 10.0),
        (1800, 0.0),
    ]
    assert profile.min_charging_rate == 10.0


def test_the_minimum_rate_is_rounded_up_and_the_zero_rule_uses_the_rounded_value() -> None:
    facts = ElectricalFacts(phases=1, voltage_v=230.0, min_power_w=1400.0)  # 6.087 A -> 6.1 A
    profile = build_profile(
        [1400.0],
        start=START,
        slot_s=900,
        facts=facts,
        failsafe_w=0.0,
        settings=ProfileSettings(failsafe_delay_s=900, ac_floor_a=0.0),
    )
    assert profile.min_charging_rate == 6.1
    assert profile.charging_profile_period[0].limit == 0.0  # 6.0 A would be raised to 6.1 A


def test_without_the_ac_floor_small_currents_are_sent_as_planned() -> None:
    assert periods([690.0], settings=ProfileSettings(failsafe_delay_s=900, ac_floor_a=0.0))[0] == (0, 1.0)


def test_the_failsafe_tail_starts_at_the_delay_and_holds_the_share_forever() -> None:
    got = periods([11040.0] * 8, failsafe_w=4830.0, settings=ProfileSettings(failsafe_delay_s=2000))
    assert got == [(0, 16.0), (2000, 7.0)]


def test_the_failsafe_tail_starts_at_the_horizon_end_when_the_plan_is_shorter() -> None:
    got = periods([11040.0, 11040.0], failsafe_w=4830.0, settings=ProfileSettings(failsafe_delay_s=7200))
    assert got == [(0, 16.0), (1800, 7.0)]
    assert failsafe_time(START, slot_s=900, n_slots=2, settings=ProfileSettings(failsafe_delay_s=7200)) == (
        START + timedelta(seconds=1800)
    )


def test_an_empty_plan_gives_only_the_failsafe_tail() -> None:
    assert periods([], failsafe_w=4140.0) == [(0, 6.0)]


def test_a_zero_failsafe_delay_sends_the_failsafe_share_from_the_start() -> None:
    assert periods([11040.0], failsafe_w=4140.0, settings=ProfileSettings(failsafe_delay_s=0)) == [(0, 6.0)]


def test_the_failsafe_share_is_capped_at_the_evse_maximum() -> None:
    facts = ElectricalFacts(phases=3, voltage_v=230.0, max_amperage_a=16.0)
    assert periods(
        [0.0], facts=facts, failsafe_w=50000.0, settings=ProfileSettings(failsafe_delay_s=900)
    ) == [(0, 0.0), (900, 16.0)]


def test_the_period_budget_is_met_by_lowering_never_by_raising() -> None:
    plan = [11040.0, 6900.0, 11040.0, 6900.0, 11040.0]
    got = periods(plan, failsafe_w=6900.0, settings=ProfileSettings(failsafe_delay_s=4500, max_periods=2))
    # Everything after the first slot is >= the 10 A tail, so the tail takes over from 900 s.
    assert got == [(0, 16.0), (900, 10.0)]
    got = periods(plan, failsafe_w=4140.0, settings=ProfileSettings(failsafe_delay_s=4500, max_periods=2))
    assert got == [(0, 10.0), (4500, 6.0)]


def test_coarsening_prefers_cutting_a_short_peak_over_a_long_one() -> None:
    starts, limits = coarsen_periods([0, 100, 110, 1000, 3000], [5.0, 9.0, 5.0, 9.0, 0.0], 3)
    # Merging the 10 s peak at 9 costs 40; merging the 2000 s peak would cost 8000.
    assert (starts, limits) == ([0, 1000, 3000], [5.0, 9.0, 0.0])


def test_a_sub_second_start_keeps_every_second_within_the_plan() -> None:
    start = START + timedelta(microseconds=400000)
    got = periods(
        [6900.0, 11040.0, 6900.0],
        start=start,
        failsafe_w=6900.0,
        settings=ProfileSettings(failsafe_delay_s=2700),
    )
    # increase at 900.4 s -> from 901; decrease at 1800.4 s -> from 1800
    assert got == [(0, 10.0), (901, 16.0), (1800, 10.0)]


def test_a_one_second_grid_with_a_sub_second_start_takes_the_lower_limit_of_each_second() -> None:
    start = START + timedelta(microseconds=500000)
    got = periods(
        [6900.0, 11040.0, 4140.0, 11040.0],
        start=start,
        slot_s=1,
        failsafe_w=11040.0,
        settings=ProfileSettings(failsafe_delay_s=4),
    )
    # seconds [0,1): 10 A; [1,2): min(10,16); [2,3): min(16,6); [3,4): min(6,16); [4,...): min(16, tail 16)
    assert got == [(0, 10.0), (2, 6.0), (4, 16.0)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slot_s": 0}, "slot_s"),
        ({"slot_s": 900.0}, "slot_s"),
        ({"failsafe_w": -1.0}, "failsafe_w"),
        ({"failsafe_w": float("nan")}, "failsafe_w"),
    ],
)
def test_invalid_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        periods([1000.0], **kwargs)


def test_a_non_finite_planned_power_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        periods([float("inf")])


@pytest.mark.parametrize(
    ("power_type", "phases", "dc"),
    [
        ("AC_1_PHASE", 1, False),
        ("AC_2_PHASE", 2, False),
        ("AC_2_PHASE_SPLIT", 2, False),
        ("AC_3_PHASE", 3, False),
        ("DC", 3, True),
    ],
)
def test_connector_power_types_map_to_phases_and_dc(power_type: str, phases: int, dc: bool) -> None:
    facts = facts_from_connector(power_type, max_voltage=230, max_amperage=32)
    assert (facts.phases, facts.dc, facts.voltage_v, facts.max_amperage_a) == (phases, dc, 230, 32)


def test_an_unknown_power_type_is_refused() -> None:
    with pytest.raises(ValueError, match="AC_4_PHASE"):
        facts_from_connector("AC_4_PHASE", max_voltage=230)


def test_the_evse_maximum_is_the_lower_of_the_power_rating_and_volts_times_amperes() -> None:
    assert ElectricalFacts(phases=3, max_amperage_a=32.0, max_electric_power_w=11000.0).max_power_w == 11000.0
    assert ElectricalFacts(phases=1, max_amperage_a=16.0).max_power_w == 3680.0
    assert (
        ElectricalFacts(
            dc=True, voltage_v=920.0, max_amperage_a=400.0, max_electric_power_w=150000.0
        ).max_power_w
        == 150000.0
    )
    assert ElectricalFacts().max_power_w is None


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (ElectricalFacts, {"voltage_v": 0.0}),
        (ElectricalFacts, {"max_amperage_a": -16.0}),
        (ProfileSettings, {"max_periods": 0}),
        (ProfileSettings, {"failsafe_delay_s": -1}),
        (ProfileSettings, {"compliance_under_ratio": float("nan")}),
    ],
)
def test_meaningless_facts_and_settings_are_refused(model: type, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        model(**kwargs)


def test_the_example_profile_in_the_root_readme_is_what_build_profile_makes() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Profiles: units, rounding and the failsafe tail", 1)[1]
    shown = json.loads(section.split("```json", 1)[1].split("```", 1)[0])
    # The inputs the README states next to the example.
    built = build_profile(
        [11040.0, 11040.0, 6624.0, 6624.0],
        start=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
        slot_s=900,
        facts=facts_from_connector("AC_3_PHASE", max_voltage=230, max_amperage=32, min_current_a=6.0),
        failsafe_w=4600.0,
        settings=ProfileSettings(),
    )
    expected = json.loads(msgspec.json.encode(built))
    assert shown == expected
    assert list(shown) == list(expected)  # the same fields in the same order
    # Whatever the inputs: no non-zero limit below the minimum the profile states.
    assert all(p["limit"] == 0 or p["limit"] >= shown["min_charging_rate"] for p in shown["charging_profile_period"])
