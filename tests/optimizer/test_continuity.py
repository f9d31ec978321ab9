"""A re-plan keeps the previous plan where nothing better exists (no flipping between equal optima)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from optimizer import ProblemError, SessionRequest, Site, SiteProblem, solve, validate_problem
from optimizer.model import Evse


def twins(previous: dict[str, tuple[float, ...]] | None = None) -> SiteProblem:
    """Two identical sessions and room for one at a time: every split in time is equally good."""
    sessions = tuple(
        SessionRequest(id=name, evse=f"E{name}", arrival_slot=0, departure_slot=4, energy_kwh=2.0, max_kw=4.0,
                       profile_type="REGULAR", previous_kw=(previous or {}).get(name))
        for name in ("A", "B"))
    return SiteProblem(start=datetime(2026, 11, 25, tzinfo=UTC), slot_minutes=30, n_slots=4,
                       site=Site(limit_kw=4.0), evses=(Evse(id="EA", max_kw=4.0), Evse(id="EB", max_kw=4.0)),
                       sessions=sessions)


def test_the_previous_plan_decides_between_equally_good_plans() -> None:
    first = solve(twins())
    assert [s.power_kw for s in first.sessions] == [(2.0, 2.0, 0.0, 0.0)] * 2  # shared, no switching
    # Plans that deliver the same energy as early in total: whichever was planned before is kept.
    for previous in ({"A": (4.0, 0.0, 0.0, 0.0), "B": (0.0, 4.0, 0.0, 0.0)},
                     {"A": (0.0, 4.0, 0.0, 0.0), "B": (4.0, 0.0, 0.0, 0.0)}):
        again = solve(twins(previous))
        assert {s.id: s.power_kw for s in again.sessions} == previous
        assert again.objective.delivered_kwh == first.objective.delivered_kwh
    # And a re-plan from its own result reproduces it.
    own = {s.id: s.power_kw for s in first.sessions}
    assert {s.id: s.power_kw for s in solve(twins(own)).sessions} == own


def test_continuity_never_costs_energy() -> None:
    # A previous plan that left capacity unused: the re-plan still fills it.
    lazy = {"A": (1.0, 0.0, 0.0, 0.0), "B": (0.0, 0.0, 0.0, 0.0)}
    plan = solve(twins(lazy))
    assert plan.objective.delivered_kwh == pytest.approx(4.0)


def test_a_previous_plan_of_the_wrong_length_is_named() -> None:
    problem = msgspec.structs.replace(twins(), sessions=(
        msgspec.structs.replace(twins().sessions[0], previous_kw=(1.0, 2.0)), twins().sessions[1]))
    with pytest.raises(ProblemError, match=r"sessions\[0\]\.previous_kw"):
        validate_problem(problem)
