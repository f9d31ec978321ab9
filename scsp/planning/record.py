"""The plan record: a solved site as stored, with every steered session's ChargingProfile and failsafe share."""

from __future__ import annotations

from datetime import datetime

import numpy as np

import optimizer
from profiles import build_profile
from profiles.build import min_sendable_w
from profiles.failsafe import failsafe_shares_w, phase_draw_a_per_w
from scsp.config import Config
from scsp.planning.gather import SiteInput
from scsp.planning.solve import evse_of
from scsp.records.plans import PlanDetail, PlanSession, StoredPlan


def failsafe_shares(site: SiteInput, config: Config) -> list[float]:
    """Each controllable session's share of the site failsafe limit (W), after the fixed load.

    `profiles.failsafe.failsafe_shares_w`: each session gets 0 or at least the smallest limit its
    profile can carry (a share below it would be sent as 0 and wasted), as many sessions as fit get
    that minimum, the rest is shared max-min fairly, none above a session's own maximum. The shares
    sum to at most the failsafe limit minus the most the sessions we cannot steer may draw, and,
    where the site has a per-phase limit, put at most that limit minus the fixed load's share on
    each phase: a site whose charge points lose us stays within both.
    """
    controllable = [s for s in site.sessions if s.controllable]
    if not controllable:
        return []
    fixed_most = max(site.fixed_load_w, default=0.0)
    mins = [min_sendable_w(s.facts, config.profile_settings_for(s.key.country_code, s.key.party_id))
            for s in controllable]
    draws = budget_a = None
    if site.phase_limit_a is not None:
        # The fixed load is spread evenly over the three phases, as in the optimizer.
        budget_a = max(0.0, site.phase_limit_a - fixed_most / (3.0 * site.voltage_v))
        draws = [phase_draw_a_per_w(evse_of(s, f"e{i}"), site.voltage_v) for i, s in enumerate(controllable)]
    return failsafe_shares_w(max(0.0, site.failsafe_w - fixed_most), [s.max_w for s in controllable], mins,
                             draws_a_per_w=draws, phase_budget_a=budget_a)


def plan_record(site: SiteInput, plan: optimizer.Plan | None, config: Config, now: datetime) -> StoredPlan:
    """The stored plan of a site, with the ChargingProfile of every controllable session."""
    shares = iter(failsafe_shares(site, config))
    by_id = {p.id: p for p in plan.sessions} if plan is not None else {}
    rows: list[PlanSession] = []
    site_power = np.zeros(site.n_slots)
    for i, s in enumerate(site.sessions):
        result = by_id.get(f"s{i}")
        profile = None
        share: float | None = None
        if s.controllable:
            share = next(shares)
            # Without a solver result (a failure before the optimizer's own fallback could help) the
            # session gets its failsafe share: safe whatever the others do.
            power_w = [round(p * 1000, 3) for p in result.power_kw] if result is not None else [share] * site.n_slots
            profile = build_profile(power_w, start=site.start, slot_s=site.slot_s, facts=s.facts, failsafe_w=share,
                                    settings=config.profile_settings_for(s.key.country_code, s.key.party_id))
            site_power += np.asarray(power_w)
        else:
            power_w = list(s.fixed_w or [])
        rows.append(PlanSession(
            key=s.key, controllable=s.controllable, reason=s.reason, facts=s.facts, max_w=s.max_w,
            evse_max_w=s.evse_max_w, failsafe_w=share, power_w=power_w,
            energy_kwh=result.energy_kwh if result is not None else 0.0,
            shortfall_kwh=result.shortfall_kwh if result is not None else s.need_kwh if s.controllable else 0.0,
            profile=profile))
    detail = PlanDetail(failsafe_w=site.failsafe_w, arrival_reserve_w=site.reserve_w)
    if plan is not None:
        detail = PlanDetail(failsafe_w=site.failsafe_w, arrival_reserve_w=site.reserve_w, jain_index=plan.jain_index,
                            warnings=list(plan.warnings), stats=plan.stats, objective=plan.objective)
    # Without a solver result: nothing to steer (EMPTY), or a solve that failed, in which case every
    # session we steer got its failsafe share (FALLBACK by the `failsafe` path).
    steered = any(s.controllable for s in site.sessions)
    status = plan.status.value if plan is not None else "FALLBACK" if steered else "EMPTY"
    path = plan.path.value if plan is not None else "failsafe" if steered else "none"
    return StoredPlan(
        id=0, site_id=site.site_id, created_at=now, start=site.start, slot_s=site.slot_s, n_slots=site.n_slots,
        status=status, path=path, limit_w=site.limit_w, site_power_w=[round(float(w), 3) for w in site_power],
        fixed_load_w=site.fixed_load_w, detail=detail, sessions=rows)
