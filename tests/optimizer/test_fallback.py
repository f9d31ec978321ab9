"""The FALLBACK equal share, and every way the solver can fail ending in it (never without a plan)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
import scipy.optimize

from optimizer import Circuit, SolveOptions, SolvePath, SolveStatus, solve
from optimizer.arrays import site_arrays
from optimizer.check import violations
from optimizer.fallback import equal_share, water_levels
from tests.optimizer.support import assert_plan_valid, evse, power_matrix, problem, session

solve_module = importlib.import_module("optimizer.solve")
highs_module = importlib.import_module("optimizer.highs")


def test_the_water_level_fills_every_member_equally_up_to_its_cap() -> None:
    # Row 0: caps 1, 5, 5 share 7 -> level 3 (1 + 3 + 3). Row 1: everything fits. Row 2: limit 0.
    # Row 3: weighted (a single-phase member counts fully, a three-phase one by a third).
    levels = water_levels(
        row=np.array([0, 0, 0, 1, 1, 2, 3, 3]),
        coef=np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1 / 3]),
        cap=np.array([1.0, 5.0, 5.0, 2.0, 2.0, 4.0, 10.0, 10.0]),
        limit=np.array([7.0, 10.0, 0.0, 4.0]),
    )
    assert levels[0] == pytest.approx(3.0)
    assert np.isinf(levels[1])
    assert levels[2] == pytest.approx(0.0)
    assert levels[3] == pytest.approx(3.0)  # 3 + 3/3 = 4


def test_the_equal_share_splits_the_site_limit_evenly_and_passes_on_what_a_capped_session_cannot_use() -> (
    None
):
    p = problem(
        [
            session("S1", "E1", 0, 1, 100.0),
            session("S2", "E2", 0, 1, 100.0, max_kw=3.0),
            session("S3", "E3", 0, 1, 100.0),
        ],
        [evse("E1"), evse("E2"), evse("E3")],
        limit_kw=22.0,
        n_slots=1,
    )
    power = equal_share(site_arrays(p))
    assert power[:, 0] == pytest.approx([9.5, 3.0, 9.5])


def test_the_equal_share_respects_circuits_phases_and_needs_slot_by_slot() -> None:
    p = problem(
        [
            session("S1", "E1", 0, 3, 100.0),
            session("S2", "E2", 0, 3, 100.0),
            session("S3", "E3", 0, 3, 12.0, max_kw=7.4),
        ],
        [evse("E1"), evse("E2"), evse("E3", 7.4, 1, "L1")],
        circuits=[Circuit(id="C1", evses=("E1", "E2"), limit_kw=10.0)],
        phase_limit_a=20.0,  # 4.6 kW per phase
        n_slots=3,
    )
    arrays = site_arrays(p)
    power = equal_share(arrays)
    assert violations(arrays, power) == []
    # L1 carries S3 fully and a third of S1 and S2: the phase rows bind before the circuit.
    assert power[2].sum() <= 12.0 + 1e-9
    assert (power[:, 0] > 0).all()


def test_the_equal_share_never_gives_a_session_less_than_its_minimum_rate() -> None:
    p = problem(
        [session(f"S{i}", f"E{i}", 0, 2, 50.0, min_kw=4.0) for i in range(5)],
        [evse(f"E{i}") for i in range(5)],
        limit_kw=10.0,
        n_slots=2,
    )
    arrays = site_arrays(p)
    power = equal_share(arrays)
    assert violations(arrays, power) == []
    on = power[power > 0]
    assert on.size and (on >= 4.0).all()
    assert power.sum(axis=0) == pytest.approx([10.0, 10.0])  # two cars at 5 kW: the slot stays full


def test_the_equal_share_stops_when_the_need_is_met() -> None:
    p = problem([session("S1", "E1", 0, 4, 15.0)], [evse("E1")])
    assert equal_share(site_arrays(p))[0] == pytest.approx([11.0, 4.0, 0.0, 0.0])


def fake_linprog(x: Any, status: int = 0) -> Any:
    """A stand-in for scipy's linprog that returns `x` (a callable of the number of columns)."""

    def run(c: Any, *args: Any, **kwargs: Any) -> Any:
        return scipy.optimize.OptimizeResult(status=status, x=x(len(c)), message="faked by the test")

    return run


def replace_the_lp_solver(monkeypatch: pytest.MonkeyPatch, fake: Any) -> None:
    """Route every LP call (highspy; through scipy: simplex via milp, interior point via linprog) to `fake`."""
    monkeypatch.setattr(solve_module, "linprog", fake)
    monkeypatch.setattr(solve_module, "milp", fake)

    def through_highspy(c: Any, *args: Any, **kwargs: Any) -> Any:
        res = fake(c, *args, **kwargs)
        return highs_module.LpResult(status=res.status, x=res.x, message=res.message)

    monkeypatch.setattr(highs_module, "solve_lp", through_highspy)


def site_with_a_binding_limit() -> Any:
    return problem(
        [session("S1", "E1", 0, 4, 30.0), session("S2", "E2", 0, 4, 30.0)],
        [evse("E1"), evse("E2")],
        limit_kw=12.0,
    )


def test_a_solver_result_that_breaks_a_limit_is_never_returned_as_optimal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replace_the_lp_solver(monkeypatch, fake_linprog(lambda n: np.full(n, 11.0)))  # 22 kW > 12 kW
    p = site_with_a_binding_limit()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.FALLBACK, SolvePath.FALLBACK)
    assert any("LP result rejected by the plan check: site_power_limit[t=0]" in w for w in plan.warnings)
    assert power_matrix(plan)[:, 0] == pytest.approx([6.0, 6.0])


def test_an_optimal_status_without_a_solution_vector_gives_the_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replace_the_lp_solver(monkeypatch, fake_linprog(lambda n: None))
    p = site_with_a_binding_limit()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.FALLBACK


def test_a_non_finite_solution_gives_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    replace_the_lp_solver(monkeypatch, fake_linprog(lambda n: np.full(n, np.nan)))
    p = site_with_a_binding_limit()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.FALLBACK


@pytest.mark.parametrize("status", [1, 2, 4])
def test_a_solver_that_stops_early_or_fails_gives_the_fallback(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    replace_the_lp_solver(monkeypatch, fake_linprog(lambda n: np.zeros(n), status=status))
    p = site_with_a_binding_limit()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.FALLBACK
    assert any(f"LP solver gave no optimum (status {status}" in w for w in plan.warnings)


def test_a_solver_that_raises_still_gives_a_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("out of memory (faked)")

    replace_the_lp_solver(monkeypatch, explode)
    p = site_with_a_binding_limit()
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.FALLBACK
    assert any("solver raised MemoryError" in w for w in plan.warnings)


def test_the_minimum_rate_routes_also_end_in_the_fallback_when_every_solver_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replace_the_lp_solver(monkeypatch, fake_linprog(lambda n: None, status=4))
    p = problem([session("S1", "E1", 0, 4, 30.0, min_kw=4.0)], [evse("E1")], limit_kw=12.0)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.FALLBACK


def test_a_real_lp_time_limit_too_short_to_solve_gives_a_valid_plan() -> None:
    p = problem(
        [session(f"S{i}", f"E{i}", i % 7, 40 + i % 9, 20.0 + i % 5) for i in range(60)],
        [evse(f"E{i}") for i in range(60)],
        limit_kw=80.0,
        n_slots=48,
        slot_minutes=15,
    )
    plan = solve(p, SolveOptions(lp_time_limit_s=1e-6))
    assert_plan_valid(p, plan)
    assert plan.status in (SolveStatus.OPTIMAL, SolveStatus.FALLBACK)
