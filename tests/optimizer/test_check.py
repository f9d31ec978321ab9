"""The plan checker catches every kind of breach the contract names, and accepts what is within tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import Circuit
from optimizer.arrays import site_arrays
from optimizer.check import violations
from tests.optimizer.support import evse, problem, session


def arrays_of_a_small_site() -> object:
    """Two 11 kW sessions in slots 0-2 of 4, site 15 kW, circuit 12 kW, 32 A (7.36 kW) per phase."""
    return site_arrays(
        problem(
            [session("S1", "E1", 0, 3, 20.0, min_kw=2.0), session("S2", "E2", 0, 3, 20.0)],
            [evse("E1", 11.0, 1, "L2"), evse("E2")],
            limit_kw=15.0,
            circuits=[Circuit(id="C1", evses=("E1", "E2"), limit_kw=12.0)],
            phase_limit_a=32.0,
        )
    )


def valid_power() -> np.ndarray:
    power = np.zeros((2, 4))
    power[0, :3] = 4.0
    power[1, :3] = 6.0
    return power


def test_a_plan_within_every_limit_has_no_violations() -> None:
    assert violations(arrays_of_a_small_site(), valid_power()) == []  # type: ignore[arg-type]


def test_a_breach_smaller_than_the_relative_tolerance_is_accepted() -> None:
    power = valid_power()
    power[1, 0] = 8.0 + 5.5e-6  # circuit 12 kW exceeded by 5.5e-6 kW, less than 1e-6 x 12 kW
    assert violations(arrays_of_a_small_site(), power) == []  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "family"),
    [
        (lambda p: p.__setitem__((0, 3), 1.0), "presence[i=0, t=3]"),
        (lambda p: p.__setitem__((1, 0), -0.5), "power_min[i=1, t=0]"),
        (lambda p: p.__setitem__((1, 0), 11.5), "power_max[i=1, t=0]"),
        (lambda p: p.__setitem__((0, 1), 1.0), "min_rate[i=0, t=1]"),
        (lambda p: p.__setitem__((1, 2), 8.5), "circuit_power_limit[c=0, t=2]"),
        (lambda p: p.__setitem__((0, 2), 5.5), "phase_current_limit[phase=1, t=2]"),
        (lambda p: p.__setitem__((1, slice(0, 3)), 7.5), "session_energy[i=1]"),
        (lambda p: p.__setitem__((0, 0), np.inf), "finite[i=0, t=0]"),
    ],
)
def test_each_kind_of_breach_is_named(change: object, family: str) -> None:
    power = valid_power()
    change(power)  # type: ignore[operator]
    found = violations(arrays_of_a_small_site(), power)  # type: ignore[arg-type]
    assert any(line.startswith(family) for line in found), found


def test_the_site_limit_check_counts_the_fixed_load() -> None:
    arrays = site_arrays(
        problem([session("S1", "E1", 0, 2, 20.0)], [evse("E1")], limit_kw=10.0, n_slots=2, fixed_load_kw=4.0)
    )
    power = np.array([[6.0, 6.5]])
    assert violations(arrays, power) == ["site_power_limit[t=1]: 6.5 violates 6"]


def test_a_shared_evse_is_checked_on_the_sum_of_its_sessions() -> None:
    arrays = site_arrays(
        problem([session("S1", "E1", 0, 1, 20.0), session("S2", "E1", 0, 1, 20.0)], [evse("E1")], n_slots=1)
    )
    found = violations(arrays, np.array([[6.0], [6.0]]))
    assert found and found[0].startswith("evse_shared_limit[evse=0, t=0]")


def test_a_power_matrix_of_the_wrong_shape_is_reported() -> None:
    assert violations(arrays_of_a_small_site(), np.zeros((2, 3)))[0].startswith("power matrix has shape")  # type: ignore[arg-type]
