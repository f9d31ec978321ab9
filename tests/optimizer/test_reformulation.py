"""The speed reformulations keep the optimum: energy weight on the shortfall columns, the reduced
energy weight with its max-flow check (`optimizer.flow`), on hand-made and random small sites."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from optimizer import Circuit, SiteProblem, SolveOptions, SolveStatus, solve
from optimizer.arrays import SiteArrays, site_arrays
from optimizer.flow import Network, energy_is_maximal, network_rows
from optimizer.objective import Weights, cost_vector, reduced_energy_costs
from optimizer.solve import LinearProgram, _lp, _Routes, build
from tests.optimizer.support import assert_plan_valid, evse, max_energy_kwh, problem, session
from tests.optimizer.test_properties import sites

# The module, not the `solve` function the package exports under the same name.
solve_module = importlib.import_module("optimizer.solve")
EXAMPLES = 80
# The two-weight route on every site, however small, and never.
ALWAYS = SolveOptions(reduced_energy_min_columns=0)
NEVER = SolveOptions(reduced_energy_min_columns=10**12)


def _same(a: float, b: float) -> bool:
    """Equal within 1e-6 relative (1 as the smallest scale)."""
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b), 1.0)


def _lp_of(p: SiteProblem, options: SolveOptions) -> tuple[LinearProgram, SiteArrays]:
    arrays = site_arrays(p)
    return build(arrays, options), arrays


def _network(lp: LinearProgram) -> Network:
    net = network_rows(lp.blocks, lp.cols.n_pairs)
    assert net is not None
    return net


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_energy_on_the_shortfall_columns_gives_the_textbook_optimum(p: SiteProblem) -> None:
    options = SolveOptions()
    arrays = site_arrays(p)
    lp = build(arrays, options)
    if not lp.cols.n_pairs:
        return
    textbook = cost_vector(arrays, lp.cols, energy_on_shortfall=False)
    w = Weights.for_segments(lp.cols.n_segments)
    # On every feasible point the two objectives differ by W_energy x total reach.
    shift = w.energy * float(arrays.reach_kwh.sum())
    old_status, old_x, _ = _lp(lp, lp.lb, lp.ub, options, textbook)
    new_status, new_x, _ = _lp(lp, lp.lb, lp.ub, options)
    assert old_status == new_status == 0
    assert old_x is not None and new_x is not None
    assert _same(float(lp.c @ new_x), float(textbook @ old_x) + shift)
    assert _same(float(textbook @ new_x), float(textbook @ old_x))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_the_reduced_energy_weight_route_gives_the_full_weight_optimum(p: SiteProblem) -> None:
    arrays = site_arrays(p)
    lp = build(arrays, ALWAYS)
    if not lp.cols.n_pairs:
        return
    status, x, _ = _Routes(arrays, lp, ALWAYS).optimum(lp.lb, lp.ub)
    full_status, full_x, _ = _Routes(arrays, lp, NEVER).optimum(lp.lb, lp.ub)
    assert status == full_status == 0
    assert x is not None and full_x is not None
    assert _same(float(lp.c @ x), float(lp.c @ full_x))
    plan = solve(p, ALWAYS)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.OPTIMAL


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_the_max_flow_check_agrees_with_the_energy_lp(p: SiteProblem) -> None:
    arrays = site_arrays(p)
    lp = build(arrays, SolveOptions())
    if not lp.cols.n_pairs:
        return
    _, x, _ = _lp(lp, lp.lb, lp.ub, SolveOptions())
    assert x is not None
    net = network_rows(lp.blocks, lp.cols.n_pairs)
    if net is None:  # phase rows of 2- or 3-phase chargers, or circuits that overlap
        return
    verdict = energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub)
    best = max_energy_kwh(p)
    delivered = float(x[: lp.cols.n_pairs].sum() * arrays.slot_h)
    if verdict:
        assert delivered >= best - 1e-6 * max(best, 1.0)
    if delivered < best - 1e-6 * max(best, 1.0):
        assert verdict is False
    # Less power in one pair that carries some: now an augmenting path exists.
    carrying = np.flatnonzero(x[: lp.cols.n_pairs] > 1e-3)
    if carrying.size and verdict:
        less = x.copy()
        less[carrying[0]] *= 0.5
        assert energy_is_maximal(arrays, lp.cols, net, less, lp.lb, lp.ub) is False


def _two_cars(**kwargs: object) -> SiteProblem:
    return problem(
        [session("S1", "E1", 0, 2, 30.0, max_kw=22.0), session("S2", "E2", 0, 2, 30.0, max_kw=22.0)],
        [evse("E1", 22.0), evse("E2", 22.0)],
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_check_on_a_hand_made_site() -> None:
    # Two hourly slots, 20 kW site: at most 40 kWh of the 60 kWh asked for.
    p = _two_cars(limit_kw=20.0, n_slots=2)
    arrays = site_arrays(p)
    lp = build(arrays, SolveOptions())
    net = _network(lp)
    pairs = lp.cols.n_pairs  # S1 t0, S1 t1, S2 t0, S2 t1
    x = np.zeros(lp.cols.total)
    x[:pairs] = [10.0, 10.0, 10.0, 10.0]
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is True
    x[:pairs] = [20.0, 20.0, 0.0, 0.0]  # as much energy, unfair: still maximal
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is True
    x[:pairs] = [10.0, 10.0, 10.0, 5.0]  # 5 kW of room in slot 1 and S2 still needs energy
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is False
    # S1 full (30 kWh), S2 10 kWh: 40 kWh, maximal although S2 alone could take more.
    x[:pairs] = [20.0, 10.0, 0.0, 10.0]
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is True


def test_the_check_follows_a_path_through_a_full_circuit() -> None:
    # S1 alone on circuit C (10 kW) and S2 outside it, 25 kW site, one slot. Plan S1 10, S2 10:
    # the site has 5 kW of room, S2 (22 kW) can take it directly.
    p = problem(
        [session("S1", "E1", 0, 1, 30.0, max_kw=22.0), session("S2", "E2", 0, 1, 30.0, max_kw=22.0)],
        [evse("E1", 22.0), evse("E2", 22.0)],
        limit_kw=25.0,
        n_slots=1,
        circuits=[Circuit(id="C", evses=("E1",), limit_kw=10.0)],
    )
    arrays = site_arrays(p)
    lp = build(arrays, SolveOptions())
    net = _network(lp)
    x = np.zeros(lp.cols.total)
    x[:2] = [10.0, 10.0]
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is False
    x[:2] = [10.0, 15.0]
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is True
    x[:2] = [5.0, 20.0]  # the site is full, the circuit has room but the site does not
    assert energy_is_maximal(arrays, lp.cols, net, x, lp.lb, lp.ub) is True


def test_rows_that_are_not_a_network_are_reported_as_such() -> None:
    three_phase = problem(
        [session("S1", "E1", 0, 2, 30.0), session("S2", "E2", 0, 2, 30.0)],
        [evse("E1", 22.0, phases=3), evse("E2", 22.0, phases=1)],
        phase_limit_a=16.0,
        n_slots=2,
    )
    lp, _ = _lp_of(three_phase, SolveOptions())
    assert network_rows(lp.blocks, lp.cols.n_pairs) is None  # a phase row with coefficient 1/3
    overlapping = problem(
        [session(f"S{k}", f"E{k}", 0, 2, 30.0) for k in range(3)],
        [evse(f"E{k}", 22.0) for k in range(3)],
        n_slots=2,
        circuits=[
            Circuit(id="A", evses=("E0", "E1"), limit_kw=20.0),
            Circuit(id="B", evses=("E1", "E2"), limit_kw=20.0),
        ],
    )
    lp, _ = _lp_of(overlapping, SolveOptions())
    assert network_rows(lp.blocks, lp.cols.n_pairs) is None
    nested = problem(
        [session(f"S{k}", f"E{k}", 0, 2, 30.0) for k in range(3)],
        [evse(f"E{k}", 22.0) for k in range(3)],
        n_slots=2,
        limit_kw=30.0,
        circuits=[
            Circuit(id="A", evses=("E0", "E1", "E2"), limit_kw=40.0),
            Circuit(id="B", evses=("E1", "E2"), limit_kw=20.0),
        ],
    )
    lp, _ = _lp_of(nested, SolveOptions())
    assert network_rows(lp.blocks, lp.cols.n_pairs) is not None


def test_without_an_energy_maximal_first_answer_the_full_weight_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    # A first attempt that delivers nothing (power made very expensive) fails the check; the plan
    # must then be the full-weight optimum, with nothing reported to the caller.
    p = _two_cars(limit_kw=20.0, n_slots=2)

    def useless(c: np.ndarray, cols: object) -> np.ndarray:
        worse = reduced_energy_costs(c, cols)  # type: ignore[arg-type]
        worse[: cols.n_pairs] += 1e12  # type: ignore[attr-defined]
        return worse

    expected = solve(p, NEVER)
    monkeypatch.setattr(solve_module, "reduced_energy_costs", useless)
    plan = solve(p, ALWAYS)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.warnings) == (SolveStatus.OPTIMAL, ())
    assert [s.energy_kwh for s in plan.sessions] == pytest.approx([s.energy_kwh for s in expected.sessions])
    assert sum(s.energy_kwh for s in plan.sessions) == pytest.approx(40.0)



def test_the_shortcut_costs_one_solve_on_a_network_and_none_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    real = solve_module._lp

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(len(args) > 4 or "c" in kwargs)  # True: the reduced-weight attempt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solve_module, "_lp", counting)
    congested = _two_cars(limit_kw=20.0, n_slots=2)
    assert_plan_valid(congested, solve(congested, ALWAYS))
    assert calls == [True]  # the first answer was proven energy-maximal
    calls.clear()
    phases = _two_cars(limit_kw=20.0, n_slots=2, phase_limit_a=16.0)  # 3-phase: coefficients 1/3
    assert_plan_valid(phases, solve(phases, ALWAYS))
    assert calls == [False]  # no proof possible: straight to the full weight


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites(min_rates=True))
def test_the_score_of_the_relaxation_is_its_lp_optimum(p: SiteProblem) -> None:
    """The dive's proof compares a plan's `score` with the relaxation's: that must be the LP optimum
    itself (a lower bound on every plan), not an evaluation that could sit above it."""
    for options in (SolveOptions(), SolveOptions(smoothing=False)):
        lp, arrays = _lp_of(p, options)
        if not lp.cols.n_pairs:
            return
        routes = _Routes(arrays, lp, options)
        x = routes.relaxation()
        assert x is not None
        textbook = cost_vector(arrays, lp.cols, energy_on_shortfall=False)
        pairs = solve_module._pairs(arrays, x, clear_noise=False)
        # Far tighter than the proof's gap (milp_rel_gap, 1e-7), so the bound is not overstated.
        bound, lp_value = routes.objective(arrays.matrix(pairs)), float(textbook @ x)
        assert abs(bound - lp_value) <= 1e-10 * max(abs(lp_value), 1.0) + 1e-6


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_the_linprog_call_of_large_sites_finds_the_same_optimum_as_milp(p: SiteProblem) -> None:
    options = SolveOptions()
    lp, _ = _lp_of(p, options)
    if not lp.cols.n_pairs:
        return
    status, x, _ = _lp(lp, lp.lb, lp.ub, options)
    saved = solve_module.LINPROG_MIN_COLUMNS
    solve_module.LINPROG_MIN_COLUMNS = 0  # every LP through linprog
    try:
        status_l, x_l, _ = _lp(lp, lp.lb, lp.ub, options)
    finally:
        solve_module.LINPROG_MIN_COLUMNS = saved
    assert status == status_l == 0
    assert x is not None and x_l is not None
    assert _same(float(lp.c @ x), float(lp.c @ x_l))
    assert (np.abs(lp.a @ x_l - np.clip(lp.a @ x_l, lp.row_lower, lp.row_upper)) <= 1e-6).all()
