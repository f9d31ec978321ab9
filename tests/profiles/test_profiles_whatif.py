"""What-if profiles for an optimizer plan (`scsp solve --profiles`)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocpi221.chargingprofiles import ChargingProfile, ChargingRateUnit, spec_violations
from optimizer import (
    Evse,
    ObjectiveTerms,
    Phase,
    Plan,
    SessionPlan,
    SessionRequest,
    Site,
    SiteProblem,
    SolvePath,
    SolveStats,
    SolveStatus,
)
from profiles import ProfileSettings
from profiles.build import REL_EPS
from profiles.failsafe import failsafe_shares_w
from profiles.whatif import DEFAULT_FAILSAFE_FRACTION, site_failsafe_phase_a, site_failsafe_w, whatif_profiles

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
    # 12 kW: every minimum fits (ac3 4140 W = 6 A on 3 x 230 V, ac1 1380 W = 6 A, DC none). The
    # water level then stops at 3930 W, with ac3 held at its 4140 W minimum: 4140 + 2 x 3930 = 12000.
    # ac1 3930 W on 1 x 230 V is 17.08 A -> 17.0; DC 3930 W.
    assert [(t.start_period, t.limit) for t in tails] == [(3600, 6.0), (3600, 17.0), (3600, 3930.0)]


def test_without_a_failsafe_limit_the_default_fraction_of_the_smallest_site_limit_is_used() -> None:
    site = Site(limit_kw=(60.0, 40.0, 50.0, 60.0))
    assert site_failsafe_w(problem(site)) == 40000.0 * DEFAULT_FAILSAFE_FRACTION
    assert site_failsafe_w(problem(Site(limit_kw=30.0, failsafe_kw=9.0))) == 9000.0


def test_the_default_failsafe_limit_leaves_room_for_the_largest_fixed_load() -> None:
    site = Site(limit_kw=(60.0, 40.0, 50.0, 60.0), fixed_load_kw=(5.0, 12.0, 3.0, 0.0))
    assert site_failsafe_w(problem(site)) == 40000.0 * DEFAULT_FAILSAFE_FRACTION - 12000.0
    assert site_failsafe_w(problem(Site(limit_kw=20.0, fixed_load_kw=15.0))) == 0.0  # never below 0
    # A failsafe limit the problem states is shared after the fixed load too, as the service does.
    assert site_failsafe_w(problem(Site(limit_kw=30.0, failsafe_kw=9.0, fixed_load_kw=5.0))) == 4000.0


def test_a_stated_failsafe_limit_still_keeps_the_tails_within_the_phase_limit() -> None:
    site = Site(limit_kw=30.0, failsafe_kw=20.0, phase_limit_a=16.0, fixed_load_kw=6.9)
    # The phase limit is physical: with a stated failsafe limit it holds in full, less the fixed
    # load's 10 A per phase (6.9 kW over 3 x 230 V).
    assert site_failsafe_phase_a(problem(site)) == pytest.approx(6.0)
    assert site_failsafe_phase_a(problem(Site(limit_kw=30.0, failsafe_kw=20.0))) is None


def test_shares_are_max_min_fair_and_never_exceed_a_sessions_maximum() -> None:
    assert failsafe_shares_w(30000.0, [3680.0, 50000.0, 11000.0], [0.0, 0.0, 0.0]) == [3680.0, 15320.0, 11000.0]
    assert failsafe_shares_w(0.0, [1.0, 2.0], [0.0, 0.0]) == [0.0, 0.0]
    assert failsafe_shares_w(5.0, [], []) == []


def test_a_failsafe_too_small_for_every_minimum_goes_whole_to_as_many_sessions_as_fit() -> None:
    # 6 kW in four equal shares is 1.5 kW each, below the 4140 W (6 A x 230 V x 3) minimum: every
    # tail would be 0. Whole-vehicle shares: one session gets all 6 kW (the first: ties keep order).
    assert failsafe_shares_w(6000.0, [11000.0] * 4, [4140.0] * 4) == [6000.0, 0.0, 0.0, 0.0]
    # Two minimums fit in 10 kW; the rest is shared equally between those two.
    assert failsafe_shares_w(10000.0, [11000.0] * 3, [4140.0] * 3) == [5000.0, 5000.0, 0.0]
    # Smallest minimums first (as many sessions as fit), then max-min fair above the minimums.
    assert failsafe_shares_w(7000.0, [11000.0, 7400.0, 50000.0], [4140.0, 1380.0, 0.0]) == [
        4140.0,
        1430.0,
        1430.0,
    ]
    # A session whose maximum is below its own minimum can never charge: its share goes to others.
    assert failsafe_shares_w(9000.0, [3000.0, 11000.0], [4140.0, 4140.0]) == [0.0, 9000.0]


def test_a_small_site_failsafe_limit_still_lets_one_vehicle_charge_after_the_failsafe_time() -> None:
    site_problem = SiteProblem(
        start=START,
        slot_minutes=15.0,
        n_slots=4,
        site=Site(limit_kw=60.0, failsafe_kw=6.0),
        evses=tuple(Evse(id=f"e{k}", max_kw=11.0, phases=3) for k in range(4)),
        sessions=tuple(
            SessionRequest(id=f"s{k}", evse=f"e{k}", arrival_slot=0, departure_slot=4, energy_kwh=20.0, max_kw=11.0)
            for k in range(4)
        ),
    )
    four = plan(*((f"s{k}", (11.0, 11.0, 11.0, 11.0)) for k in range(4)))
    tails = [r.charging_profile.charging_profile_period[-1] for r in whatif_profiles(site_problem, four)]
    # 6000 W on 3 x 230 V is 8.69 A -> 8.6 A for the first session; the others stop (0 A).
    assert [(t.start_period, t.limit) for t in tails] == [(3600, 8.6), (3600, 0.0), (3600, 0.0), (3600, 0.0)]


@given(
    total=st.floats(0.0, 1e6),
    sessions=st.lists(
        st.tuples(st.floats(0.0, 1e5), st.one_of(st.just(0.0), st.floats(0.0, 2e4))), max_size=20
    ),
)
@settings(max_examples=300, deadline=None)
def test_shares_are_zero_or_at_least_the_minimum_and_sum_to_at_most_the_failsafe_total(
    total: float, sessions: list[tuple[float, float]]
) -> None:
    caps = [cap for cap, _ in sessions]
    mins = [low for _, low in sessions]
    shares = failsafe_shares_w(total, caps, mins)
    assert sum(shares) <= total * (1 + 1e-12) + 1e-9
    assert all(s == 0.0 or low <= s <= cap for s, cap, low in zip(shares, caps, mins, strict=True))
    # As many sessions as fit get their minimum: the k smallest usable minimums fit, k + 1 do not.
    usable = sorted(low for cap, low in sessions if low <= cap)
    granted = [s > 0 or low == 0.0 for s, low in zip(shares, mins, strict=True)]  # a minimum of 0 always fits
    most = max(k for k in range(len(usable) + 1) if sum(usable[:k]) <= total * (1 + 1e-12))
    assert sum(granted) == most
    # Nothing is wasted while a granted session could still take more.
    if any(g and s < cap * (1 - 1e-12) for g, s, cap in zip(granted, shares, caps, strict=True)):
        assert sum(shares) >= total * (1 - 1e-9) - 1e-9


def one_phase_problem(site: Site, phases: list[tuple[int, Phase]]) -> SiteProblem:
    """Sessions of up to 7.4 kW at EVSEs with the given (phases, phase), no minimum of their own."""
    return SiteProblem(
        start=START,
        slot_minutes=15.0,
        n_slots=4,
        site=site,
        evses=tuple(Evse(id=f"e{k}", max_kw=7.4 * n, phases=n, phase=p) for k, (n, p) in enumerate(phases)),
        sessions=tuple(
            SessionRequest(id=f"s{k}", evse=f"e{k}", arrival_slot=0, departure_slot=4, energy_kwh=20.0,
                           max_kw=7.4 * n)
            for k, (n, _) in enumerate(phases)
        ),
    )


def tail_a_per_phase(problem_: SiteProblem, profiles_: list[ChargingProfile]) -> list[float]:
    """The current the tails allow on L1, L2, L3 together (A), read from the profiles' last limits."""
    current = [0.0, 0.0, 0.0]
    evses = {e.id: e for e in problem_.evses}
    for request, profile in zip(problem_.sessions, profiles_, strict=True):
        evse, limit = evses[request.evse], profile.charging_profile_period[-1].limit
        if profile.charging_rate_unit == ChargingRateUnit.W:  # DC: a balanced three-phase load
            per_phase = [limit / (3 * problem_.site.voltage_v)] * 3
        elif evse.phases == 3:
            per_phase = [limit] * 3  # A per phase
        elif evse.phases == 2:
            per_phase = [limit, limit, 0.0]
        else:
            per_phase = [limit if evse.phase == p else 0.0 for p in Phase]
        current = [c + a for c, a in zip(current, per_phase, strict=True)]
    return current


def test_the_default_failsafe_tails_of_single_phase_evses_on_l2_stay_within_its_phase_limit() -> None:
    # 50 kW site, 16 A per phase, four 7.4 kW single-phase EVSEs on L2. The site default alone
    # (25 kW) gave each 6.25 kW = 27.1 A: 108 A on L2. Half the phase limit is 8 A on L2; a second
    # 6 A minimum does not fit, so one session gets 8 A and the others 0.
    site_problem = one_phase_problem(Site(limit_kw=50.0, phase_limit_a=16.0), [(1, Phase.L2)] * 4)
    flat = plan(*((f"s{k}", (7.4, 7.4, 7.4, 7.4)) for k in range(4)))
    result = [r.charging_profile for r in whatif_profiles(site_problem, flat)]
    assert [p.charging_profile_period[-1].limit for p in result] == [8.0, 0.0, 0.0, 0.0]
    assert tail_a_per_phase(site_problem, result) == [0.0, 8.0, 0.0]


def test_the_default_failsafe_shares_each_phase_and_subtracts_the_fixed_load_per_phase() -> None:
    # 32 A per phase, a 2.76 kW fixed load (4 A on each phase): 16 - 4 = 12 A per phase. Two
    # sessions on L2 and one on L1 fit their 6 A minimums; the 3-phase session's minimum (6 A on
    # every phase) no longer fits L2. L2 is shared 6 A + 6 A; L1 rises to its 12 A.
    site_problem = one_phase_problem(
        Site(limit_kw=100.0, phase_limit_a=32.0, fixed_load_kw=2.76),
        [(1, Phase.L2), (1, Phase.L2), (1, Phase.L1), (3, Phase.L1)],
    )
    flat = plan(*((f"s{k}", (7.4, 7.4, 7.4, 7.4)) for k in range(4)))
    result = [r.charging_profile for r in whatif_profiles(site_problem, flat)]
    assert [p.charging_profile_period[-1].limit for p in result] == [6.0, 6.0, 12.0, 0.0]
    assert tail_a_per_phase(site_problem, result) == [12.0, 12.0, 0.0]


@st.composite
def phase_limited_sites(draw: st.DrawFn) -> SiteProblem:
    """Random sites with a phase limit, no stated failsafe limit, and AC (1/2/3-phase) and DC EVSEs."""
    n = draw(st.integers(1, 8))
    kinds = draw(st.lists(st.sampled_from(["1", "2", "3", "dc"]), min_size=n, max_size=n))
    evses = tuple(
        Evse(id=f"e{k}", max_kw=draw(st.floats(1.0, 50.0)), phases=3 if kind == "dc" else int(kind),
             phase=draw(st.sampled_from(list(Phase))), dc=kind == "dc")
        for k, kind in enumerate(kinds)
    )
    sessions = tuple(
        SessionRequest(id=f"s{k}", evse=f"e{k}", arrival_slot=0, departure_slot=4, energy_kwh=10.0,
                       max_kw=draw(st.floats(1.0, 50.0)),
                       min_kw=draw(st.one_of(st.just(0.0), st.floats(0.5, 12.0))))
        for k in range(n)
    )
    per_slot = st.floats(0.0, 200.0)
    return SiteProblem(
        start=START,
        slot_minutes=15.0,
        n_slots=4,
        site=Site(
            limit_kw=draw(st.one_of(st.floats(0.0, 200.0), st.tuples(*[per_slot] * 4))),
            phase_limit_a=draw(st.one_of(st.floats(0.0, 125.0), st.tuples(*[st.floats(0.0, 125.0)] * 4))),
            voltage_v=draw(st.sampled_from([230.0, 120.0, 240.0])),
            fixed_load_kw=draw(st.one_of(st.none(), st.floats(0.0, 30.0), st.tuples(*[st.floats(0.0, 30.0)] * 4))),
        ),
        evses=evses,
        sessions=sessions,
    )


@given(site_problem=phase_limited_sites())
@settings(max_examples=200, deadline=None)
def test_the_default_failsafe_tails_never_exceed_the_phase_limit_on_any_phase(site_problem: SiteProblem) -> None:
    zeros = plan(*((s.id, (0.0, 0.0, 0.0, 0.0)) for s in site_problem.sessions))
    result = [r.charging_profile for r in whatif_profiles(site_problem, zeros)]
    site = site_problem.site
    assert isinstance(site.phase_limit_a, float | tuple)
    phase_limit_a = min(site.phase_limit_a) if isinstance(site.phase_limit_a, tuple) else site.phase_limit_a
    fixed = site.fixed_load_kw or 0.0
    fixed_a = (max(fixed) if isinstance(fixed, tuple) else fixed) * 1000.0 / (3 * site.voltage_v)
    budget_a = max(0.0, phase_limit_a * DEFAULT_FAILSAFE_FRACTION - fixed_a)
    slack = 1 + 2 * REL_EPS  # the documented rounding slack of build_profile, and float sums
    for current in tail_a_per_phase(site_problem, result):
        assert current <= budget_a * slack + 1e-9
        assert current <= phase_limit_a * slack + 1e-9
        if fixed_a <= phase_limit_a:  # with room for the fixed load too, whenever it fits at all
            assert current + fixed_a <= phase_limit_a * slack + 1e-9
    # The site total holds too, and each tail is 0 or at least its session's minimum.
    evses = {e.id: e for e in site_problem.evses}
    total_w = 0.0
    for request, profile in zip(site_problem.sessions, result, strict=True):
        tail = profile.charging_profile_period[-1].limit
        assert tail == 0.0 or profile.min_charging_rate is None or tail >= profile.min_charging_rate
        ac = profile.charging_rate_unit == ChargingRateUnit.A
        total_w += tail * (site.voltage_v * evses[request.evse].phases if ac else 1.0)
    assert total_w <= site_failsafe_w(site_problem) * slack + 1e-6


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
