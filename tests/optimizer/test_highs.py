"""The highspy backend: the same optimum as scipy's, one reused solver per thread, hot starts in the
dive, warm starts between cycles that change the speed and never the answer."""

from __future__ import annotations

import importlib
import threading
from datetime import timedelta
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from optimizer import SiteProblem, SolveOptions, SolveStatus, WarmStart, solve, solve_with_basis
from optimizer.arrays import site_arrays
from optimizer.check import violations
from optimizer.objective import score
from optimizer.solve import _lp, build
from tests.optimizer.support import assert_plan_valid, evse, power_matrix, problem, session
from tests.optimizer.test_properties import sites

highs_module = importlib.import_module("optimizer.highs")
SCIPY = SolveOptions(lp_backend="scipy")
EXAMPLES = 80


def _close(a: float, b: float, rel: float = 1e-9) -> bool:
    """Equal within `rel` relative (1 as the smallest scale)."""
    return abs(a - b) <= rel * max(abs(a), abs(b), 1.0)


def _matrix(p: SiteProblem, plan: Any) -> np.ndarray:
    """The plan's (N, T) power matrix, also for a site without sessions."""
    return power_matrix(plan) if plan.sessions else np.zeros((0, p.n_slots))


def _value(p: SiteProblem, plan: Any) -> float:
    """The plan's objective (`score`), switching included when the LP has switching columns."""
    arrays = site_arrays(p)
    lp = build(arrays, SolveOptions())
    return score(arrays, _matrix(p, plan), 10, switching=lp.cols.n_switch > 0)


def _checked(p: SiteProblem, plan: Any) -> None:
    assert_plan_valid(p, plan)
    assert violations(site_arrays(p), _matrix(p, plan)) == []


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_both_backends_find_the_same_optimum_and_both_plans_pass_the_check(p: SiteProblem) -> None:
    arrays = site_arrays(p)
    lp = build(arrays, SolveOptions())
    if lp.cols.n_pairs:
        status, x, _ = _lp(lp, lp.lb, lp.ub, SolveOptions())
        status_s, x_s, _ = _lp(lp, lp.lb, lp.ub, SCIPY)
        assert status == status_s == 0
        assert x is not None and x_s is not None
        assert _close(float(lp.c @ x), float(lp.c @ x_s))
    by_highspy, by_scipy = solve(p), solve(p, SCIPY)
    for plan in (by_highspy, by_scipy):
        _checked(p, plan)
        assert plan.status == SolveStatus.OPTIMAL
    assert _close(_value(p, by_highspy), _value(p, by_scipy))


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(min_rates=True))
def test_with_minimum_rates_both_backends_plan_within_every_limit_and_as_well(p: SiteProblem) -> None:
    by_highspy, by_scipy = solve(p), solve(p, SCIPY)
    for plan in (by_highspy, by_scipy):
        _checked(p, plan)
    if by_highspy.status == by_scipy.status == SolveStatus.OPTIMAL:
        # Both optimal by the MILP's own rule (within milp_rel_gap of the relaxation's bound).
        gap = 2 * SolveOptions().milp_rel_gap
        assert _close(_value(p, by_highspy), _value(p, by_scipy), gap)


def _next_cycle(p: SiteProblem, plan: Any, arriving: int) -> SiteProblem:
    """The site one slot later: what slot 0 delivered is done, the session leaving first has left,
    one has arrived (on the EVSE of the first session), the previous plan is carried as continuity."""
    slot_h = p.slot_minutes / 60
    sessions = []
    for request, planned in zip(p.sessions, plan.sessions, strict=True):
        if request.departure_slot <= 1:
            continue
        sessions.append(
            msgspec.structs.replace(
                request,
                arrival_slot=max(request.arrival_slot - 1, 0),
                departure_slot=request.departure_slot - 1,
                energy_kwh=max(request.energy_kwh - planned.power_kw[0] * slot_h, 0.0),
                previous_kw=(*planned.power_kw[1:], 0.0),
            )
        )
    if sessions:
        del sessions[min(range(len(sessions)), key=lambda i: sessions[i].departure_slot)]
    sessions.append(session(f"new{arriving}", p.evses[0].id, 0, p.n_slots, 15.0, max_kw=11.0))
    return msgspec.structs.replace(p, start=p.start + timedelta(minutes=p.slot_minutes), sessions=tuple(sessions))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_a_warm_start_from_the_previous_cycle_gives_the_cold_optimum(p: SiteProblem) -> None:
    if not p.evses:
        return
    plan, basis = solve_with_basis(p)
    q = _next_cycle(p, plan, 1)
    if basis is None:
        return
    # It travels between processes: encode and decode it on the way.
    basis = msgspec.msgpack.decode(msgspec.msgpack.encode(basis), type=WarmStart)
    cold = solve(q)
    warm, again = solve_with_basis(q, warm=basis)
    _checked(q, warm)
    assert warm.status == cold.status == SolveStatus.OPTIMAL
    assert _close(_value(q, warm), _value(q, cold))
    assert again is not None or site_arrays(q).n_pairs == 0  # no LP without a pair to plan


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(), sites())
def test_the_basis_of_another_site_costs_time_never_the_answer(p: SiteProblem, other: SiteProblem) -> None:
    _, foreign = solve_with_basis(other)
    if foreign is None:
        return
    plan = solve(p, warm=foreign)
    _checked(p, plan)
    assert plan.status == SolveStatus.OPTIMAL
    assert _close(_value(p, plan), _value(p, solve(p)))


def _workday(n: int = 8, limit_kw: float = 30.0) -> SiteProblem:
    return problem(
        [session(f"S{i}", f"E{i}", i % 4, 30 + 3 * i, 12.0 + 2 * i, max_kw=11.0) for i in range(n)],
        [evse(f"E{i}", 11.0) for i in range(n)],
        limit_kw=limit_kw,
        n_slots=48,
        slot_minutes=15.0,
    )


def test_re_solving_the_same_site_from_its_own_basis_needs_no_simplex_iteration() -> None:
    p = _workday()
    plan, basis = solve_with_basis(p)
    assert basis is not None and basis.warm is False
    again, basis_again = solve_with_basis(p, warm=basis)
    assert basis_again is not None and basis_again.warm is True
    assert highs_module._solver().highs.getInfo().simplex_iteration_count == 0
    assert power_matrix(again) == pytest.approx(power_matrix(plan), abs=1e-9)


def test_a_warm_start_is_compact() -> None:
    p = _workday(20)
    plan, basis = solve_with_basis(p)
    assert basis is not None
    # A few bytes per LP column and row, not a dict of tuples.
    assert len(msgspec.msgpack.encode(basis)) < 2 * (plan.stats.variables + plan.stats.constraints) + 1_000


def test_a_basis_on_another_slot_grid_is_ignored() -> None:
    p = _workday()
    _, basis = solve_with_basis(p)
    assert basis is not None
    shifted = msgspec.structs.replace(p, start=p.start + timedelta(minutes=7))  # off the old grid
    plan = solve(shifted, warm=basis)
    _checked(shifted, plan)
    assert _close(_value(shifted, plan), _value(shifted, solve(shifted)))


def test_a_basis_that_highs_refuses_or_that_does_not_end_optimal_falls_back_to_cold() -> None:
    p = _workday()
    arrays = site_arrays(p)
    lp = build(arrays, SolveOptions())
    a = (lp.a_start, lp.a_index, lp.a_value)
    cold = highs_module.solve_lp(lp.c, a, lp.row_lower, lp.row_upper, lp.lb, lp.ub, time_limit_s=10.0)
    # Every column basic: far too many basic variables, and singular.
    nonsense = highs_module.Basis(
        col=np.full(lp.cols.total, highs_module.BASIC, dtype=np.int8),
        row=np.full(lp.n_rows, highs_module.UPPER, dtype=np.int8),
    )
    res = highs_module.solve_lp(
        lp.c, a, lp.row_lower, lp.row_upper, lp.lb, lp.ub, time_limit_s=10.0, basis=nonsense
    )
    assert res.status == cold.status == 0
    assert res.x is not None and cold.x is not None
    assert _close(float(lp.c @ res.x), float(lp.c @ cold.x))


def test_the_reused_solver_gives_every_call_its_own_time_limit() -> None:
    # HiGHS' run clock adds up over an instance's runs: 40 solves of a few ms each under a 0.05 s
    # limit must all finish.
    p = _workday(12, limit_kw=40.0)
    options = SolveOptions(lp_time_limit_s=0.05)
    for _ in range(40):
        plan = solve(p, options)
        assert plan.status == SolveStatus.OPTIMAL, plan.warnings


def test_a_hot_start_only_follows_the_model_of_the_same_solve() -> None:
    a, b = _workday(6, 20.0), _workday(9, 35.0)
    first = solve(a)
    solve(b)  # the thread's solver now holds b's model
    assert power_matrix(solve(a)) == pytest.approx(power_matrix(first), abs=1e-9)


def test_two_threads_plan_at_the_same_time_as_one_does_alone() -> None:
    sites_ = [_workday(4 + k % 5, 15.0 + 3 * k) for k in range(12)]
    sites_ += [
        problem(
            [session(f"S{i}", f"E{i}", 0, 8, 20.0, min_kw=4.1) for i in range(8)],
            [evse(f"E{i}") for i in range(8)],
            limit_kw=20.0 + k,
            n_slots=8,
        )
        for k in range(6)
    ]
    alone = [power_matrix(solve(s)) for s in sites_]
    together: dict[int, np.ndarray] = {}

    def plan(indices: range) -> None:
        for _ in range(3):
            for i in indices:
                together[i] = power_matrix(solve(sites_[i]))

    threads = [threading.Thread(target=plan, args=(range(k, len(sites_), 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, expected in enumerate(alone):
        assert together[i] == pytest.approx(expected, abs=1e-9)


def test_the_dive_re_solves_hot_and_plans_as_the_cold_dive_does(monkeypatch: pytest.MonkeyPatch) -> None:
    p = problem(
        [session(f"S{i}", f"E{i}", i % 3, 12 + i % 4, 10.0 + i, max_kw=11.0, min_kw=4.1) for i in range(6)],
        [evse(f"E{i}", 11.0) for i in range(6)],
        limit_kw=12.0,
        n_slots=16,
    )
    options = SolveOptions(milp_max_variables=0)
    hot_calls: list[bool] = []
    real = highs_module.solve_lp

    def recorded(*args: Any, **kwargs: Any) -> Any:
        solver = highs_module._solver()
        hot_calls.append(kwargs.get("hot") is not None and solver.token is kwargs.get("hot"))
        return real(*args, **kwargs)

    monkeypatch.setattr(highs_module, "solve_lp", recorded)
    hot = solve(p, options)
    assert hot_calls[0] is False and all(hot_calls[1:]) and len(hot_calls) > 1
    monkeypatch.setattr(highs_module, "solve_lp", lambda *a, **k: real(*a, **{**k, "hot": None}))
    cold = solve(p, options)
    _checked(p, hot)
    assert _close(_value(p, hot), _value(p, cold), 2 * options.milp_rel_gap)


def test_the_next_cycle_of_a_site_starts_from_the_previous_basis() -> None:
    p = _workday(10, 35.0)
    plan, basis = solve_with_basis(p)
    q = _next_cycle(p, plan, 1)
    warm, again = solve_with_basis(q, warm=basis)
    assert again is not None and again.warm is True  # the mapped basis was taken and ended optimal
    _checked(q, warm)
    assert _close(_value(q, warm), _value(q, solve(q)))
