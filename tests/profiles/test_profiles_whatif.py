"""What-if profiles for an optimizer plan (`scsp solve --profiles`)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import (
    Evse,
    ObjectiveTerms,
    Plan,
    SessionPlan,
    SessionRequest,
    Site,
    SiteProblem,
    SolvePath,
    SolveStats,
    SolveStatus,
)
from profiles import ChargingRateUnit, ProfileSettings, spec_violations
from profiles.whatif import DEFAULT_FAILSAFE_FRACTION, failsafe_shares_w, site_failsafe_w, whatif_profiles

START = datetime(2024, 6, 1, 18, 0, tzinfo=UTC)


def problem(site: Site, *, slot_minutes: float = 15.0) -> SiteProblem:
    return SiteProblem(
        start=START,
        slot_minutes=slot_minutes,
        n_slots=4,
        site=site,
        evses=(
            Evse(id="ac3", max_kw=22.0, phases=3),
            Evse(id="ac1", max_kw=7.4, phases=1),
            Evse(id="dc", max_kw=50.0, dc=True),
        ),
        sessions=(
            SessionRequest(
                id="s-ac3",
                evse="ac3",
                arrival_slot=0,
                departure_slot=4,
                energy_kwh=20.0,
                max_kw=11.0,
                min_kw=4.14,
            ),
            SessionRequest(
                id="s-ac1", evse="ac1", arrival_slot=0, departure_slot=4, energy_kwh=5.0, max_kw=7.4
            ),
            SessionRequest(
                id="s-dc", evse="dc", arrival_slot=0, departure_slot=4, energy_kwh=30.0, max_kw=150.0
            ),
        ),
    )


def plan(*rows: tuple[str, tuple[float, ...]]) -> Plan:
    return Plan(
        status=SolveStatus.OPTIMAL,
        sessions=tuple(
            SessionPlan(id=i, power_kw=p, energy_kwh=sum(p) / 4, shortfall_kwh=0.0) for i, p in rows
        ),
        site_power_kw=tuple(map(sum, zip(*(p for _, p in rows), strict=True))),
        stats=SolveStats(build_s=0.0, solve_s=0.0, variables=0, constraints=0),
        path=SolvePath.LP,
        jain_index=1.0,
        warnings=(),
        objective=ObjectiveTerms(
            delivered_kwh=0.0, need_kwh=0.0, reachable_kwh=0.0, cost=None, co2_g=None, switching_kw=0.0
        ),
        start=START,
        slot_minutes=15.0,
    )


PLAN = plan(
    ("s-ac3", (11.04, 11.04, 5.52, 0.0)),
    ("s-ac1", (3.68, 3.68, 3.68, 3.68)),
    ("s-dc", (40.0, 20.0, 20.0, 10.0)),
)


def test_each_session_gets_its_profile_in_the_plan_order_with_the_problem_start() -> None:
    result = whatif_profiles(
        problem(Site(limit_kw=60.0, failsafe_kw=12.0)), PLAN, settings=ProfileSettings(failsafe_delay_s=3600)
    )
    assert [r.id for r in result] == ["s-ac3", "s-ac1", "s-dc"]
    ac3, ac1, dc = (r.charging_profile for r in result)
    assert all(r.charging_profile.start_date_time == START for r in result)
    assert all(spec_violations(r.charging_profile) == [] for r in result)
    assert (ac3.charging_rate_unit, ac1.charging_rate_unit, dc.charging_rate_unit) == (
        ChargingRateUnit.A,
        ChargingRateUnit.A,
        ChargingRateUnit.W,
    )
    # 3-phase: 11.04 kW is capped at the vehicle's 11 kW = 15.94 A -> 15.9; 5.52 kW = 8 A; the
    # vehicle minimum 4.14 kW is 6 A.
    assert [(p.start_period, p.limit) for p in ac3.charging_profile_period][:3] == [
        (0, 15.9),
        (1800, 8.0),
        (2700, 0.0),
    ]
    assert ac3.min_charging_rate == 6.0
    assert [(p.start_period, p.limit) for p in ac1.charging_profile_period][0] == (0, 16.0)
    assert [(p.start_period, p.limit) for p in dc.charging_profile_period][:3] == [
        (0, 40000.0),
        (900, 20000.0),
        (2700, 10000.0),
    ]


def test_the_failsafe_tails_share_the_site_failsafe_limit_within_each_sessions_maximum() -> None:
    result = whatif_profiles(
        problem(Site(limit_kw=60.0, failsafe_kw=12.0)), PLAN, settings=ProfileSettings(failsafe_delay_s=3600)
    )
    tails = [r.charging_profile.charging_profile_period[-1] for r in result]
    # 12 kW in three equal 4 kW shares: 4 kW on 3 x 230 V is 5.8 A, below the 6 A minimum -> 0
    # (merged with the plan's last slot, also 0); on 1 x 230 V it is 17.3 A; DC 4000 W.
    assert [(t.start_period, t.limit) for t in tails] == [(2700, 0.0), (3600, 17.3), (3600, 4000.0)]


def test_without_a_failsafe_limit_the_default_fraction_of_the_smallest_site_limit_is_used() -> None:
    site = Site(limit_kw=(60.0, 40.0, 50.0, 60.0))
    assert site_failsafe_w(problem(site)) == 40000.0 * DEFAULT_FAILSAFE_FRACTION
    assert site_failsafe_w(problem(Site(limit_kw=30.0, failsafe_kw=9.0))) == 9000.0


def test_shares_are_max_min_fair_and_never_exceed_a_sessions_maximum() -> None:
    assert failsafe_shares_w(30000.0, [3680.0, 50000.0, 11000.0]) == [3680.0, 15320.0, 11000.0]
    assert failsafe_shares_w(0.0, [1.0, 2.0]) == [0.0, 0.0]
    assert failsafe_shares_w(5.0, []) == []


@given(total=st.floats(0.0, 1e6), caps=st.lists(st.floats(0.0, 1e5), max_size=20))
@settings(max_examples=200, deadline=None)
def test_shares_sum_to_at_most_the_site_failsafe_limit(total: float, caps: list[float]) -> None:
    shares = failsafe_shares_w(total, caps)
    assert sum(shares) <= total * (1 + 1e-12) + 1e-9
    assert all(0.0 <= s <= c for s, c in zip(shares, caps, strict=True))


def test_the_period_budget_and_failsafe_delay_settings_are_honoured() -> None:
    result = whatif_profiles(
        problem(Site(limit_kw=60.0, failsafe_kw=12.0)),
        PLAN,
        settings=ProfileSettings(failsafe_delay_s=900, max_periods=2),
    )
    for r in result:
        periods = r.charging_profile.charging_profile_period
        assert len(periods) <= 2
        assert periods[-1].start_period <= 900


def test_a_slot_length_of_a_fraction_of_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        whatif_profiles(problem(Site(limit_kw=60.0), slot_minutes=0.0101), PLAN)


def test_a_plan_session_missing_from_the_problem_is_refused() -> None:
    stray = msgspec.structs.replace(
        PLAN,
        sessions=(
            *PLAN.sessions,
            SessionPlan(id="ghost", power_kw=(1.0, 1.0, 1.0, 1.0), energy_kwh=1.0, shortfall_kwh=0.0),
        ),
    )
    with pytest.raises(ValueError, match="ghost"):
        whatif_profiles(problem(Site(limit_kw=60.0)), stray)


def test_the_profiles_of_a_solved_plan_stay_within_the_site_limit_then_the_failsafe_limit() -> None:
    from optimizer import solve

    site_problem = problem(Site(limit_kw=30.0, failsafe_kw=12.0))
    solved = solve(site_problem)
    config = ProfileSettings(failsafe_delay_s=2700)
    result = whatif_profiles(site_problem, solved, settings=config)
    facts_w_per_a = {"s-ac3": 690.0, "s-ac1": 230.0, "s-dc": 1.0}
    for second in range(0, 4 * 900 + 1800, 60):
        total_w = 0.0
        for r in result:
            periods = [p for p in r.charging_profile.charging_profile_period if p.start_period <= second]
            total_w += periods[-1].limit * facts_w_per_a[r.id]
        assert total_w <= (30000.0 if second < 2700 else 12000.0) * (1 + 1e-9), second
