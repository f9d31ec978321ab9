"""What aggregators and DSOs give the service: API keys, site grid settings, signals."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from scsp.records.sessions import EPOCH


class ApiRole(StrEnum):
    """What an API key may do (see `scsp.api.auth` for the permission of each endpoint)."""

    aggregator = "aggregator"
    dso = "dso"
    admin = "admin"


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """An API key as stored (never with the key itself: only its hash is kept)."""

    id: int
    role: ApiRole
    # Site ids the key may touch; empty: every site.
    sites: tuple[str, ...] = ()
    label: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None



class ArrivalReserve(StrEnum):
    """What a site's plan keeps free for EVs that arrive before their first profile reaches them."""

    NONE = "none"  # nothing: an arrival may take the site over its limit until its profile arrives
    LARGEST_IDLE_EVSE = "largest_idle_evse"  # the maximum of the largest profile-capable EVSE without a session
    FIXED = "fixed"  # `arrival_reserve_w`


class SiteSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The grid connection of a site as configured through the API (None: use the configured default)."""

    site_id: str
    import_limit_w: float | None = None
    phase_limit_a: float | None = None
    voltage_v: float | None = None
    failsafe_w: float | None = None
    # Phase (L1/L2/L3) each single-phase EVSE (by uid) is wired to.
    phase_assignment: dict[str, str] = {}
    updated_at: datetime = EPOCH
    # The site's arrival reserve; None: the configured default (`[planning] arrival_reserve`).
    arrival_reserve: ArrivalReserve | None = None
    arrival_reserve_w: float | None = None


class SignalKind(StrEnum):
    """What a signal says of a site, and its unit."""

    IMPORT_LIMIT = "import_limit"  # W
    PRICE = "price"  # per kWh
    CARBON = "carbon"  # g/kWh


class SignalPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One point of a site signal: `value` holds over [start, end)."""

    kind: SignalKind
    source: str
    start: datetime
    end: datetime
    value: float
    expires_at: datetime
    submitted_at: datetime

