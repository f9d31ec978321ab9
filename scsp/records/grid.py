"""What aggregators and DSOs give the service: API keys, site grid settings, signals."""

from __future__ import annotations

from enum import StrEnum

import msgspec


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
    created_at: int
    revoked_at: int | None = None



class SiteSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The grid connection of a site as configured through the API (None: use the configured default)."""

    site_id: str
    import_limit_w: float | None = None
    phase_limit_a: float | None = None
    voltage_v: float | None = None
    failsafe_w: float | None = None
    # Phase (L1/L2/L3) each single-phase EVSE (by uid) is wired to.
    phase_assignment: dict[str, str] = {}
    updated_at: int = 0


class SignalPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One point of a site signal: `value` holds over [start_ts, end_ts) (unix seconds)."""

    kind: str  # import_limit (W) | price (per kWh) | carbon (g/kWh)
    source: str
    start_ts: int
    end_ts: int
    value: float
    expires_ts: int
    submitted_at: int

