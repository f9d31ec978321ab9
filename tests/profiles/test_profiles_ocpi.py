"""The ChargingProfiles wire objects: names, enum values, DateTime handling, the strict writer check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from ocpi221.chargingprofiles import (
    ActiveChargingProfile,
    ChargingProfile,
    ChargingProfilePeriod,
    ChargingRateUnit,
    spec_violations,
)
from ocpi221.types import OcpiObject


def test_charging_rate_unit_values_are_the_spec_values_and_equal_their_names() -> None:
    assert {u.name: u.value for u in ChargingRateUnit} == {"W": "W", "A": "A"}
    assert ChargingRateUnit.A == "A"


def test_a_datetime_without_designator_is_read_as_utc_and_written_with_z() -> None:
    raw = b'{"start_date_time":"2016-12-29T17:45:09","charging_rate_unit":"A"}'
    profile = msgspec.json.decode(raw, type=ChargingProfile)
    assert profile.start_date_time == datetime(2016, 12, 29, 17, 45, 9, tzinfo=UTC)
    assert b'"start_date_time":"2016-12-29T17:45:09Z"' in msgspec.json.encode(profile)


def test_fractional_seconds_are_truncated_so_the_datetime_fits_string_25() -> None:
    raw = b'{"start_date_time":"2018-01-01T01:08:01.923Z","charging_profile":{"charging_rate_unit":"W"}}'
    active = msgspec.json.decode(raw, type=ActiveChargingProfile)
    assert active.start_date_time == datetime(2018, 1, 1, 1, 8, 1, tzinfo=UTC)
    encoded = msgspec.json.encode(active).decode()
    assert '"start_date_time":"2018-01-01T01:08:01Z"' in encoded


def test_an_offset_datetime_given_in_code_is_converted_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    profile = ChargingProfile(
        charging_rate_unit=ChargingRateUnit.W, start_date_time=datetime(2024, 1, 1, 11, 0, tzinfo=cet)
    )
    assert profile.start_date_time == datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
    assert profile.start_date_time is not None and profile.start_date_time.utcoffset() == timedelta(0)


def test_unknown_fields_are_ignored_and_a_missing_period_list_reads_as_empty() -> None:
    raw = (
        b'{"start_date_time":"2024-01-01T10:00:00Z","vendor":{"x":1},'
        b'"charging_profile":{"charging_rate_unit":"A","stack_level":3}}'
    )
    active = msgspec.json.decode(raw, type=ActiveChargingProfile)
    assert active.charging_profile.charging_profile_period == []


def test_unset_optional_fields_are_left_out_of_the_json() -> None:
    profile = ChargingProfile(
        charging_rate_unit=ChargingRateUnit.A,
        charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=16.0)],
    )
    assert msgspec.json.decode(msgspec.json.encode(profile)) == {
        "charging_rate_unit": "A",
        "charging_profile_period": [{"start_period": 0, "limit": 16.0}],
    }


def test_a_frozen_subclass_of_the_base_is_normalised_too() -> None:
    class Stamp(OcpiObject, kw_only=True, frozen=True):  # type: ignore[misc]  # mypy's view of msgspec
        at: datetime

    assert Stamp(at=datetime(2024, 5, 1, 12, 0, 0, 500)).at  # noqa: DTZ001 == datetime(2024, 5, 1, 12, tzinfo=UTC)


def _valid() -> ChargingProfile:
    return ChargingProfile(
        charging_rate_unit=ChargingRateUnit.A,
        start_date_time=datetime(2024, 1, 1, 10, tzinfo=UTC),
        min_charging_rate=6.0,
        charging_profile_period=[
            ChargingProfilePeriod(start_period=0, limit=16.0),
            ChargingProfilePeriod(start_period=1800, limit=8.1),
        ],
    )


def test_a_profile_with_one_decimal_limits_and_increasing_periods_has_no_violations() -> None:
    assert spec_violations(_valid()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"limit": 8.15}, "limit 8.15"),
        ({"limit": -1.0}, "limit -1.0"),
        ({"start_period": 0}, "does not increase"),
    ],
)
def test_the_writer_check_names_a_bad_second_period(change: dict[str, float], expected: str) -> None:
    profile = _valid()
    second = msgspec.structs.replace(profile.charging_profile_period[1], **change)
    bad = msgspec.structs.replace(
        profile, charging_profile_period=[profile.charging_profile_period[0], second]
    )
    assert any(expected in problem for problem in spec_violations(bad))


def test_the_writer_check_rejects_an_empty_period_list_a_late_first_period_and_a_two_decimal_minimum() -> (
    None
):
    profile = _valid()
    assert spec_violations(msgspec.structs.replace(profile, charging_profile_period=[])) == [
        "no charging_profile_period"
    ]
    late = [ChargingProfilePeriod(start_period=5, limit=1.0)]
    assert "not 0" in spec_violations(msgspec.structs.replace(profile, charging_profile_period=late))[0]
    assert "min_charging_rate" in spec_violations(msgspec.structs.replace(profile, min_charging_rate=6.25))[0]


def test_the_writer_check_rejects_a_non_finite_limit() -> None:
    profile = msgspec.structs.replace(
        _valid(), charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=float("nan"))]
    )
    assert spec_violations(profile) == ["limit nan is not a finite number"]
