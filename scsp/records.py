"""Records the store hands out for charging data (not OCPI wire objects, not SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from scsp.ocpi.objects import CHARGING_PROFILE_CAPABLE, PHASES, Location, PowerType, Session


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def json_text(obj: Any) -> str:
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
