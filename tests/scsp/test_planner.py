"""The planner's gather/solve/profile steps on a real SQLite store (no HTTP)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

import optimizer
from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod
from ocpi221.locations import Location
from ocpi221.sessions import Session
from scsp.config import Config, DefaultsConfig, PlanningConfig
from scsp.planning import gather, solve, vehicle
from scsp.planning.record import plan_record
from scsp.records.commands import Command, CommandKind, CommandState, NotSteered
from scsp.records.grid import SignalKind, SignalPoint, SiteSettings
from scsp.records.sessions import Preferences, SessionKey
from scsp.store import Store
from tests.conftest import EXAMPLES, register_party

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

# A fixed time long past, where a test needs some time and the value does not matter.
EPOCH1 = datetime.fromtimestamp(1, UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "scsp.db")
    s.migrate()
    return s


def config(**planning: Any) -> Config:
    return Config(planning=PlanningConfig(**{"horizon_h": 2.0, "slot_minutes": 15, **planning}),
                  defaults=DefaultsConfig(site_limit_w=50_000.0, failsafe_fraction=0.2))


def location(evses: list[dict[str, Any]]) -> Location:
    doc = json.loads((EXAMPLES / "location_example.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id="LOC1", evses=evses)
    return msgspec.convert(doc, Location)


def evse(uid: str, power_type: str = "AC_3_PHASE", amps: int = 16, capable: bool = True) -> dict[str, Any]:
    return {"uid": uid, "status": "CHARGING", "last_updated": "2026-11-25T10:00:00Z",
            "capabilities": ["CHARGING_PROFILE_CAPABLE"] if capable else [],
            "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": power_type,
                            "max_voltage": 230 if power_type != "DC" else 500, "max_amperage": amps,
                            "last_updated": "2026-11-25T10:00:00Z",
                            **({"max_electric_power": 50_000} if power_type == "DC" else {})}]}


def session(sid: str, evse_uid: str, kwh: float = 0.0, location_id: str = "LOC1") -> Session:
    doc = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id=sid, evse_uid=evse_uid, location_id=location_id, kwh=kwh,
               status="ACTIVE", start_date_time="2026-11-25T11:00:00Z", last_updated="2026-11-25T11:30:00Z")
    return msgspec.convert(doc, Session)


def test_gather_reads_facts_preferences_limits_and_marks_fixed_load(store: Store) -> None:
    _, party = register_party(store, "NL", "CPA", endpoints=[])
    store.sessions.put_location(party.id, location([evse("E1"), evse("E2", "AC_1_PHASE", 32), evse("E3", capable=False),
                                           evse("E4", "DC")]))
    for sid, uid in (("S1", "E1"), ("S2", "E2"), ("S3", "E3"), ("S4", "E4"), ("S5", "UNKNOWN-EVSE")):
        store.sessions.put(party.id, session(sid, uid, kwh=2.0), now=NOW)
    store.grid.put_preferences(Preferences(country_code="NL", party_id="CPA", session_id="S1", profile_type="FAST",
                                      departure=NOW + timedelta(minutes=50), energy_kwh=12.0))
    store.grid.put_settings(SiteSettings(site_id="NL-CPA-LOC1", import_limit_w=40_000.0, failsafe_w=10_000.0,
                                         phase_assignment={"E2": "L3"}, updated_at=EPOCH1))
    store.grid.replace_signals("NL-CPA-LOC1", [SignalPoint(kind=SignalKind.IMPORT_LIMIT, source="dso",
                                                           start=NOW + timedelta(seconds=900),
                                                           end=NOW + timedelta(seconds=1800), value=20_000.0,
                                                           expires_at=NOW + timedelta(seconds=7200),
                                                           submitted_at=NOW)], now=NOW)
    [site] = gather.gather(store, config(), NOW)
    assert site.site_id == "NL-CPA-LOC1" and site.n_slots == 8 and site.slot_s == 900
    assert site.limit_w[:3] == [40_000.0, 20_000.0, 40_000.0]  # the signal only lowers the grid limit
    by_id = {s.key.session_id: s for s in site.sessions}
    s1 = by_id["S1"]
    assert (s1.profile_type, s1.departure_slot, s1.need_kwh) == ("FAST", 4, 10.0)
    assert s1.max_w == 230 * 16 * 3 and s1.min_w == pytest.approx(6 * 230 * 3)
    assert by_id["S2"].phase == "L3" and by_id["S2"].facts.phases == 1 and by_id["S2"].max_w == 230 * 32
    assert by_id["S4"].facts.dc and by_id["S4"].min_w == 0.0 and by_id["S4"].max_w == 50_000
    # Unknown EVSE: the configured defaults (AC 3-phase 16 A 230 V), still ours to steer.
    assert by_id["S5"].max_w == 230 * 16 * 3 and by_id["S5"].controllable
    # Not capable: fixed load at its maximum until departure, never steered.
    s3 = by_id["S3"]
    assert not s3.controllable and s3.reason and "CAPABLE" in s3.reason
    assert site.fixed_load_w[0] == pytest.approx(230 * 16 * 3)


def test_a_planned_site_never_exceeds_its_limit_and_gets_profiles(store: Store) -> None:
    _, party = register_party(store, "NL", "CPA")
    store.sessions.put_location(party.id, location([evse(f"E{i}") for i in range(6)]))
    for i in range(6):
        store.sessions.put(party.id, session(f"S{i}", f"E{i}"), now=NOW)
    store.grid.put_settings(SiteSettings(site_id="NL-CPA-LOC1", import_limit_w=30_000.0, failsafe_w=9_000.0,
                                         updated_at=EPOCH1))
    cfg = config()
    [site] = gather.gather(store, cfg, NOW)
    result = solve.solve_site(site, optimizer.SolveOptions())
    assert result is not None and result.status.value in ("OPTIMAL", "FEASIBLE")
    record = plan_record(site, result, cfg, NOW)
    assert max(record.site_power_w) <= 30_000.0 + 1e-3
    profiles = [r.profile for r in record.sessions]
    assert all(p is not None and p.charging_rate_unit == "A" for p in profiles)
    # The profiles' first limits (A per phase x 230 V x 3 phases) never add up above the limit.
    first = sum(p.charging_profile_period[0].limit * 230 * 3 for p in profiles if p is not None)
    assert first <= 30_000.0
    # Their failsafe tails add up to at most the site failsafe limit.
    tails = sum(p.charging_profile_period[-1].limit * 230 * 3 for p in profiles if p is not None)
    assert tails <= 9_000.0
    plan_id = store.plans.save(record).id
    stored = store.plans.row(SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id="S0"))
    assert stored is not None and stored[0].id == plan_id and stored[1].profile == profiles[0]


def test_sessions_of_an_unreachable_cpo_become_fixed_load(store: Store) -> None:
    _, party = register_party(store, "NL", "CPA")
    store.sessions.put_location(party.id, location([evse("E1")]))
    store.sessions.put(party.id, session("S1", "E1"), now=NOW)
    store.sync.unreachable(party.id, since=datetime.fromtimestamp(1, UTC), resync=False)
    [site] = gather.gather(store, config(), NOW)
    [s1] = site.sessions
    assert not s1.controllable and s1.reason == "CPO unreachable"
    assert site.fixed_load_w[0] == pytest.approx(230 * 16 * 3)
    assert solve.solve_site(site, optimizer.SolveOptions()) is None  # nothing left to steer


def test_price_signals_are_resampled_by_time_weight_and_gaps_filled_neutrally() -> None:
    start = datetime.fromtimestamp(1_000_000, UTC)
    far = datetime(2100, 1, 1, tzinfo=UTC)
    points = [SignalPoint(kind=SignalKind.PRICE, source="a", start=start, end=start + timedelta(seconds=450),
                          value=0.10, expires_at=far, submitted_at=EPOCH1),
              SignalPoint(kind=SignalKind.PRICE, source="a", start=start + timedelta(seconds=450),
                          end=start + timedelta(seconds=900), value=0.30, expires_at=far, submitted_at=EPOCH1)]
    values = gather.resample(points, start, 900, 2, how="newest")
    assert values == [pytest.approx(0.2), None]
    assert gather._fill(values) == [pytest.approx(0.2), pytest.approx(0.2)]
    assert gather._fill([None, None]) is None


def test_a_session_silent_for_a_day_is_not_planned(store: Store) -> None:
    _, party = register_party(store, "NL", "CPA")
    store.sessions.put_location(party.id, location([evse("E1"), evse("E2")]))
    store.sessions.put(party.id, session("FRESH", "E1"), now=NOW)
    old = msgspec.structs.replace(session("LOST", "E2"), last_updated=datetime(2026, 11, 23, 12, tzinfo=UTC))
    store.sessions.put(party.id, old, now=NOW)
    [site] = gather.gather(store, config(), NOW)
    assert [s.key.session_id for s in site.sessions] == ["FRESH"]


def test_a_cpo_that_demands_w_gets_w_profiles_for_ac(store: Store) -> None:
    _, party = register_party(store, "NL", "CPA")
    store.sessions.put_location(party.id, location([evse("E1")]))
    store.sessions.put(party.id, session("S1", "E1"), now=NOW)
    cfg = msgspec.structs.replace(config(), party_profiles={"NL-CPA": {"ac_charging_rate_unit": "W",
                                                                          "max_periods": 3}})
    [site] = gather.gather(store, cfg, NOW)
    record = plan_record(site, solve.solve_site(site, optimizer.SolveOptions()), cfg, NOW)
    profile = record.sessions[0].profile
    assert profile is not None and profile.charging_rate_unit == "W"
    assert len(profile.charging_profile_period) <= 3


def test_failsafe_tails_are_whole_vehicle_shares_within_the_phase_limit(store: Store) -> None:
    _, party = register_party(store, "NL", "CPA")
    store.sessions.put_location(party.id, location([evse(f"E{i}", "AC_1_PHASE", 32) for i in range(4)]))
    for i in range(4):
        store.sessions.put(party.id, session(f"S{i}", f"E{i}"), now=NOW)
    # Four single-phase EVSEs on L2 behind a 20 A phase limit; a 20 kW failsafe limit would give each
    # 5 kW (21.7 A): 87 A on L2 if the service vanished.
    store.grid.put_settings(SiteSettings(site_id="NL-CPA-LOC1", import_limit_w=40_000.0, failsafe_w=20_000.0,
                                         phase_limit_a=20.0, phase_assignment={f"E{i}": "L2" for i in range(4)},
                                         updated_at=EPOCH1))
    cfg = config()
    [site] = gather.gather(store, cfg, NOW)
    record = plan_record(site, solve.solve_site(site, optimizer.SolveOptions()), cfg, NOW)
    tails = [r.profile.charging_profile_period[-1].limit for r in record.sessions if r.profile is not None]
    assert len(tails) == 4
    assert sum(tails) <= 20.0  # A on L2
    # Each tail is 0 or at least the 6 A an EV can take: no share is wasted on a limit sent as 0.
    assert all(t == 0.0 or t >= 6.0 for t in tails) and sum(t >= 6.0 for t in tails) == 3


# -- the learned vehicle maximum -----------------------------------------------------------------

def at(minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 25, 11, minute, second, tzinfo=UTC)


def amps(*periods: tuple[int, float]) -> ChargingProfile:
    return ChargingProfile(charging_rate_unit="A", start_date_time=at(0),
                           charging_profile_period=[ChargingProfilePeriod(start_period=p, limit=a) for p, a in periods])


def learning(store: Store, power_kw: dict[tuple[int, int], float], accepted: list[tuple[datetime, datetime, Any]]
             ) -> tuple[Any, SessionKey]:
    """A 22 kW EVSE whose session drew `power_kw` from each (minute, second) on, under our `accepted`
    profiles, each (sent, accepted, profile); returns the party and the session's key."""
    _, party = register_party(store, "NL", "CPA")
    store.sessions.put_location(party.id, location([evse("E1", amps=32)]))
    doc = msgspec.to_builtins(session("S1", "E1"))
    doc["charging_periods"] = [
        {"start_date_time": at(m, sec).isoformat().replace("+00:00", "Z"),
         "dimensions": [{"type": "POWER", "volume": kw}]} for (m, sec), kw in sorted(power_kw.items())]
    store.sessions.put(party.id, msgspec.convert(doc, Session), now=NOW)
    key = SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id="S1")
    for sent, taken, profile in accepted:
        command = Command(id=uuid.uuid4().hex, kind=CommandKind.SET, key=key, state=CommandState.PENDING,
                          created_at=sent, profile=profile)
        assert store.commands.create(command)
        store.commands.record_response(command.id, response="ACCEPTED", timeout_s=60, now=sent)
        store.commands.record_result(command.id, result="ACCEPTED", now=taken)
    return party, key


def test_a_vehicle_drawing_below_its_limit_is_planned_at_what_it_showed(store: Store) -> None:
    # After our 32 A profile was accepted at 11:00, the car drew 11 kW (its on-board charger).
    learning(store, {(5, 0): 11.0, (10, 0): 11.0, (15, 0): 11.0}, [(at(0), at(0, 1), amps((0, 32.0)))])
    [site] = gather.gather(store, config(), NOW)
    assert site.sessions[0].max_w == pytest.approx(11_000 * vehicle.VEHICLE_CAP_MARGIN)
    assert site.sessions[0].evse_max_w == 230 * 32 * 3


def test_drawing_at_the_limit_says_nothing_about_the_vehicle(store: Store) -> None:
    learning(store, {(5, 0): 11.0, (10, 0): 11.0, (15, 0): 11.0}, [(at(0), at(0, 1), amps((0, 16.0)))])
    [site] = gather.gather(store, config(), NOW)
    assert site.sessions[0].max_w == 230 * 32 * 3


def test_the_learned_maximum_holds_once_the_vehicle_is_planned_at_it(store: Store) -> None:
    # 11 kW under 32 A, then our 17.6 A (12.1 kW) profile, which the car meets: still an 11 kW car. Were
    # the maximum forgotten, the next plan would go back to 32 A, then 17.6 A again: a profile a cycle.
    learning(store, {(5, 0): 11.0, (5, 30): 11.0, (6, 0): 11.0, (8, 0): 11.0, (9, 0): 11.0, (12, 0): 11.0},
             [(at(0), at(0, 1), amps((0, 32.0))), (at(7), at(7, 1), amps((0, 17.6)))])
    [site] = gather.gather(store, config(), NOW)
    assert site.sessions[0].max_w == pytest.approx(11_000 * vehicle.VEHICLE_CAP_MARGIN)


def test_what_a_vehicle_showed_long_ago_is_forgotten(store: Store) -> None:
    # Limited at 11 kW early on; for the last half hour it has drawn at our 17.6 A limit.
    learning(store, {(1, 0): 11.0, (2, 0): 11.0, **{(m, 0): 12.0 for m in range(35, 56, 5)}},
             [(at(0), at(0, 1), amps((0, 32.0))), (at(3), at(3, 1), amps((0, 17.6)))])
    [site] = gather.gather(store, config(), NOW)
    assert site.sessions[0].max_w == 230 * 32 * 3


def test_periods_that_straddle_a_change_of_profile_or_of_its_limit_teach_nothing(store: Store) -> None:
    # 32 A until 11:05:30, then 16 A: the periods 11:05-11:06 and 11:15-11:16 straddle a fall of the limit,
    # so their averages sit between the two limits. And the profile of 11:20 was sent at 11:20 but
    # accepted only at 11:22: the period 11:20:30-11:21 may be under either.
    learning(store, {(5, 0): 16.5, (6, 0): 11.0, (15, 0): 8.0, (16, 0): 5.5, (20, 30): 1.0, (21, 0): 5.5},
             [(at(0), at(0, 1), amps((0, 32.0), (330, 16.0), (900, 16.0), (930, 8.0))),
              (at(20), at(22), amps((0, 8.0)))])
    [site] = gather.gather(store, config(), NOW)
    assert site.sessions[0].max_w == 230 * 32 * 3


def test_before_our_first_profile_the_vehicle_shows_its_own_maximum(store: Store) -> None:
    # The period from 11:03 straddles our first profile (sent 11:03) and teaches nothing.
    learning(store, {(1, 0): 7.0, (2, 0): 7.2, (3, 0): 3.0}, [(at(3), at(3, 1), amps((0, 32.0)))])
    [site] = gather.gather(store, config(), NOW)
    assert site.sessions[0].max_w == pytest.approx(7_200 * vehicle.VEHICLE_CAP_MARGIN)


def test_a_session_we_cannot_steer_stays_fixed_load_at_the_evse_maximum(store: Store) -> None:
    _, key = learning(store, {(1, 0): 7.0, (2, 0): 7.2}, [])
    store.commands.set_controllable(key, False, NotSteered.CPO_NOT_SUPPORTED)
    [site] = gather.gather(store, config(), NOW)
    assert not site.sessions[0].controllable and site.sessions[0].max_w == 230 * 32 * 3


def test_the_plan_keeps_the_evse_maximum_beside_the_learned_vehicle_maximum(store: Store) -> None:
    _, key = learning(store, {(5, 0): 11.0, (10, 0): 11.0}, [(at(0), at(0, 1), amps((0, 32.0)))])
    [site] = gather.gather(store, config(), NOW)
    record = plan_record(site, solve.solve_site(site, optimizer.SolveOptions()), config(), NOW)
    info = record.row(key)
    # The plan uses what the car showed; the dispatcher's site check uses what the charge point may allow.
    assert info is not None and info.max_w == pytest.approx(11_000 * vehicle.VEHICLE_CAP_MARGIN)
    assert info.evse_max_w == 230 * 32 * 3


def test_without_the_whole_request_history_nothing_passes_for_a_time_before_our_profiles() -> None:
    command = Command(id="c1", kind=CommandKind.SET,
                      key=SessionKey(party=1, country_code="NL", party_id="CPA", session_id="S1"),
                      state=CommandState.COMPLETED, created_at=EPOCH1 + timedelta(seconds=99), profile=amps((0, 16.0)),
                      result="ACCEPTED", result_at=EPOCH1 + timedelta(seconds=100))
    assert vehicle.profiles_in_force([command])[0] == vehicle.InForce(-math.inf, 100, None)
    # Only the newest requests were read: what came before the oldest of them is unknown.
    assert vehicle.profiles_in_force([command], complete=False) == [vehicle.InForce(101, math.inf, amps((0, 16.0)))]
