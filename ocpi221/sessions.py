"""Sessions module (mod_sessions.asciidoc), with the CDR types a Session carries (mod_cdrs.asciidoc).

Reading is tolerant: unknown fields are ignored and free-text lengths are not enforced (several
were lengthened in the bugfix branch, ocpi-notes §10.22). Identifiers keep their limits.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from msgspec import UNSET, UnsetType

from ocpi221.types import CiString2, CiString3, CiString36, Finite, NonNegative, OcpiObject, Price


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
    volume: Finite


class ChargingPeriod(OcpiObject, kw_only=True):
    """mod_cdrs "ChargingPeriod": "A period ends when the next period starts"."""

    start_date_time: datetime
    dimensions: list[CdrDimension]
    tariff_id: str | None = None


class CdrToken(OcpiObject, kw_only=True):
    """mod_cdrs "CdrToken" (may be placeholder data towards an SCSP: ocpi-notes §10.24).

    `country_code` and `party_id` are required by the spec; some peers leave them out of Sessions
    they serve. Tolerant reader: read without them (`ingest.sessions.owned_token` takes them from the
    session's owner), never written without them.
    """

    uid: str
    type: str
    contract_id: str
    country_code: str | None = None
    party_id: str | None = None


class Session(OcpiObject, kw_only=True):
    """mod_sessions.asciidoc "Session"."""

    country_code: CiString2
    party_id: CiString3
    id: CiString36
    start_date_time: datetime
    kwh: NonNegative
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
    kwh: NonNegative | UnsetType = UNSET
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
    energy_need: NonNegative | None = None
    discharge_allowed: bool | None = None

