"""Random sites (unreachable demand, zero limits, single slots, overloads): the hard checks always hold."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer import Circuit, ProblemError, SiteProblem, SolveOptions, SolvePath, SolveStatus, solve
from optimizer.arrays import site_arrays
from optimizer.check import loads
from optimizer.fallback import equal_share
from optimizer.objective import score
from tests.optimizer.support import (
    assert_plan_valid,
    delivered_kwh,
    evse,
    max_energy_kwh,
    power_matrix,
    problem,
    session,
)

# Enough random sites to cover the corners (each solve takes a few ms) while the suite stays fast.
EXAMPLES = 120
kw = st.floats(min_value=0.0, max_value=40.0, allow_nan=False).map(lambda v: round(v, 2))


@st.composite
def sites(draw: Any, min_rates: bool = False) -> SiteProblem:
    """A random small site; limits may be zero, demand may exceed anything deliverable."""
    n_slots = draw(st.integers(min_value=1, max_value=8))

    def per_slot(strategy: Any) -> Any:
        return draw(st.one_of(strategy, st.lists(strategy, min_size=n_slots, max_size=n_slots)))

    n_evses = draw(st.integers(min_value=1, max_value=5))
    evses = [
        evse(
            f"E{k}",
            max_kw=draw(st.sampled_from([0.0, 3.7, 7.4, 11.0, 22.0, 50.0])),
            phases=draw(st.sampled_from([1, 2, 3])),
            phase=draw(st.sampled_from(["L1", "L2", "L3"])),
            dc=draw(st.booleans()),
        )
        for k in range(n_evses)
    ]
    sessions = []
    for i in range(draw(st.integers(min_value=0, max_value=6))):
        arrival = draw(st.integers(min_value=0, max_value=n_slots))
        sessions.append(
            session(
                f"S{i}",
                f"E{draw(st.integers(min_value=0, max_value=n_evses - 1))}",
                arrival,
                arrival + draw(st.integers(min_value=1, max_value=n_slots + 2)),
                energy_kwh=draw(st.floats(min_value=0.0, max_value=80.0).map(lambda v: round(v, 2))),
                max_kw=draw(kw),
                min_kw=draw(st.sampled_from([0.0, 1.4, 4.1, 6.0])) if min_rates else 0.0,
                profile=draw(st.sampled_from(["CHEAP", "FAST", "GREEN", "REGULAR"])),
            )
        )
    circuits = [
        Circuit(
            id=f"C{c}",
            evses=tuple(draw(st.sets(st.sampled_from([e.id for e in evses]), min_size=1))),
            limit_kw=per_slot(kw),
        )
        for c in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    return problem(
        sessions,
        evses,
        n_slots=n_slots,
        slot_minutes=draw(st.sampled_from([15.0, 60.0])),
        limit_kw=per_slot(st.floats(min_value=0.0, max_value=100.0).map(lambda v: round(v, 1))),
        circuits=circuits,
        phase_limit_a=draw(st.none() | st.floats(min_value=0.0, max_value=63.0).map(lambda v: round(v, 1))),
        fixed_load_kw=draw(st.none() | st.floats(min_value=0.0, max_value=60.0).map(lambda v: round(v, 1))),
        price=draw(
            st.none() | st.lists(st.floats(min_value=-0.1, max_value=0.6), min_size=n_slots, max_size=n_slots)
        ),
        co2=draw(
            st.none()
            | st.lists(st.floats(min_value=0.0, max_value=600.0), min_size=n_slots, max_size=n_slots)
        ),
    )


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_every_plan_keeps_every_hard_limit_and_delivers_at_least_the_equal_share(p: SiteProblem) -> None:
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.OPTIMAL, plan.warnings
    best = max_energy_kwh(p)
    # Priority 1: never more than 0.1 % of the maximum deliverable below it.
    assert delivered_kwh(plan) >= best * (1 - 1e-3) - 1e-6
    arrays = site_arrays(p)
    baseline = float(equal_share(arrays).sum() * arrays.slot_h)
    assert delivered_kwh(plan) >= baseline - 1e-3 * best - 1e-6


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(min_rates=True))
def test_plans_with_minimum_rates_keep_every_limit_and_charge_zero_or_at_least_the_minimum(
    p: SiteProblem,
) -> None:
    plan = solve(p)
    assert_plan_valid(p, plan)  # includes: 0 or at least min_kw
    if plan.status == SolveStatus.OPTIMAL:
        arrays = site_arrays(p)
        baseline = float(equal_share(arrays).sum() * arrays.slot_h)
        assert delivered_kwh(plan) >= baseline * (1 - 1e-3) - 1e-6


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(min_rates=True))
def test_the_dive_keeps_every_limit_and_what_it_calls_optimal_is_no_worse_than_the_milp(
    p: SiteProblem,
) -> None:
    dive_first = solve(p, SolveOptions(milp_first_max_variables=0))
    assert_plan_valid(p, dive_first)
    dive_only = solve(p, SolveOptions(milp_first_max_variables=0, milp_max_variables=0))
    assert_plan_valid(p, dive_only)
    # The plan the service shows and sends: within every limit without the checker's tolerance.
    arrays = site_arrays(p)
    for plan in (dive_first, dive_only) if p.sessions else ():
        load = loads(arrays, power_matrix(plan))
        assert (load.site_kw <= arrays.site_cap_kw + 1e-9).all()
        assert (load.circuit_kw <= arrays.circuit_cap_kw + 1e-9).all()
        if arrays.phase_cap_kw is not None:
            assert (load.phase_kw <= arrays.phase_cap_kw + 1e-9).all()
    if dive_first.status == SolveStatus.OPTIMAL and dive_first.path == SolvePath.LP_REPAIR:
        exact = solve(p, SolveOptions(milp_first_max_variables=10**6, milp_time_limit_s=30.0))
        if exact.status == SolveStatus.OPTIMAL:
            mine, best = score(arrays, power_matrix(dive_first), 10), score(arrays, power_matrix(exact), 10)
            # Both stop at the same relative gap from their bounds.
            assert mine <= best + 2 * SolveOptions().milp_rel_gap * max(abs(best), 1.0) + 1e-6


@settings(max_examples=EXAMPLES // 2, deadline=None)
@given(sites())
def test_the_fallback_alone_keeps_every_hard_limit(p: SiteProblem) -> None:
    arrays = site_arrays(p)
    power = equal_share(arrays)
    from optimizer.check import violations

    assert violations(arrays, power) == []


@settings(max_examples=40, deadline=None)
@given(sites(), st.data())
def test_a_departure_not_after_the_arrival_is_rejected_naming_the_field(p: SiteProblem, data: Any) -> None:
    if not p.sessions:
        return
    i = data.draw(st.integers(min_value=0, max_value=len(p.sessions) - 1))
    bad = p.sessions[i]
    sessions = list(p.sessions)
    sessions[i] = session(
        bad.id, bad.evse, bad.arrival_slot, data.draw(st.integers(max_value=bad.arrival_slot)), 1.0
    )
    broken = problem(sessions, p.evses, n_slots=p.n_slots, limit_kw=10.0)
    with pytest.raises(ProblemError) as caught:
        solve(broken)
    assert caught.value.path in (f"sessions[{i}].departure_slot", f"sessions[{i}].arrival_slot")


@settings(max_examples=40, deadline=None)
@given(sites())
def test_a_site_with_zero_limits_plans_zero_power(p: SiteProblem) -> None:
    zero = problem(p.sessions, p.evses, n_slots=p.n_slots, limit_kw=0.0)
    plan = solve(zero)
    assert_plan_valid(zero, plan)
    assert all(kw == 0.0 for s in plan.sessions for kw in s.power_kw)
