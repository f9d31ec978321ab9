"""When a new profile must be sent: material differences and the approaching failsafe tail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from profiles import ElectricalFacts, ProfileSettings, build_profile, materially_different, resend_due

START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
SETTINGS = ProfileSettings(failsafe_delay_s=3600, resend_margin_s=900, material_a=1.0, material_s=60)


def profile(*limits: tuple[int, float], start: datetime | None = START, **extra: object) -> ChargingProfile:
    return ChargingProfile(
        start_date_time=start,
        charging_rate_unit=ChargingRateUnit.A,
        charging_profile_period=[ChargingProfilePeriod(start_period=s, limit=v) for s, v in limits],
        **extra,  # type: ignore[arg-type]
    )


OLD = profile((0, 16.0), (1800, 10.0), (3600, 6.0))


def differs(new: ChargingProfile, old: ChargingProfile = OLD, minutes: float = 0) -> bool:
    return materially_different(old, new, SETTINGS, now=START + timedelta(minutes=minutes))


def test_an_identical_profile_is_not_material() -> None:
    assert not differs(profile((0, 16.0), (1800, 10.0), (3600, 6.0)))


def test_a_changed_unit_or_minimum_rate_is_material() -> None:
    assert differs(msgspec.structs.replace(OLD, charging_rate_unit=ChargingRateUnit.W))
    assert differs(msgspec.structs.replace(OLD, min_charging_rate=6.0))


def test_any_lasting_decrease_is_material_however_small() -> None:
    assert differs(profile((0, 16.0), (1800, 9.9), (3600, 6.0)))


def test_a_decrease_shorter_than_the_time_threshold_is_not_material() -> None:
    assert not differs(profile((0, 16.0), (1770, 10.0), (3600, 6.0)))  # the step came 30 s earlier
    assert differs(profile((0, 16.0), (1700, 10.0), (3600, 6.0)))  # 100 s earlier


def test_a_small_increase_is_not_material_and_a_large_one_is() -> None:
    assert not differs(profile((0, 16.0), (1800, 10.5), (3600, 6.0)))
    assert differs(profile((0, 16.0), (1800, 11.1), (3600, 6.0)))


def test_a_large_increase_that_lasts_only_seconds_is_not_material() -> None:
    assert not differs(profile((0, 16.0), (1830, 10.0), (3600, 6.0)))  # 16 A 30 s longer


def test_differences_in_the_past_are_not_material() -> None:
    assert not differs(profile((0, 10.0), (1800, 10.0), (3600, 6.0)), minutes=30)


def test_a_lower_failsafe_share_is_material_and_a_higher_one_is_not() -> None:
    assert differs(profile((0, 16.0), (1800, 10.0), (3600, 5.0)))
    assert not differs(profile((0, 16.0), (1800, 10.0), (3600, 7.0)))


def test_a_later_profile_from_the_same_plan_is_not_material_although_its_tail_moved() -> None:
    facts = ElectricalFacts(phases=3, voltage_v=230.0)
    plan = [11040.0] * 8  # 16 A for two hours, on a 15-minute grid
    old = build_profile(plan, start=START, slot_s=900, facts=facts, failsafe_w=4140.0, settings=SETTINGS)
    later = START + timedelta(minutes=15)
    new = build_profile(plan[1:], start=later, slot_s=900, facts=facts, failsafe_w=4140.0, settings=SETTINGS)
    assert not materially_different(old, new, SETTINGS, now=later)
    assert not resend_due(old, SETTINGS, now=later)


def test_an_old_profile_that_has_ended_counts_as_no_limit() -> None:
    ended = profile((0, 16.0), duration=1800)
    assert differs(profile((0, 16.0)), old=ended)


def test_relative_profiles_are_material_unless_identical() -> None:
    relative = profile((0, 16.0), start=None)
    assert differs(relative)
    assert not differs(profile((0, 16.0), start=None), old=relative)


def test_a_re_send_is_due_when_the_failsafe_tail_is_nearer_than_the_margin() -> None:
    assert not resend_due(OLD, SETTINGS, now=START + timedelta(minutes=44, seconds=59))
    assert resend_due(OLD, SETTINGS, now=START + timedelta(minutes=45))
    assert resend_due(OLD, SETTINGS, now=START + timedelta(hours=5))


def test_no_re_send_is_due_for_a_constant_or_relative_profile() -> None:
    far = START + timedelta(hours=5)
    assert not resend_due(profile((0, 6.0)), SETTINGS, now=far)
    assert not resend_due(profile((0, 16.0), (3600, 6.0), start=None), SETTINGS, now=far)
