"""Solve: a gathered site as an optimizer problem, solved (pure: runs in worker processes)."""

from __future__ import annotations

import optimizer
from scsp.planning.gather import PlannedSession, SiteInput


def problem_of(site: SiteInput) -> optimizer.SiteProblem:
    """The optimizer problem of a gathered site (controllable sessions only; the rest is fixed load)."""
    evses, sessions = [], []
    for i, s in enumerate(site.sessions):
        if not s.controllable:
            continue
        evse_id = f"e{i}"
        evses.append(evse_of(s, evse_id))
        sessions.append(optimizer.SessionRequest(
            id=f"s{i}", evse=evse_id, arrival_slot=0, departure_slot=s.departure_slot, energy_kwh=s.need_kwh,
            max_kw=s.max_w / 1000, min_kw=s.min_w / 1000, profile_type=optimizer.ProfileType(s.profile_type),
            previous_kw=tuple(w / 1000 for w in s.previous_w) if s.previous_w else None))
    fixed = site.fixed_load_w
    return optimizer.SiteProblem(
        start=site.start, slot_minutes=site.slot_s / 60, n_slots=site.n_slots,
        site=optimizer.Site(limit_kw=tuple(max(0.0, w - site.reserve_w) / 1000 for w in site.limit_w),
                            phase_limit_a=site.phase_limit_a, voltage_v=site.voltage_v,
                            fixed_load_kw=tuple(w / 1000 for w in fixed) if any(fixed) else None,
                            failsafe_kw=site.failsafe_w / 1000),
        evses=tuple(evses), sessions=tuple(sessions),
        price_per_kwh=tuple(site.price) if site.price else None,
        co2_g_per_kwh=tuple(site.carbon) if site.carbon else None)


def solve_site(site: SiteInput, options: optimizer.SolveOptions) -> optimizer.Plan | None:
    """Solve one site; None when it has no session we control (nothing to optimise)."""
    problem = problem_of(site)
    if not problem.sessions:
        return None
    return optimizer.solve(problem, options)


def evse_of(s: PlannedSession, evse_id: str) -> optimizer.Evse:
    """The optimizer's EVSE of a planned session (its maximum, phases, phase and DC flag)."""
    return optimizer.Evse(id=evse_id, max_kw=s.max_w / 1000, phases=s.facts.phases,
                          phase=s.phase,
                          dc=s.facts.dc)

