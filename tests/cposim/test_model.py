"""The simulated world without I/O: profile semantics, A/W conversion, battery filling, metering, traffic."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from cposim.chargepoint import profile_limit_at
from cposim.model import CpoModel, EvseStatusChanged, SessionChanged, SessionStarted
from cposim.traffic import arrival_rate_per_h, draw_ev
from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.locations import EvseStatus
from ocpi221.sessions import SessionStatus
from scsp import errors
from scsp.config import DEFAULT_CONFIG_PATH, Config, SimulatorConfig, load_config
from tests.cposim.conftest import TEST_SITES

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)  # a Tuesday


def model(**changes: object) -> CpoModel:
    settings = msgspec.structs.replace(
        SimulatorConfig(arrivals=False, tick_s=1.0, session_update_s=60.0, sites=TEST_SITES), **changes
    )
    return CpoModel(settings, country_code="NL", party_id="SIM", now=T0)


def profile(
    *periods: tuple[int, float],
    unit: str = "A",
    start: datetime | None = None,
    duration: int | None = None,
    min_rate: float | None = None,
) -> ChargingProfile:
    return ChargingProfile(
        start_date_time=start,
        duration=duration,
        charging_rate_unit=ChargingRateUnit(unit),
        min_charging_rate=min_rate,
        charging_profile_period=[ChargingProfilePeriod(start_period=s, limit=v) for s, v in periods],
    )


def test_a_relative_profile_counts_from_the_start_of_charging_and_ends_with_its_duration() -> None:
    p = profile((0, 16.0), (600, 8.0), duration=1800)
    start = T0
    assert profile_limit_at(p, start, start) == 16.0
    assert profile_limit_at(p, start + timedelta(seconds=599), start) == 16.0
    assert profile_limit_at(p, start + timedelta(seconds=600), start) == 8.0
    assert profile_limit_at(p, start + timedelta(seconds=1799), start) == 8.0
    assert profile_limit_at(p, start + timedelta(seconds=1800), start) is None  # after the duration: no limit
    assert profile_limit_at(p, start - timedelta(seconds=1), start) is None


def test_an_absolute_profile_sets_no_limit_before_its_start_and_its_last_period_lasts_without_duration() -> (
    None
):
    p = profile((0, 10.0), (60, 6.0), start=T0 + timedelta(minutes=10))
    charging_start = T0
    assert profile_limit_at(p, T0 + timedelta(minutes=5), charging_start) is None
    assert profile_limit_at(p, T0 + timedelta(minutes=10), charging_start) == 10.0
    assert profile_limit_at(p, T0 + timedelta(days=3), charging_start) == 6.0
    # A first period that starts late leaves the time before it unlimited.
    assert profile_limit_at(profile((30, 5.0)), T0 + timedelta(seconds=10), T0) is None


@pytest.mark.parametrize(
    ("evse", "unit", "limit", "expected_w"),
    [
        ("A-AC3", "A", 10.0, 10 * 230 * 3),  # A x V (line to neutral) x 3 phases
        ("A-AC1", "A", 10.0, 10 * 230),  # one phase
        ("A-DC", "A", 40.0, 40 * 500),  # DC: A x DC voltage
        ("A-DC", "W", 20_000.0, 20_000),  # W as given
        ("A-AC3", "W", 5_000.0, 5_000),  # W on AC is the total
    ],
)
def test_a_limit_becomes_watts_by_phases_and_voltage(
    evse: str, unit: str, limit: float, expected_w: float
) -> None:
    m = model()
    ev, _ = m.plug_in(
        "LOC-A", evse, energy_kwh=50, max_w=300_000, departure_at=T0 + timedelta(hours=2), now=T0
    )
    m.apply_profile(ev, profile((0, limit), unit=unit), fraction=1.0, now=T0)
    assert ev.limit_w == pytest.approx(expected_w)
    assert ev.power_w == pytest.approx(expected_w)


def test_power_is_the_least_of_limit_vehicle_and_evse() -> None:
    m = model()
    ev, _ = m.plug_in(
        "LOC-A", "A-AC3", energy_kwh=50, max_w=7_000, departure_at=T0 + timedelta(hours=2), now=T0
    )
    assert ev.power_w == 7_000  # the vehicle limits (EVSE: 11 040 W)
    m.apply_profile(ev, profile((0, 8.0)), fraction=1.0, now=T0)
    assert ev.power_w == 8 * 230 * 3  # the profile limits
    m.apply_profile(ev, profile((0, 32.0)), fraction=1.0, now=T0)
    assert ev.power_w == 7_000
    big, _ = m.plug_in(
        "LOC-A", "A-DC", energy_kwh=50, max_w=150_000, departure_at=T0 + timedelta(hours=1), now=T0
    )
    assert big.power_w == 50_000  # max_electric_power of the EVSE


def test_a_one_phase_vehicle_on_a_three_phase_evse_draws_on_one_phase() -> None:
    m = model()
    ev, _ = m.plug_in(
        "LOC-A", "A-AC3", energy_kwh=50, max_w=7_400, departure_at=T0 + timedelta(hours=2), now=T0, phases=1
    )
    assert ev.power_w == 16 * 230  # the EVSE's 16 A on the one phase used
    m.apply_profile(ev, profile((0, 10.0)), fraction=1.0, now=T0)
    assert ev.power_w == 10 * 230


def test_a_limit_below_the_minimum_rate_stops_charging() -> None:
    m = model()
    ev, _ = m.plug_in(
        "LOC-A", "A-AC3", energy_kwh=50, max_w=22_000, departure_at=T0 + timedelta(hours=2), now=T0, min_a=6.0
    )
    m.apply_profile(ev, profile((0, 5.9)), fraction=1.0, now=T0)
    assert ev.power_w == 0.0  # below the vehicle's 6 A
    m.apply_profile(ev, profile((0, 6.0)), fraction=1.0, now=T0)
    assert ev.power_w == 6 * 230 * 3
    m.apply_profile(ev, profile((0, 7.0), min_rate=8.0), fraction=1.0, now=T0)
    assert ev.power_w == 0.0  # below the profile's min_charging_rate
    m.apply_profile(ev, profile((0, 3000.0), unit="W"), fraction=1.0, now=T0)
    assert ev.power_w == 0.0  # 3000 W over 3 phases is 4.3 A < 6 A
    m.apply_profile(ev, profile((0, 0.0)), fraction=1.0, now=T0)
    assert ev.power_w == 0.0


def test_energy_grows_with_power_and_time_and_stops_when_the_need_is_met() -> None:
    m = model()
    ev, _ = m.plug_in(
        "LOC-A", "A-AC1", energy_kwh=1.0, max_w=7_360, departure_at=T0 + timedelta(hours=5), now=T0
    )
    m.step(T0 + timedelta(seconds=60))
    assert ev.kwh == pytest.approx(7_360 * 60 / 3600 / 1000)
    t = T0 + timedelta(seconds=60)
    for _ in range(600):
        t += timedelta(seconds=1)
        m.step(t)
    assert ev.kwh == pytest.approx(1.0) and ev.full and ev.power_w == 0.0
    assert ev.active  # still plugged until departure
    assert m.sites["LOC-A"].meter.energy_wh == pytest.approx(1000.0)


def test_the_ev_leaves_at_its_departure_and_the_session_completes() -> None:
    m = model()
    ev, events = m.plug_in(
        "LOC-A", "A-AC3", energy_kwh=5, max_w=11_000, departure_at=T0 + timedelta(minutes=2), now=T0
    )
    assert isinstance(events[0], EvseStatusChanged) and events[0].status == EvseStatus.CHARGING
    assert isinstance(events[1], SessionStarted) and events[1].session.status == SessionStatus.ACTIVE
    events = m.step(T0 + timedelta(minutes=2))
    ended = [e for e in events if isinstance(e, SessionChanged)]
    assert ended and ended[0].final and ended[0].patch.status == SessionStatus.COMPLETED
    assert ended[0].patch.end_date_time == T0 + timedelta(minutes=2)
    assert m.evse("LOC-A", "A-AC3").status == EvseStatus.AVAILABLE and not ev.active
    session = m.session(ev)
    assert session.status == SessionStatus.COMPLETED and session.kwh == pytest.approx(
        11_000 * 120 / 3600 / 1000, abs=1e-4
    )


def test_session_updates_append_one_charging_period_with_energy_and_average_power() -> None:
    m = model(session_update_s=60.0)
    ev, _ = m.plug_in(
        "LOC-A", "A-AC3", energy_kwh=50, max_w=11_040, departure_at=T0 + timedelta(hours=1), now=T0
    )
    events = [e for s in range(1, 61) for e in m.step(T0 + timedelta(seconds=s))]
    patches = [e for e in events if isinstance(e, SessionChanged)]
    assert len(patches) == 1 and patches[0].patch.kwh == pytest.approx(0.184)
    periods = patches[0].patch.charging_periods
    assert isinstance(periods, list) and len(periods) == 1
    dims = {d.type: d.volume for d in periods[0].dimensions}
    assert dims["ENERGY"] == pytest.approx(0.184) and dims["POWER"] == pytest.approx(11.04)
    assert periods[0].start_date_time == T0
    assert m.session(ev).charging_periods == periods


def test_the_meter_records_the_sum_of_the_site_load_each_tick() -> None:
    m = model()
    m.plug_in("LOC-A", "A-AC3", energy_kwh=50, max_w=11_040, departure_at=T0 + timedelta(hours=1), now=T0)
    m.plug_in("LOC-A", "A-AC1", energy_kwh=50, max_w=3_000, departure_at=T0 + timedelta(hours=1), now=T0)
    m.plug_in("LOC-B", "B-AC3-1", energy_kwh=50, max_w=22_080, departure_at=T0 + timedelta(hours=1), now=T0)
    m.step(T0 + timedelta(seconds=1))
    assert m.sites["LOC-A"].meter.samples[-1][1] == 14_040.0
    assert m.sites["LOC-B"].meter.samples[-1][1] == 22_080.0
    m.step(T0 + timedelta(seconds=2))
    assert m.sites["LOC-A"].meter.energy_wh == pytest.approx(14_040 * 2 / 3600)
    assert m.sites["LOC-A"].meter.peak_w == 14_040.0


def test_the_meter_keeps_only_its_window() -> None:
    m = model(meter_window_s=10)
    for s in range(1, 31):
        m.step(T0 + timedelta(seconds=s))
    samples = m.sites["LOC-A"].meter.samples
    assert samples[0][0] >= (T0 + timedelta(seconds=20)).timestamp() and len(samples) == 11


def test_the_active_profile_starts_now_caps_at_the_evse_and_shows_the_maximum_without_a_profile() -> None:
    m = model()
    ev, _ = m.plug_in(
        "LOC-A", "A-AC3", energy_kwh=50, max_w=22_000, departure_at=T0 + timedelta(hours=3), now=T0
    )
    now = T0 + timedelta(minutes=5, microseconds=500)
    bare = m.active_profile(ev, now, 900)
    assert bare.start_date_time == T0 + timedelta(minutes=5)
    assert bare.charging_profile.charging_rate_unit == "A"
    assert [(p.start_period, p.limit) for p in bare.charging_profile.charging_profile_period] == [(0, 16.0)]
    m.apply_profile(ev, profile((0, 20.0), (600, 10.0), (1200, 10.0), (1500, 6.3)), fraction=1.0, now=T0)
    active = m.active_profile(ev, now, 3600).charging_profile
    # 20 A is capped at the EVSE's 16 A; periods are relative to now (5 min after the start of charging).
    assert [(p.start_period, p.limit) for p in active.charging_profile_period] == [
        (0, 16.0),
        (300, 10.0),
        (1200, 6.3),
    ]
    assert active.duration == 3600
    m.apply_profile(ev, profile((0, 11.0)), fraction=0.5, now=T0)
    assert ev.profile_source == "set x 0.5"
    assert [
        (p.start_period, p.limit)
        for p in m.active_profile(ev, now, 900).charging_profile.charging_profile_period
    ] == [(0, 5.5)]


def test_plugging_into_an_occupied_or_unknown_evse_is_refused() -> None:
    m = model()
    m.plug_in("LOC-A", "A-AC3", energy_kwh=5, max_w=11_000, departure_at=T0 + timedelta(hours=1), now=T0)
    with pytest.raises(errors.Conflict):
        m.plug_in("LOC-A", "A-AC3", energy_kwh=5, max_w=11_000, departure_at=T0 + timedelta(hours=1), now=T0)
    with pytest.raises(errors.NotFound):
        m.plug_in("LOC-A", "NOPE", energy_kwh=5, max_w=11_000, departure_at=T0 + timedelta(hours=1), now=T0)
    with pytest.raises(errors.UnknownLocation):
        m.plug_in("LOC-X", "A-AC3", energy_kwh=5, max_w=11_000, departure_at=T0 + timedelta(hours=1), now=T0)


def test_the_default_layout_has_two_locations_of_at_least_ten_evses_with_every_power_type() -> None:
    m = CpoModel(SimulatorConfig(), country_code="NL", party_id="SIM", now=T0)
    assert len(m.sites) == 2 and all(len(s.evses) >= 10 for s in m.sites.values())
    kinds = {e.power_type for s in m.sites.values() for e in s.evses.values()}
    assert kinds == {"AC_1_PHASE", "AC_3_PHASE", "DC"}
    assert any(not e.profile_capable for s in m.sites.values() for e in s.evses.values())


def test_the_shipped_simulator_section_equals_the_defaults() -> None:
    shipped = load_config(DEFAULT_CONFIG_PATH, env={}).simulator
    assert msgspec.structs.replace(shipped, db_path="x") == msgspec.structs.replace(
        Config().simulator, db_path="x"
    )


def test_arrivals_are_reproducible_with_a_seed_and_follow_the_daily_pattern() -> None:
    def run(seed: int) -> list[tuple[str, str]]:
        settings = SimulatorConfig(seed=seed, arrival_rate_scale=5.0, tick_s=30.0)
        m = CpoModel(settings, country_code="NL", party_id="SIM", now=T0)
        start = datetime(2025, 3, 4, 0, 0, tzinfo=UTC)  # Tuesday, midnight UTC
        m.last_tick = start
        out = []
        for step in range(1, 2881):  # one day in 30 s ticks
            for event in m.step(start + timedelta(seconds=30 * step)):
                if isinstance(event, SessionStarted):
                    out.append((event.session.evse_uid, event.session.start_date_time.isoformat()))
        return out

    first = run(7)
    assert first == run(7) and first != run(8)
    assert len(first) > 20
    # Workplace EVSEs: the morning rate is far above the night rate (local time, Europe/Amsterdam).
    morning = arrival_rate_per_h("workplace", datetime(2025, 3, 4, 7, 30, tzinfo=UTC), "Europe/Amsterdam")
    night = arrival_rate_per_h("workplace", datetime(2025, 3, 4, 2, 0, tzinfo=UTC), "Europe/Amsterdam")
    weekend = arrival_rate_per_h("workplace", datetime(2025, 3, 8, 7, 30, tzinfo=UTC), "Europe/Amsterdam")
    assert morning > 20 * night and morning > 5 * weekend


def test_drawn_evs_have_realistic_needs_dwell_and_chargers() -> None:
    rng = random.Random(3)
    morning = datetime(2025, 3, 4, 7, 30, tzinfo=UTC)
    work = [draw_ev(rng, "workplace", morning, "Europe/Amsterdam", False) for _ in range(500)]
    assert 6 * 3600 < statistics.median(e.dwell_s for e in work) < 10 * 3600
    assert all(2 <= e.energy_kwh <= 60 and e.min_a == 6.0 and e.phases in (1, 3) for e in work)
    assert {e.max_w for e in work} == {3680.0, 7360.0, 11040.0, 22080.0}
    fast = [draw_ev(rng, "dc", morning, "Europe/Amsterdam", True) for _ in range(300)]
    assert 20 * 60 < statistics.median(e.dwell_s for e in fast) < 45 * 60
    assert all(5 <= e.energy_kwh <= 80 and e.max_w >= 50_000 for e in fast)
