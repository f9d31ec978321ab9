"""Hand-sized problems whose optimum is known exactly (hourly slots: kW and kWh per slot read the same)."""

from __future__ import annotations

import pytest

from optimizer import Circuit, SolveOptions, SolvePath, SolveStatus, solve
from tests.optimizer.support import (
    assert_plan_valid,
    delivered_kwh,
    evse,
    max_energy_kwh,
    power_matrix,
    problem,
    served_fractions,
    session,
)


def test_a_lone_session_charges_at_full_power_from_arrival_until_its_need_is_met() -> None:
    p = problem([session("S1", "E1", 1, 4, 25.0)], [evse("E1")])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.path) == (SolveStatus.OPTIMAL, SolvePath.LP)
    assert plan.sessions[0].power_kw == pytest.approx((0.0, 11.0, 11.0, 3.0), abs=1e-6)
    assert plan.sessions[0].energy_kwh == pytest.approx(25.0)
    assert plan.sessions[0].shortfall_kwh == pytest.approx(0.0, abs=1e-9)
    assert plan.warnings == ()


def test_the_lower_of_the_vehicle_and_evse_maximum_bounds_the_power() -> None:
    p = problem([session("S1", "E1", 0, 4, 100.0, max_kw=22.0)], [evse("E1", max_kw=7.4)])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((7.4,) * 4)


def test_a_session_that_cannot_be_filled_gets_all_it_can_take_and_reports_its_shortfall() -> None:
    p = problem([session("S1", "E1", 1, 4, 50.0)], [evse("E1")])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((0.0, 11.0, 11.0, 11.0))
    assert plan.sessions[0].shortfall_kwh == pytest.approx(17.0)
    assert plan.objective.reachable_kwh == pytest.approx(33.0)


def test_shortfall_is_shared_in_proportion_to_need_when_the_site_limit_binds() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 8.0), session("S2", "E2", 0, 4, 24.0)],
        [evse("E1"), evse("E2")],
        limit_kw=4.0,
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert delivered_kwh(plan) == pytest.approx(16.0)
    assert [s.energy_kwh for s in plan.sessions] == pytest.approx([4.0, 12.0], abs=1e-6)
    assert [s.shortfall_kwh for s in plan.sessions] == pytest.approx([4.0, 12.0], abs=1e-6)
    assert plan.jain_index == pytest.approx(1.0)


def test_served_fractions_of_sessions_competing_for_one_limit_end_within_one_fairness_segment() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 10.0), session("S2", "E2", 0, 4, 30.0), session("S3", "E3", 0, 4, 17.0)],
        [evse("E1"), evse("E2"), evse("E3")],
        limit_kw=6.1,
    )
    options = SolveOptions(fairness_segments=10)
    plan = solve(p, options)
    assert_plan_valid(p, plan)
    fractions = served_fractions(p, plan)
    assert delivered_kwh(plan) == pytest.approx(24.4)
    assert max(fractions) - min(fractions) <= 1 / options.fairness_segments + 1e-6


def test_more_fairness_segments_bring_the_split_closer_to_proportional() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 10.0), session("S2", "E2", 0, 4, 30.0)],
        [evse("E1"), evse("E2")],
        limit_kw=4.4,  # 17.6 of 40 kWh: 44 % each when proportional
    )
    plan = solve(p, SolveOptions(fairness_segments=50))
    assert_plan_valid(p, plan)
    fractions = served_fractions(p, plan)
    assert max(fractions) - min(fractions) <= 1 / 50 + 1e-6


def test_energy_is_never_given_up_for_a_cheaper_price() -> None:
    p = problem([session("S1", "E1", 0, 3, 33.0, profile="CHEAP")], [evse("E1")], price=[0.1, 9.0, 0.1, 0.1])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((11.0, 11.0, 11.0, 0.0))


def test_a_cheap_session_charges_in_the_cheapest_slots() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 16.5, profile="CHEAP")], [evse("E1")], price=[0.30, 0.10, 0.20, 0.40]
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((0.0, 11.0, 5.5, 0.0), abs=1e-6)
    assert plan.objective.cost == pytest.approx(11 * 0.10 + 5.5 * 0.20)


def test_a_green_session_charges_in_the_least_carbon_intensive_slots() -> None:
    p = problem([session("S1", "E1", 0, 4, 22.0, profile="GREEN")], [evse("E1")], co2=[300, 200, 100, 400])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((0.0, 11.0, 11.0, 0.0), abs=1e-6)
    assert plan.objective.co2_g == pytest.approx(11 * 200 + 11 * 100)


def test_a_fast_session_charges_first_whatever_the_price() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 11.0, profile="FAST")], [evse("E1")], price=[0.40, 0.10, 0.10, 0.10]
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((11.0, 0.0, 0.0, 0.0), abs=1e-6)


def test_a_cheap_session_without_a_price_signal_charges_early() -> None:
    p = problem([session("S1", "E1", 0, 4, 11.0, profile="CHEAP")], [evse("E1")])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((11.0, 0.0, 0.0, 0.0), abs=1e-6)


@pytest.mark.parametrize(("cheap_slot", "expected_slot"), [(4, 4), (40, 0)])
def test_regular_charges_early_but_waits_a_little_for_a_much_cheaper_slot(
    cheap_slot: int, expected_slot: int
) -> None:
    price = [0.30] * 96
    price[cheap_slot] = 0.10
    p = problem(
        [session("S1", "E1", 0, 96, 2.75, profile="REGULAR")],  # one 15-minute slot at 11 kW
        [evse("E1")],
        n_slots=96,
        slot_minutes=15,
        price=price,
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    expected = [0.0] * 96
    expected[expected_slot] = 11.0
    assert plan.sessions[0].power_kw == pytest.approx(expected, abs=1e-6)


def test_a_circuit_limit_caps_the_sum_of_its_evses_and_splits_fairly() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 44.0), session("S2", "E2", 0, 4, 44.0), session("S3", "E3", 0, 4, 44.0)],
        [evse("E1"), evse("E2"), evse("E3")],
        circuits=[Circuit(id="C1", evses=("E1", "E2"), limit_kw=11.0)],
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert [s.energy_kwh for s in plan.sessions] == pytest.approx([22.0, 22.0, 44.0], abs=1e-6)
    power = power_matrix(plan)
    assert (power[0] + power[1]) == pytest.approx([11.0] * 4)


def test_a_circuit_limit_given_per_slot_applies_per_slot() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 44.0)],
        [evse("E1")],
        circuits=[Circuit(id="C1", evses=("E1",), limit_kw=(11.0, 0.0, 5.0, 11.0))],
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((11.0, 0.0, 5.0, 11.0), abs=1e-6)


def test_single_phase_evses_share_their_phase_current_limit() -> None:
    # 16 A x 230 V = 3.68 kW per phase. The 3-phase EVSE draws a third of its power on each phase,
    # so the most energy comes from running it at 11 kW and giving the 1-phase ones what is left.
    p = problem(
        [
            session("S1", "E1", 0, 4, 100.0, max_kw=7.4),
            session("S2", "E2", 0, 4, 100.0, max_kw=7.4),
            session("S3", "E3", 0, 4, 100.0, max_kw=7.4),
            session("S4", "E4", 0, 4, 100.0),
        ],
        [evse("E1", 7.4, 1, "L1"), evse("E2", 7.4, 1, "L1"), evse("E3", 7.4, 1, "L2"), evse("E4", 11.0, 3)],
        phase_limit_a=16.0,
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    per_slot = 2 * (3.68 - 11.0 / 3) + 11.0
    assert delivered_kwh(plan) == pytest.approx(4 * per_slot)
    assert delivered_kwh(plan) == pytest.approx(max_energy_kwh(p))


def test_a_two_phase_evse_loads_l1_and_l2_only() -> None:
    p = problem(
        [session("S1", "E1", 0, 1, 100.0, max_kw=22.0), session("S2", "E2", 0, 1, 100.0, max_kw=22.0)],
        [evse("E1", 22.0, 2), evse("E2", 22.0, 1, "L3")],
        n_slots=1,
        phase_limit_a=20.0,  # 4.6 kW per phase
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert [s.energy_kwh for s in plan.sessions] == pytest.approx([9.2, 4.6])


def test_fixed_load_shares_the_site_limit_and_a_slot_it_overloads_gets_nothing_with_a_warning() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 100.0)], [evse("E1")], limit_kw=10.0, fixed_load_kw=[5.0, 12.0, 5.0, 2.0]
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.OPTIMAL
    assert plan.sessions[0].power_kw == pytest.approx((5.0, 0.0, 5.0, 8.0), abs=1e-6)
    assert any("fixed_load_kw exceeds site.limit_kw in 1 slot (first t=1)" in w for w in plan.warnings)


def test_two_sessions_on_one_evse_share_its_maximum() -> None:
    p = problem([session("S1", "E1", 0, 2, 100.0), session("S2", "E1", 1, 3, 100.0)], [evse("E1")], n_slots=3)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert power_matrix(plan).sum(axis=0) == pytest.approx([11.0, 11.0, 11.0])


def test_sessions_that_tie_share_the_capacity_without_switching() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 22.0), session("S2", "E2", 0, 4, 22.0)],
        [evse("E1"), evse("E2")],
        limit_kw=11.0,
    )
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert power_matrix(plan).ravel() == pytest.approx([5.5] * 8, abs=1e-6)
    assert plan.objective.switching_kw == pytest.approx(0.0, abs=1e-6)


def test_without_explicit_smoothing_tied_sessions_take_turns_in_blocks_the_one_leaving_sooner_first() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 22.0), session("S2", "E2", 0, 3, 22.0)],
        [evse("E1"), evse("E2")],
        limit_kw=11.0,
    )
    plan = solve(p, SolveOptions(smoothing=False))
    assert_plan_valid(p, plan)
    assert plan.sessions[1].power_kw == pytest.approx((11.0, 11.0, 0.0, 0.0), abs=1e-6)
    assert plan.sessions[0].power_kw == pytest.approx((0.0, 0.0, 11.0, 11.0), abs=1e-6)


def test_a_zero_site_limit_plans_zero_power() -> None:
    p = problem([session("S1", "E1", 0, 4, 10.0)], [evse("E1")], limit_kw=0.0)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.status == SolveStatus.OPTIMAL
    assert plan.sessions[0].power_kw == (0.0, 0.0, 0.0, 0.0)
    assert plan.jain_index is None  # nobody is served


def test_a_site_without_sessions_gets_an_empty_optimal_plan() -> None:
    p = problem([], [evse("E1")])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert (plan.status, plan.sessions, plan.site_power_kw) == (SolveStatus.OPTIMAL, (), (0.0,) * 4)


def test_a_departure_beyond_the_horizon_plans_within_the_horizon_only() -> None:
    p = problem([session("S1", "E1", 2, 500, 100.0)], [evse("E1")])
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((0.0, 0.0, 11.0, 11.0))


def test_a_single_slot_horizon_works() -> None:
    p = problem([session("S1", "E1", 0, 1, 2.0)], [evse("E1")], n_slots=1, slot_minutes=15)
    plan = solve(p)
    assert_plan_valid(p, plan)
    assert plan.sessions[0].power_kw == pytest.approx((8.0,))


def test_solving_twice_gives_the_same_plan() -> None:
    p = problem(
        [
            session(f"S{i}", f"E{i}", i % 3, 4, 7.0 + i, profile=("CHEAP", "FAST", "GREEN", "REGULAR")[i % 4])
            for i in range(8)
        ],
        [evse(f"E{i}") for i in range(8)],
        limit_kw=20.0,
        price=[0.2, 0.1, 0.3, 0.25],
        co2=[100, 300, 200, 50],
    )
    first, second = solve(p), solve(p)
    assert_plan_valid(p, first)
    assert [s.power_kw for s in first.sessions] == [s.power_kw for s in second.sessions]


def test_the_plan_reports_the_problem_sizes_it_solved() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 25.0), session("S2", "E2", 0, 4, 25.0)],
        [evse("E1"), evse("E2")],
        limit_kw=15.0,
    )
    plan = solve(p, SolveOptions(fairness_segments=10))
    assert_plan_valid(p, plan)
    # 8 power pairs + 2 x 10 shortfall segments + 6 switching variables; 4 site rows + 2 energy rows
    # + 6 switching rows.
    assert (plan.stats.variables, plan.stats.constraints) == (34, 12)
    assert plan.stats.build_s >= 0 and plan.stats.solve_s >= 0


def test_without_explicit_smoothing_the_plan_is_still_optimal_in_energy_and_fairness() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 8.0), session("S2", "E2", 0, 4, 24.0)],
        [evse("E1"), evse("E2")],
        limit_kw=4.0,
    )
    plan = solve(p, SolveOptions(smoothing=False))
    assert_plan_valid(p, plan)
    assert [s.energy_kwh for s in plan.sessions] == pytest.approx([4.0, 12.0], abs=1e-6)
    assert plan.stats.constraints == 4 + 2


def test_the_interior_point_route_for_large_problems_finds_the_same_optimum() -> None:
    p = problem(
        [session("S1", "E1", 0, 4, 8.0), session("S2", "E2", 0, 4, 24.0)],
        [evse("E1"), evse("E2")],
        limit_kw=4.0,
    )
    simplex = solve(p)
    interior = solve(p, SolveOptions(ipm_min_columns=1))
    assert_plan_valid(p, interior)
    assert [s.energy_kwh for s in interior.sessions] == pytest.approx(
        [s.energy_kwh for s in simplex.sessions], abs=1e-6
    )
