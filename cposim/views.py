"""What the control API shows and takes (JSON; not OCPI objects, except where an OCPI object is embedded)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfileResponse


class PlugRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /sim/evs`: plug a specific EV into a free EVSE."""

    location_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
    evse_uid: Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
    energy_kwh: Annotated[float, msgspec.Meta(gt=0, le=10_000)]
    max_kw: Annotated[float, msgspec.Meta(gt=0, le=10_000)]
    # Seconds from now until the EV leaves (its session then becomes COMPLETED); at most 30 days.
    departure_s: Annotated[float, msgspec.Meta(gt=0, le=2_592_000)]
    # The vehicle cannot charge below this many A per phase (AC); absent: no minimum.
    min_a: Annotated[float, msgspec.Meta(ge=0, le=1000)] | None = None
    # On-board charger phases (AC); absent: as many as the EVSE has.
    phases: Literal[1, 2, 3] | None = None


class EvView(msgspec.Struct, kw_only=True):
    """A plugged-in EV as `GET /sim/state` and `GET /sim/evs` show it."""

    session_id: str
    location_id: str
    evse_uid: str
    origin: str  # "random" (arrival process) or "control"
    plugged_at: datetime
    departure_at: datetime
    energy_need_kwh: float
    kwh: float
    full: bool
    power_w: float
    vehicle_max_w: float
    phases: int
    min_a: float | None
    evse_max_w: float
    # The applied profile's limit now, W (null: no limit in force).
    limit_w: float | None
    # "none", "set" or "set x <fraction>" (APPLY_LOWER).
    profile_source: str
    profile: ChargingProfile | None
    requested_profile: ChargingProfile | None
    profile_senders: list[str]


class EvseView(msgspec.Struct, kw_only=True):
    """One EVSE: its status and the session on it."""

    location_id: str
    uid: str
    power_type: str
    status: str
    max_w: float
    charging_profile_capable: bool
    session_id: str | None


class StateView(msgspec.Struct, kw_only=True):
    """`GET /sim/state`."""

    now: datetime
    down: bool
    scsps: list[str]
    evses: list[EvseView]
    evs: list[EvView]
    # Sender list GETs served from their first page, per module ("locations", "sessions").
    pulls: dict[str, int] = {}


class Sample(msgspec.Struct, kw_only=True):
    """One meter sample: unix time (s) and the site's load (W) from then until the next sample."""

    t: float
    load_w: float


class SiteMeterView(msgspec.Struct, kw_only=True):
    """One site's meter."""

    location_id: str
    load_w: float
    peak_w: float
    peak_at: float | None
    energy_kwh: float
    samples: list[Sample]


class MeterView(msgspec.Struct, kw_only=True):
    """`GET /sim/meter`."""

    tick_s: float
    window_s: float
    sites: list[SiteMeterView]


class CommandRecord(msgspec.Struct, kw_only=True):
    """One ChargingProfiles request the simulator received, with its answers (`GET /sim/commands`)."""

    id: int
    received_at: datetime
    method: str  # PUT (set), GET (active profile), DELETE (clear)
    session_id: str
    party: str
    response_url: str
    response: ChargingProfileResponse
    charging_profile: ChargingProfile | None = None
    duration: int | None = None
    faults: list[str] = []
    # When the charge point's answer is due, what it was, and whether the POST to response_url worked.
    result_due_at: datetime | None = None
    result: str | None = None
    applied_profile: ChargingProfile | None = None
    result_sent_at: datetime | None = None
    result_error: str | None = None
