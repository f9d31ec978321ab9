"""Plans as the service keeps them: a site's plan per cycle and each session's row in it."""

from __future__ import annotations

from datetime import datetime

import msgspec

from ocpi221.chargingprofiles import ChargingProfile
from optimizer import ObjectiveTerms, SolveStats
from profiles import ElectricalFacts
from scsp.records.commands import NotSteered
from scsp.records.sessions import SessionKey


class PlanSession(msgspec.Struct, frozen=True, kw_only=True):
    """One session's row of a stored plan, with what dispatch and compliance need to know of it."""

    key: SessionKey
    controllable: bool
    # Why the session is fixed load instead of steered (None when steered).
    reason: NotSteered | None = None
    # Its EVSE as planned: phases, DC, voltage, maxima, the minimum current.
    facts: ElectricalFacts
    # The most the plan let it draw (W): the EVSE's maximum, lower once the vehicle's is learned.
    max_w: float
    # The most its charge point may let it draw (W), whatever the vehicle seemed to take: what the
    # site's safety is judged by.
    evse_max_w: float
    # Its share of the site failsafe limit (W); None for sessions we do not steer.
    failsafe_w: float | None = None
    power_w: list[float]
    energy_kwh: float
    shortfall_kwh: float
    profile: ChargingProfile | None = None


class PlanDetail(msgspec.Struct, frozen=True, kw_only=True):
    """What the solver said of a site's plan, beside the per-slot figures."""

    failsafe_w: float
    # What the plan kept free for arrivals (W): it plans within limit_w minus this.
    arrival_reserve_w: float = 0.0
    jain_index: float | None = None
    warnings: list[str] = []
    stats: SolveStats | None = None
    objective: ObjectiveTerms | None = None


class StoredPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A site's plan for one cycle."""

    id: int
    site_id: str
    created_at: datetime
    start: datetime
    slot_s: int
    n_slots: int
    status: str  # OPTIMAL | FEASIBLE | FALLBACK (optimizer.SolveStatus) | EMPTY (nothing to steer)
    path: str  # optimizer.SolvePath, `failsafe` (no solver result) or `none`
    limit_w: list[float]
    site_power_w: list[float]
    fixed_load_w: list[float]
    detail: PlanDetail
    sessions: list[PlanSession] = []

    def row(self, key: SessionKey) -> PlanSession | None:
        """The session's row, if the plan has one."""
        return next((r for r in self.sessions if r.key == key), None)
