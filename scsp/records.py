"""Records the store hands out for charging data (not OCPI wire objects, not SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile
from ocpi221.locations import CHARGING_PROFILE_CAPABLE, PHASES, Location, PowerType
from ocpi221.sessions import Session


def unix(moment: datetime | None) -> int | None:
    """Unix seconds of an aware datetime (None stays None)."""
    return None if moment is None else int(moment.timestamp())


def json_text(obj: Any) -> str:
    """JSON text of any msgspec-encodable value."""
    return msgspec.json.encode(obj).decode()


class StoredSession(msgspec.Struct, frozen=True, kw_only=True):
    """A session as stored, with the connection it came through."""

    party: int
    session: Session
    received_at: int


class StoredLocation(msgspec.Struct, frozen=True, kw_only=True):
    """A location as stored, with the connection it came through."""

    party: int
    location: Location


class EvseFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the planner needs of an EVSE (derived from its Location)."""

    party: int
    country_code: str
    party_id: str
    location_id: str
    uid: str
    status: str
    capable: bool
    power_type: str
    phases: int
    voltage_v: float
    max_amperage_a: float
    max_power_w: float


def evse_facts(party: int, location: Location) -> list[EvseFacts]:
    """Derive the EVSE facts of a location: phases from `power_type`, limits from the best connector.

    ocpi-notes §6 (our inference): per-phase A cap = max_amperage; AC W ≈ V × A × phases, capped by
    max_electric_power when present; DC W = max_electric_power or V × A.
    """
    out: list[EvseFacts] = []
    for evse in location.evses or []:
        if not evse.connectors:
            continue
        best = None
        for connector in evse.connectors:
            phases = PHASES[connector.power_type]
            if connector.power_type == PowerType.DC:
                power = float(connector.max_electric_power or connector.max_voltage * connector.max_amperage)
            else:
                power = float(connector.max_voltage * connector.max_amperage * phases)
                if connector.max_electric_power:
                    power = min(power, float(connector.max_electric_power))
            if best is None or power > best[0]:
                best = (power, connector, phases)
        assert best is not None
        power, connector, phases = best
        out.append(EvseFacts(
            party=party, country_code=location.country_code.upper(), party_id=location.party_id.upper(),
            location_id=location.id, uid=evse.uid, status=evse.status,
            capable=CHARGING_PROFILE_CAPABLE in (evse.capabilities or []), power_type=connector.power_type,
            phases=phases, voltage_v=float(connector.max_voltage), max_amperage_a=float(connector.max_amperage),
            max_power_w=power))
    return out


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


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """A driver's preferences for one session (OCPI ChargingPreferences plus who said it)."""

    country_code: str
    party_id: str
    session_id: str
    profile_type: str
    departure_ts: int | None = None
    energy_kwh: float | None = None
    discharge_allowed: bool = False
    source: str = "api"
    updated_at: int = 0


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


class SessionKey(msgspec.Struct, frozen=True, kw_only=True):
    """A session's identity: the connection it came through and the CPO's ids."""

    party: int
    country_code: str
    party_id: str
    session_id: str


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """One ChargingProfiles request we made (recorded before it was sent)."""

    id: str
    kind: str  # set | get | clear
    party: int
    country_code: str
    party_id: str
    session_id: str
    state: str  # pending | awaiting_result | refused | completed | failed | unknown
    created_at: int
    plan: int | None = None
    profile: ChargingProfile | None = None
    response: str | None = None  # ChargingProfileResponseType
    result: str | None = None  # ChargingProfileResultType
    error: str | None = None
    responded_at: int | None = None
    timeout_at: int | None = None
    result_at: int | None = None


class SessionControl(msgspec.Struct, frozen=True, kw_only=True):
    """What we know about controlling one session."""

    party: int
    country_code: str
    party_id: str
    session_id: str
    controllable: bool = True
    reason: str | None = None
    sent_profile: ChargingProfile | None = None
    sent_at: int | None = None
    accepted_profile: ChargingProfile | None = None
    accepted_at: int | None = None
    backoff_until: int | None = None
    too_often: int = 0


class ActiveProfileRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An ActiveChargingProfile we received (push or GET result) and its compliance with the plan."""

    id: int
    party: int
    country_code: str
    party_id: str
    session_id: str
    source: str  # push | get
    received_at: int
    profile: ActiveChargingProfile
    plan: int | None = None
    verdict: str | None = None
    worst_excess_w: float | None = None
    compliance: float | None = None
    detail: dict[str, Any] = {}


class SyncState(msgspec.Struct, frozen=True, kw_only=True):
    """Per party: last pulls, reachability, pending resync."""

    party: int
    sessions_pulled_at: int | None = None
    locations_pulled_at: int | None = None
    unreachable_since: int | None = None
    needs_resync: bool = True


def hard_max_w(info: dict[str, Any], default: Any = 1e9) -> Any:
    """The most a session's charge point may let it draw (W), from a plan's session detail.

    Plans before the EVSE maximum was recorded apart from the learned vehicle maximum carry only `max_w`.
    """
    return info.get("evse_max_w", info.get("max_w", default))
