"""Minimum charging rates: the MILP route, its incumbent at the time limit, and the LP plus repair."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
import scipy.optimize

from optimizer import SolveOptions, SolvePath, SolveStatus, solve
from optimizer.arrays import site_arrays
from optimizer.objective import score
from optimizer.repair import trim_to_limits
from tests.optimizer.support import assert_plan_valid, delivered_kwh, evse, power_matrix, problem, session

# The module, not the function `optimizer.solve` that the package re-exports under the same name.
solve_module = importlib.import_module("optimizer.solve")
real_milp = scipy.optimize.milp


def replace_the_milp(monkeypatch: pytest.MonkeyPatch, fake: Any) -> None:
    """Route MILP calls (those with integrality) to `fake`; LP calls keep the real solver."""

    def route(*args: Any, **kwargs: Any) -> Any:
        return fake(*args, **kwargs) if kwargs.get("integrality") is not None else real_milp(*args, **kwargs)

    monkeypatch.setattr(solve_module, "milp", route)


def two_cars_one_at_a_time() -> Any:
    """Room for one car at a time (6 kW, minimum 4 kW each): the LP would give both 3 kW."""
    return problem(
        [
            session("S1", "E1", 0, 2, 6.0, max_kw=6.0, min_kw=4.0),
            session("S2", "E2", 0, 2, 6.0, max_kw=6.0, min_kw=4.0),
        ],
        [evse("E1", 6.0), evse("E2", 6.0)],
        limit_kw=6.0,
        n_slots=2,
    )


def three_cars_one_slot() -> Any:
    """10 kW for three cars with a 4 kW minimum: two can charge, the equal split (3.3 kW) none."""
    return problem(
        [session(f"S{i}", f"E{i}", 0, 1, 6.0, max_kw=6.0, min_kw=4.0) for i in range(3)],
        [evse(f"E{i}", 6.0) for i in range(3)],
        limit_kw=10.0,
        n_slots=1,
    )


def test_with_a_minimum_rate_cars_take_turns_instead_of_sharing_below_it() -> None:
    p = two_cars_one_at_a_time()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.OPTIMAL, SolvePath.MILP)
    assert [s.energy_kwh for s in plan.sessions] == pytest.approx([6.0, 6.0])
    assert sorted(power_matrix(plan).ravel().round(6).tolist()) == [0.0, 0.0, 6.0, 6.0]


def test_the_milp_delivers_as_much_as_the_minimum_rates_allow() -> None:
    p = three_cars_one_slot()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.path == SolvePath.MILP
    assert delivered_kwh(plan) == pytest.approx(10.0)
    assert sum(1 for s in plan.sessions if s.energy_kwh > 0) == 2


def test_a_minimum_above_the_maximum_means_the_session_cannot_charge_and_says_so() -> None:
    p = problem([session("S1", "E1", 0, 2, 6.0, max_kw=11.0, min_kw=8.0)], [evse("E1", 7.4)], n_slots=2)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == (0.0, 0.0)
    assert any("sessions[0].min_kw=8 is above its maximum 7.4 kW" in w for w in plan.warnings)


def test_too_many_minimum_rate_variables_take_the_lp_plus_repair_route() -> None:
    p = three_cars_one_slot()
    plan = solve(p, SolveOptions(milp_max_variables=0))
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.FEASIBLE, SolvePath.LP_REPAIR)
    # The LP gives 3.33 kW each; the repair turns two of them on at their minimum, the re-solve
    # then fills the freed capacity.
    assert delivered_kwh(plan) == pytest.approx(10.0)
    assert any("exceed milp_max_variables=0" in w for w in plan.warnings)


def test_the_repair_keeps_every_limit_on_a_larger_site() -> None:
    p = problem(
        [session(f"S{i}", f"E{i}", i % 3, 4 + i % 2, 9.0 + i, max_kw=11.0, min_kw=4.1) for i in range(9)],
        [evse(f"E{i}", 11.0, 1 if i % 3 else 3, ("L1", "L2", "L3")[i % 3]) for i in range(9)],
        limit_kw=[20.0, 25.0, 14.0, 30.0, 22.0],
        n_slots=5,
        phase_limit_a=32.0,
    )
    repaired = solve(p, SolveOptions(milp_max_variables=0))
    assert_plan_valid(p, repaired)
    assert repaired.path == SolvePath.LP_REPAIR
    exact = solve(p)
    assert_plan_valid(p, exact)
    assert delivered_kwh(repaired) <= delivered_kwh(exact) + 1e-6


def test_a_milp_stopped_at_its_time_limit_returns_its_incumbent_as_feasible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def stopped_at_limit(*args: Any, **kwargs: Any) -> Any:
        res = real_milp(*args, **kwargs)
        res.status, res.message = 1, "Time limit reached. (HiGHS Status 13: faked by the test)"
        return res

    replace_the_milp(monkeypatch, stopped_at_limit)
    p = two_cars_one_at_a_time()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.FEASIBLE, SolvePath.MILP_INCUMBENT)
    assert any("MILP stopped at its limit" in w for w in plan.warnings)


def test_a_milp_without_any_solution_falls_back_to_the_lp_plus_repair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def nothing_found(*args: Any, **kwargs: Any) -> Any:
        return scipy.optimize.OptimizeResult(status=1, x=None, message="Time limit reached (faked)")

    replace_the_milp(monkeypatch, nothing_found)
    p = three_cars_one_slot()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.FEASIBLE, SolvePath.LP_REPAIR)
    assert any("MILP found no solution" in w for w in plan.warnings)


def test_a_milp_answer_that_breaks_the_minimum_rate_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    def below_minimum(*args: Any, **kwargs: Any) -> Any:
        res = real_milp(*args, **kwargs)
        res.x[:2] = 2.0  # S1 at 2 kW in both slots: below its 4 kW minimum
        return res

    replace_the_milp(monkeypatch, below_minimum)
    p = two_cars_one_at_a_time()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.path == SolvePath.LP_REPAIR
    assert any("MILP result rejected by the plan check: min_rate" in w for w in plan.warnings)


def test_the_real_milp_time_limit_is_honoured() -> None:
    p = problem(
        [session(f"S{i}", f"E{i}", i % 5, 12 + i % 4, 14.0 + i % 7, min_kw=4.1) for i in range(40)],
        [evse(f"E{i}") for i in range(40)],
        limit_kw=60.0,
        n_slots=16,
    )
    plan = solve(p, SolveOptions(milp_time_limit_s=0.05))
    assert_plan_valid(p, plan)
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE)


def test_a_poor_milp_incumbent_loses_to_the_lp_plus_repair(monkeypatch: pytest.MonkeyPatch) -> None:
    def idle_incumbent(c: Any, *args: Any, **kwargs: Any) -> Any:
        x = real_milp(c, *args, **kwargs).x
        x[: len(x)] = 0.0  # valid (nobody charges) but far from the optimum
        return scipy.optimize.OptimizeResult(status=1, x=x, message="Time limit reached (faked)")

    replace_the_milp(monkeypatch, idle_incumbent)
    p = three_cars_one_slot()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.FEASIBLE, SolvePath.LP_REPAIR)
    assert delivered_kwh(plan) == pytest.approx(10.0)


def six_cars(limit_kw: float, min_kw: float = 4.1) -> Any:
    """Six 11 kW cars over 16 slots (72 powers with a minimum: the dive comes first)."""
    return problem(
        [session(f"S{i}", f"E{i}", i % 3, 12 + i % 4, 10.0 + i, max_kw=11.0, min_kw=min_kw) for i in range(6)],
        [evse(f"E{i}", 11.0) for i in range(6)],
        limit_kw=limit_kw,
        n_slots=16,
    )


def test_a_dive_plan_within_the_gap_of_the_relaxation_is_optimal_without_the_milp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p = six_cars(40.0)
    by_milp = solve(p, SolveOptions(milp_first_max_variables=10**6))
    assert (by_milp.status, by_milp.path) == (SolveStatus.OPTIMAL, SolvePath.MILP)

    def must_not_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the MILP ran although the dive proved its plan")

    replace_the_milp(monkeypatch, must_not_run)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.OPTIMAL, SolvePath.LP_REPAIR)
    assert delivered_kwh(plan) == pytest.approx(75.0)
    # As good as the MILP's optimum by the MILP's own measure (its relative gap).
    arrays = site_arrays(p)
    dive = score(arrays, power_matrix(plan), 10)
    exact = score(arrays, power_matrix(by_milp), 10)
    assert dive <= exact + SolveOptions().milp_rel_gap * abs(exact)


def test_a_dive_plan_the_bound_cannot_prove_goes_on_to_the_milp(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real_milp(*args, **kwargs)

    replace_the_milp(monkeypatch, counted)
    p = six_cars(20.0)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert calls == [1]
    assert (plan.status, plan.path) == (SolveStatus.OPTIMAL, SolvePath.MILP)


def test_the_dive_keeps_the_energy_a_one_shot_rounding_loses() -> None:
    p = six_cars(12.0)
    dive = solve(p, SolveOptions(milp_max_variables=0))
    one_shot = solve(p, SolveOptions(milp_max_variables=0, repair_rounds=0))
    for plan in (dive, one_shot):
        assert_plan_valid(p, plan)
        assert plan.path == SolvePath.LP_REPAIR
    # 75 kWh fit the 12 kW over the stays; rounding the relaxation once strands a quarter of it.
    assert delivered_kwh(dive) == pytest.approx(75.0)
    assert delivered_kwh(one_shot) < 60.0


def test_what_tolerances_leave_above_a_limit_is_taken_from_the_powers_above_their_minimum() -> None:
    p = problem(
        [session(f"S{i}", f"E{i}", 0, 2, 20.0, max_kw=11.0, min_kw=4.0) for i in range(3)],
        [evse(f"E{i}", 11.0) for i in range(3)],
        limit_kw=20.0,
        n_slots=2,
    )
    arrays = site_arrays(p)
    # Slot 0 is 1 mW over the site limit; slot 1 fits. S1 sits at its minimum in slot 0.
    power = np.array([[5.000001, 11.0], [4.0, 4.0], [11.0, 5.0]])
    trimmed = trim_to_limits(arrays, power)
    assert trimmed[:, 0].sum() <= 20.0 + 1e-12
    assert trimmed[1, 0] == 4.0  # at its minimum: gives nothing back
    assert (trimmed[:, 0] >= 4.0).all()
    assert np.abs(trimmed - power).max() < 1e-5
    assert (trimmed[:, 1] == power[:, 1]).all()  # a row that fits is left alone


def test_a_dive_plan_is_within_every_limit_even_when_the_lp_leaves_a_minimum_a_hair_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HiGHS may return a power 1e-7 under the minimum that is its lower bound, with the row it
    shares exactly full: lifting it to the minimum must not put the site over its limit."""
    real_optimum = solve_module._Routes.optimum
    shifted = []

    def a_hair_short(self: Any, lb: Any, ub: Any) -> Any:
        status, x, message = real_optimum(self, lb, ub)
        arrays = self.arrays
        if x is not None:
            x = x.copy()
            for t in range(arrays.n_slots):
                in_slot = np.flatnonzero(arrays.pair_slot == t)
                at_min = [j for j in in_slot if lb[j] > 0 and abs(x[j] - lb[j]) < 1e-9]
                above = [j for j in in_slot if x[j] > lb[j] + 1e-3 and x[j] < ub[j] - 1e-3]
                if at_min and above:
                    eps = 1e-7 * lb[at_min[0]]
                    x[at_min[0]] -= eps
                    x[above[0]] += eps
                    shifted.append(t)
        return status, x, message

    monkeypatch.setattr(solve_module._Routes, "optimum", a_hair_short)
    p = six_cars(12.0)
    plan = solve(p, SolveOptions(milp_max_variables=0))
    assert_plan_valid(p, plan)
    assert shifted  # the fake did move something
    arrays = site_arrays(p)
    assert (power_matrix(plan).sum(axis=0) <= arrays.site_cap_kw + 1e-12).all()
