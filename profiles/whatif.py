"""What-if: the ChargingProfile each session of an optimizer plan would get (`scsp solve --profiles`).

Everything comes from the optimizer's problem and plan, so aggregators can see the exact OCPI
objects without a running service:

- facts: the session's EVSE (`phases`, AC unless `"dc": true`), the site's `voltage_v`, the lower
  of the EVSE's and the vehicle's `max_kw` as the maximum, the vehicle's `min_kw` (when above 0)
  as the minimum;
- grid: the problem's `start` and `slot_minutes`; the profile's `start_date_time` is `start`;
- failsafe: the site failsafe limit is `site.failsafe_kw`, or by default `DEFAULT_FAILSAFE_FRACTION`
  of the smallest site limit over the horizon. It is shared among all sessions of the plan by
  water-filling (max-min fair): equal shares, except that a session never gets more than its own
  maximum and what it cannot use goes to the others. The shares sum to at most the site failsafe
  limit, so the profiles together never allow more than it after the failsafe time. Phase limits
  and the fixed load are not part of this share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from optimizer import Plan, SiteProblem
from profiles.build import build_profile
from profiles.model import ElectricalFacts, ProfileSettings
from profiles.ocpi import ChargingProfile

__all__ = [
    "DEFAULT_FAILSAFE_FRACTION",
    "SessionProfile",
    "failsafe_shares_w",
    "site_failsafe_w",
    "whatif_profiles",
]

DEFAULT_FAILSAFE_FRACTION = 0.5
"""Site failsafe limit, as a fraction of the smallest site limit (dimensionless), when the problem
gives no `site.failsafe_kw`. A charge point falls back to it when the service is gone, possibly for
hours, while the uncontrolled load and the grid limit keep changing unseen. Half of the tightest
limit the plan respected leaves room for both and still charges every vehicle."""


class SessionProfile(msgspec.Struct, frozen=True, kw_only=True):
    """The profile one session of the plan would be sent."""

    id: str
    """The session id, as in the plan."""
    charging_profile: ChargingProfile


def site_failsafe_w(problem: SiteProblem) -> float:
    """The site failsafe limit in W: `site.failsafe_kw`, else the documented default.

    Args:
        problem: the optimizer's problem.

    Returns:
        The limit (W) the sum of the session profiles must respect after the failsafe time.
    """
    if problem.site.failsafe_kw is not None:
        return problem.site.failsafe_kw * 1000.0
    limits = problem.site.limit_kw
    smallest = min(limits) if isinstance(limits, tuple) else limits
    return max(smallest, 0.0) * 1000.0 * DEFAULT_FAILSAFE_FRACTION


def failsafe_shares_w(total_w: float, caps_w: Sequence[float]) -> list[float]:
    """Split a failsafe limit max-min fairly among sessions, none above its own cap.

    Args:
        total_w: the limit to share (W), at least 0.
        caps_w: each session's maximum (W), at least 0.

    Returns:
        One share per session (W), in the given order; their sum is at most `total_w`.
    """
    shares = [0.0] * len(caps_w)
    left, remaining = max(total_w, 0.0), len(caps_w)
    for index in sorted(range(len(caps_w)), key=lambda i: caps_w[i]):
        share = min(max(caps_w[index], 0.0), left / remaining)
        shares[index] = share
        left -= share
        remaining -= 1
    return shares


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
        ValueError: when the slot length is not a whole number of seconds, a session or EVSE is
            unknown, or an EVSE has a phase count other than 1, 2 or 3.
    """
    settings = ProfileSettings() if settings is None else settings
    slot_s = round(problem.slot_minutes * 60.0)
    if slot_s < 1 or not math.isclose(slot_s, problem.slot_minutes * 60.0, abs_tol=1e-6):
        raise ValueError(f"slot_minutes {problem.slot_minutes} is not a whole number of seconds")
    requests = {session.id: session for session in problem.sessions}
    evses = {evse.id: evse for evse in problem.evses}
    facts: list[ElectricalFacts] = []
    for planned in plan.sessions:
        if planned.id not in requests:
            raise ValueError(f"plan session {planned.id!r} is not in the problem")
        request = requests[planned.id]
        if request.evse not in evses:
            raise ValueError(f"session {planned.id!r} references unknown EVSE {request.evse!r}")
        evse = evses[request.evse]
        if evse.phases not in (1, 2, 3):
            raise ValueError(f"EVSE {evse.id!r} has {evse.phases} phases; 1, 2 or 3 expected")
        facts.append(
            ElectricalFacts(
                phases=evse.phases,  # type: ignore[arg-type]  # checked just above
                dc=evse.dc,
                voltage_v=problem.site.voltage_v,
                max_electric_power_w=min(evse.max_kw, request.max_kw) * 1000.0,
                min_power_w=request.min_kw * 1000.0 if request.min_kw > 0 else None,
            )
        )
    shares = failsafe_shares_w(site_failsafe_w(problem), [f.max_power_w or 0.0 for f in facts])
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
