"""Plans as the service keeps them: a site's plan per cycle and each session's row in it."""

from __future__ import annotations

from typing import Any

import msgspec

from ocpi221.chargingprofiles import ChargingProfile


class PlanSession(msgspec.Struct, frozen=True, kw_only=True):
    """One session's row of a stored plan."""

    party: int
    country_code: str
    party_id: str
    session_id: str
    controllable: bool
    power_w: list[float]
    energy_kwh: float
    shortfall_kwh: float
    profile: ChargingProfile | None = None


class StoredPlan(msgspec.Struct, frozen=True, kw_only=True):
    """A site's plan for one cycle."""

    id: int
    site_id: str
    created_at: int
    start_ts: int
    slot_s: int
    n_slots: int
    status: str
    path: str
    limit_w: list[float]
    site_power_w: list[float]
    fixed_load_w: list[float]
    detail: dict[str, Any]
    sessions: list[PlanSession] = []


def hard_max_w(info: dict[str, Any], default: Any = 1e9) -> Any:
    """The most a session's charge point may let it draw (W), from a plan's session detail.

    Plans before the EVSE maximum was recorded apart from the learned vehicle maximum carry only `max_w`.
    """
    return info.get("evse_max_w", info.get("max_w", default))

