"""Charging data as the service keeps it: sessions, locations, EVSE facts, drivers' preferences."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from ocpi221.locations import CHARGING_PROFILE_CAPABLE, PHASES, Location, PowerType
from ocpi221.sessions import Session, SessionStatus

# The zero of stored times: what a record shows that was stored without one.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StoredSession(msgspec.Struct, frozen=True, kw_only=True):
    """A session as stored, with the connection it came through."""

    party: int
    session: Session
    received_at: datetime
    # When the CPO-reported energy (`kwh`) last grew (or the session was first received).
    kwh_changed_at: datetime | None = None

    @property
    def key(self) -> SessionKey:
        """The session's key: its connection and the CPO's ids (country code and party id upper case)."""
        s = self.session
        return SessionKey(party=self.party, country_code=s.country_code.upper(), party_id=s.party_id.upper(),
                          session_id=s.id)

    @property
    def site(self) -> str:
        """The session's site."""
        s = self.session
        return site_id(s.country_code, s.party_id, s.location_id)


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
    # The EVSE's own last_updated (mod_locations): when its status was last set.
    last_updated: datetime | None = None


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
            max_power_w=power, last_updated=evse.last_updated))
    return out


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    """A driver's preferences for one session (OCPI ChargingPreferences plus who said it)."""

    country_code: str
    party_id: str
    session_id: str
    profile_type: str
    departure: datetime | None = None
    energy_kwh: float | None = None
    discharge_allowed: bool = False
    source: str = "api"
    updated_at: datetime = EPOCH


class SessionKey(msgspec.Struct, frozen=True, kw_only=True):
    """A session's identity: the connection it came through and the CPO's ids."""

    party: int
    country_code: str
    party_id: str
    session_id: str

    def __str__(self) -> str:
        """`party/CC/PID/session_id`, for logs."""
        return f"{self.party}/{self.country_code}/{self.party_id}/{self.session_id}"


# Sessions we plan; the rest (PENDING, RESERVATION, COMPLETED, INVALID) are not charging under us.
PLANNED_STATUSES = (SessionStatus.ACTIVE,)


def site_id(country_code: str, party_id: str, location_id: str) -> str:
    """The site of a location: one site per OCPI Location, named `CC-PID-location_id`."""
    return f"{country_code.upper()}-{party_id.upper()}-{location_id}"

