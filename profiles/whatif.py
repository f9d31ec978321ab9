"""What-if: the ChargingProfile each session of an optimizer plan would get (`scsp solve --profiles`).

Everything comes from the optimizer's problem and plan, so aggregators can see the exact OCPI
objects without a running service:

- facts: the session's EVSE (`phases`, AC unless `"dc": true`), the site's `voltage_v`, the lower
  of the EVSE's and the vehicle's `max_kw` as the maximum, the vehicle's `min_kw` (when above 0)
  as the minimum;
- grid: the problem's `start` and `slot_minutes`, which must be a whole number of seconds
  (`start_period` is an integer); the profile's `start_date_time` is `start`;
- failsafe budget: the site failsafe limit (`site.failsafe_kw`, or by default
  `DEFAULT_FAILSAFE_FRACTION` of the smallest site limit over the horizon) minus the largest fixed
  load, as the service shares it; and, when the site has `phase_limit_a`, on each of L1, L2 and
  L3 the smallest phase limit (by default, without `failsafe_kw`, the same fraction of it) minus
  the largest fixed load's current on that phase (the fixed load is spread evenly over the three
  phases, as in the optimizer). Each budget is at least 0.
- failsafe shares: `profiles.failsafe.failsafe_shares_w`, in the plan's order (the rule is in
  that module's docstring).
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

from ocpi221.chargingprofiles import ChargingProfile
from optimizer import Plan, ProblemError, SiteProblem
from profiles.build import build_profile, min_sendable_w
from profiles.failsafe import PhaseDraw, failsafe_shares_w, phase_draw_a_per_w
from profiles.model import ElectricalFacts, ProfileSettings

__all__ = [
    "DEFAULT_FAILSAFE_FRACTION",
    "SessionProfile",
    "site_failsafe_phase_a",
    "site_failsafe_w",
    "slot_seconds",
    "whatif_profiles",
]


DEFAULT_FAILSAFE_FRACTION = 0.5
"""Site failsafe limit, as a fraction of the smallest site limit and of the smallest phase limit
(dimensionless), when the problem gives no `site.failsafe_kw`. A charge point falls back to it when
the service is gone, possibly for hours, while the uncontrolled load and the grid limit keep
changing unseen. Half of the tightest limit the plan respected leaves room for both and still
charges every vehicle."""


_SLOT_TOLERANCE_S = 1e-6
"""How far (s) `slot_minutes * 60` may lie from a whole second and still count as one: float
minutes such as 0.1 give 6.000000000000001 s; a microsecond is far below any real slot length."""


class SessionProfile(msgspec.Struct, frozen=True, kw_only=True):
    """The profile one session of the plan would be sent."""

    id: str
    """The session id, as in the plan."""
    charging_profile: ChargingProfile


def slot_seconds(problem: SiteProblem) -> int:
    """The slot length in whole seconds, as a profile needs it (`start_period` is an integer).

    Args:
        problem: the optimizer's problem.

    Returns:
        `slot_minutes * 60` as an int.

    Raises:
        ProblemError: naming `slot_minutes`, when it is not a whole number of seconds (at least 1).
    """
    slot_s = problem.slot_minutes * 60.0
    whole_s = round(slot_s)
    if whole_s < 1 or not math.isclose(whole_s, slot_s, rel_tol=0.0, abs_tol=_SLOT_TOLERANCE_S):
        raise ProblemError(
            "slot_minutes",
            f"{problem.slot_minutes!r} min is {slot_s:g} s, not a whole number of seconds; "
            "profiles need whole seconds (start_period is an integer)",
        )
    return whole_s


def _largest(value: float | tuple[float, ...] | None) -> float:
    """The largest of a per-slot value (0 when absent)."""
    if value is None:
        return 0.0
    return max(value) if isinstance(value, tuple) else value


def _smallest(value: float | tuple[float, ...]) -> float:
    """The smallest of a per-slot value."""
    return min(value) if isinstance(value, tuple) else value


def site_failsafe_w(problem: SiteProblem) -> float:
    """The power (W) the sessions' failsafe tails may share, after the fixed load.

    Args:
        problem: the optimizer's problem.

    Returns:
        The site failsafe limit (`site.failsafe_kw`, or by default `DEFAULT_FAILSAFE_FRACTION` of
        the smallest site limit) minus the largest fixed load, at least 0: the fixed load keeps
        drawing when the service is gone (the service shares its failsafe limit the same way).
    """
    site = problem.site
    limit_w = (site.failsafe_kw * 1000.0 if site.failsafe_kw is not None
               else max(_smallest(site.limit_kw), 0.0) * 1000.0 * DEFAULT_FAILSAFE_FRACTION)
    return max(0.0, limit_w - _largest(site.fixed_load_kw) * 1000.0)


def site_failsafe_phase_a(problem: SiteProblem) -> float | None:
    """The current (A) the failsafe tails may share on each of L1, L2 and L3, or None for no limit.

    Args:
        problem: the optimizer's problem.

    Returns:
        None without `phase_limit_a`. Otherwise the smallest phase limit (a physical limit that
        holds whatever failsafe limit the problem states; by default, when it states none,
        `DEFAULT_FAILSAFE_FRACTION` of it) minus the largest fixed load's current per phase
        (`fixed_load_kw / (3 * voltage_v)`), at least 0.
    """
    site = problem.site
    if site.phase_limit_a is None:
        return None
    fraction = 1.0 if site.failsafe_kw is not None else DEFAULT_FAILSAFE_FRACTION
    fixed_a = _largest(site.fixed_load_kw) * 1000.0 / (3.0 * site.voltage_v)
    return max(0.0, max(_smallest(site.phase_limit_a), 0.0) * fraction - fixed_a)








def whatif_profiles(
    problem: SiteProblem, plan: Plan, *, settings: ProfileSettings | None = None
) -> tuple[SessionProfile, ...]:
    """Build the ChargingProfile every session of a plan would be sent.

    Args:
        problem: the optimizer's problem (EVSEs, site voltage and limits, start, slot length).
        plan: the optimizer's plan for that problem.
        settings: profile settings (`max_periods`, `failsafe_delay_s`, unit policy); the
            `ProfileSettings` defaults when None.

    Returns:
        One `SessionProfile` per plan session, in the plan's order.

    Raises:
        ProblemError: naming `slot_minutes` when the slot length is not a whole number of seconds
            (a `ValueError`, like the others).
        ValueError: when a session or EVSE is unknown, or an EVSE has a phase count other than
            1, 2 or 3.
    """
    settings = ProfileSettings() if settings is None else settings
    slot_s = slot_seconds(problem)
    requests = {session.id: session for session in problem.sessions}
    evses = {evse.id: evse for evse in problem.evses}
    facts: list[ElectricalFacts] = []
    draws: list[PhaseDraw] = []
    for planned in plan.sessions:
        if planned.id not in requests:
            raise ValueError(f"plan session {planned.id!r} is not in the problem")
        request = requests[planned.id]
        if request.evse not in evses:
            raise ValueError(f"session {planned.id!r} references unknown EVSE {request.evse!r}")
        evse = evses[request.evse]
        phases: Literal[1, 2, 3]
        if evse.phases == 1:
            phases = 1
        elif evse.phases == 2:
            phases = 2
        elif evse.phases == 3:
            phases = 3
        else:
            raise ValueError(f"EVSE {evse.id!r} has {evse.phases} phases; 1, 2 or 3 expected")
        facts.append(
            ElectricalFacts(
                phases=phases,
                dc=evse.dc,
                voltage_v=problem.site.voltage_v,
                max_electric_power_w=min(evse.max_kw, request.max_kw) * 1000.0,
                min_power_w=request.min_kw * 1000.0 if request.min_kw > 0 else None,
            )
        )
        draws.append(phase_draw_a_per_w(evse, problem.site.voltage_v))
    phase_budget_a = site_failsafe_phase_a(problem)
    shares = failsafe_shares_w(
        site_failsafe_w(problem),
        [f.max_power_w or 0.0 for f in facts],
        [min_sendable_w(f, settings) for f in facts],
        draws_a_per_w=draws if phase_budget_a is not None else None,
        phase_budget_a=phase_budget_a,
    )
    return tuple(
        SessionProfile(
            id=planned.id,
            charging_profile=build_profile(
                [kw * 1000.0 for kw in planned.power_kw],
                start=problem.start,
                slot_s=slot_s,
                facts=session_facts,
                failsafe_w=share,
                settings=settings,
            ),
        )
        for planned, session_facts, share in zip(plan.sessions, facts, shares, strict=True)
    )
