"""OCPI 2.2.1 objects of the functional modules we use: Sessions, Locations, HubClientInfo, ChargingProfiles.

Names are the spec's, verbatim. Reading is tolerant: unknown fields are ignored, free-text lengths
are not enforced (several were lengthened in the bugfix branch, ocpi-notes §10.22), and objects we
only carry through (tariffs, images, opening times) are `Any`. Identifiers keep their limits.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from profiles.ocpi import ActiveChargingProfile, ChargingProfile, OcpiObject
from scsp.ocpi.types import CiString2, CiString3, CiString36, Role, Url

# -- Sessions (mod_sessions.asciidoc) ------------------------------------------------------------


class SessionStatus(StrEnum):
    """mod_sessions.asciidoc "SessionStatus"."""

    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    INVALID = "INVALID"
    PENDING = "PENDING"
    RESERVATION = "RESERVATION"


class ProfileType(StrEnum):
    """mod_sessions.asciidoc "ProfileType"."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class CdrDimension(OcpiObject, kw_only=True):
    """mod_cdrs "CdrDimension": a type (ENERGY, POWER, ...) and its volume."""

    type: str
    volume: float


class ChargingPeriod(OcpiObject, kw_only=True):
    """mod_cdrs "ChargingPeriod": "A period ends when the next period starts"."""

    start_date_time: datetime
    dimensions: list[CdrDimension]
    tariff_id: str | None = None


class CdrToken(OcpiObject, kw_only=True):
    """mod_cdrs "CdrToken" (may be placeholder data towards an SCSP: ocpi-notes §10.24)."""

    country_code: str
    party_id: str
    uid: str
    type: str
    contract_id: str


class Price(OcpiObject, kw_only=True):
    """types "Price"."""

    excl_vat: float
    incl_vat: float | None = None


class Session(OcpiObject, kw_only=True):
    """mod_sessions.asciidoc "Session"."""

    country_code: CiString2
    party_id: CiString3
    id: CiString36
    start_date_time: datetime
    kwh: float
    cdr_token: CdrToken
    auth_method: str
    location_id: CiString36
    evse_uid: CiString36
    connector_id: CiString36
    currency: str
    status: SessionStatus
    last_updated: datetime
    end_date_time: datetime | None = None
    authorization_reference: str | None = None
    meter_id: str | None = None
    charging_periods: list[ChargingPeriod] | None = None
    total_cost: Price | None = None


class SessionPatch(OcpiObject, kw_only=True):
    """A PATCH body for a Session: only the changed fields, `last_updated` required (transport_and_format)."""

    last_updated: datetime
    country_code: CiString2 | UnsetType = UNSET
    party_id: CiString3 | UnsetType = UNSET
    id: CiString36 | UnsetType = UNSET
    start_date_time: datetime | UnsetType = UNSET
    end_date_time: datetime | None | UnsetType = UNSET
    kwh: float | UnsetType = UNSET
    cdr_token: CdrToken | UnsetType = UNSET
    auth_method: str | UnsetType = UNSET
    authorization_reference: str | None | UnsetType = UNSET
    location_id: CiString36 | UnsetType = UNSET
    evse_uid: CiString36 | UnsetType = UNSET
    connector_id: CiString36 | UnsetType = UNSET
    meter_id: str | None | UnsetType = UNSET
    currency: str | UnsetType = UNSET
    charging_periods: list[ChargingPeriod] | None | UnsetType = UNSET
    total_cost: Price | None | UnsetType = UNSET
    status: SessionStatus | UnsetType = UNSET


class ChargingPreferences(OcpiObject, kw_only=True):
    """mod_sessions.asciidoc "ChargingPreferences"."""

    profile_type: ProfileType
    departure_time: datetime | None = None
    energy_need: float | None = None
    discharge_allowed: bool | None = None


# -- Locations (mod_locations.asciidoc) ----------------------------------------------------------


class PowerType(StrEnum):
    """mod_locations.asciidoc "PowerType"."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


PHASES = {PowerType.AC_1_PHASE: 1, PowerType.AC_2_PHASE: 2, PowerType.AC_2_PHASE_SPLIT: 2,
          PowerType.AC_3_PHASE: 3, PowerType.DC: 3}


class EvseStatus(StrEnum):
    """mod_locations.asciidoc "Status"."""

    AVAILABLE = "AVAILABLE"
    BLOCKED = "BLOCKED"
    CHARGING = "CHARGING"
    INOPERATIVE = "INOPERATIVE"
    OUTOFORDER = "OUTOFORDER"
    PLANNED = "PLANNED"
    REMOVED = "REMOVED"
    RESERVED = "RESERVED"
    UNKNOWN = "UNKNOWN"


CHARGING_PROFILE_CAPABLE = "CHARGING_PROFILE_CAPABLE"


class GeoLocation(OcpiObject, kw_only=True):
    """mod_locations "GeoLocation" (decimal degrees as strings)."""

    latitude: str
    longitude: str


class Connector(OcpiObject, kw_only=True):
    """mod_locations.asciidoc "Connector"."""

    id: CiString36
    standard: str
    format: str
    power_type: PowerType
    max_voltage: int
    max_amperage: int
    last_updated: datetime
    max_electric_power: int | None = None
    tariff_ids: list[str] | None = None
    terms_and_conditions: str | None = None


class EVSE(OcpiObject, kw_only=True):
    """mod_locations.asciidoc "EVSE"."""

    uid: CiString36
    status: EvseStatus
    connectors: list[Connector]
    last_updated: datetime
    evse_id: str | None = None
    status_schedule: list[Any] | None = None
    capabilities: list[str] | None = None  # str: an unknown capability must not reject the EVSE
    floor_level: str | None = None
    coordinates: GeoLocation | None = None
    physical_reference: str | None = None
    directions: list[Any] | None = None
    parking_restrictions: list[str] | None = None
    images: list[Any] | None = None


class Location(OcpiObject, kw_only=True):
    """mod_locations.asciidoc "Location" (fields we do not use are carried as they came)."""

    country_code: CiString2
    party_id: CiString3
    id: CiString36
    publish: bool
    address: str
    city: str
    country: str
    coordinates: GeoLocation
    time_zone: str
    last_updated: datetime
    name: str | None = None
    postal_code: str | None = None
    state: str | None = None
    evses: list[EVSE] | None = None
    publish_allowed_to: list[Any] | None = None
    related_locations: list[Any] | None = None
    parking_type: str | None = None
    directions: list[Any] | None = None
    operator: Any = None
    suboperator: Any = None
    owner: Any = None
    facilities: list[str] | None = None
    opening_times: Any = None
    charging_when_closed: bool | None = None
    images: list[Any] | None = None
    energy_mix: Any = None


# -- HubClientInfo (mod_hub_client_info.asciidoc) ------------------------------------------------


class ConnectionStatusType(StrEnum):
    """mod_hub_client_info.asciidoc "ConnectionStatus"."""

    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class ClientInfo(OcpiObject, kw_only=True):
    """mod_hub_client_info.asciidoc "ClientInfo"."""

    party_id: CiString3
    country_code: CiString2
    role: Role
    status: ConnectionStatusType
    last_updated: datetime


# -- ChargingProfiles (mod_charging_profiles.asciidoc) -------------------------------------------


class ChargingProfileResponseType(StrEnum):
    """The CPO's synchronous answer."""

    ACCEPTED = "ACCEPTED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TOO_OFTEN = "TOO_OFTEN"
    UNKNOWN_SESSION = "UNKNOWN_SESSION"


class ChargingProfileResultType(StrEnum):
    """The charge point's asynchronous result."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"


class ChargingProfileResponse(OcpiObject, kw_only=True):
    """Synchronous `data` of GET/PUT/DELETE on the CPO's Receiver interface."""

    result: ChargingProfileResponseType
    timeout: int


class SetChargingProfile(OcpiObject, kw_only=True):
    """PUT body to the CPO: the profile and where to post the result."""

    charging_profile: ChargingProfile
    response_url: Url


class ChargingProfileResult(OcpiObject, kw_only=True):
    """Async result of a PUT (SetChargingProfile)."""

    result: ChargingProfileResultType


class ClearProfileResult(OcpiObject, kw_only=True):
    """Async result of a DELETE."""

    result: ChargingProfileResultType


class ActiveChargingProfileResult(OcpiObject, kw_only=True):
    """Async result of a GET: the profile "if the result field is set to: ACCEPTED"."""

    result: ChargingProfileResultType
    profile: ActiveChargingProfile | None = None


def to_dict(obj: msgspec.Struct) -> dict[str, Any]:
    """A Struct as a JSON-ready dict (DateTimes as `Z` strings, omitted defaults left out)."""
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(obj))
    return out
