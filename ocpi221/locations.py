"""Locations module (mod_locations.asciidoc): Location, EVSE, Connector and their enums.

Objects we only carry through (tariffs, images, opening times) are `Any`; identifiers keep their
limits.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from ocpi221.types import CiString2, CiString3, CiString36, NonNegativeInt, OcpiObject, PositiveInt


class PowerType(StrEnum):
    """mod_locations.asciidoc "PowerType"."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


# The phases a PowerType energises. AC_2_PHASE_SPLIT is the split-phase system (two 120 V legs).
# DC has none of its own; on the grid side a DC charger is a balanced three-phase load, hence 3.
PHASES = {PowerType.AC_1_PHASE: 1, PowerType.AC_2_PHASE: 2, PowerType.AC_2_PHASE_SPLIT: 2,
          PowerType.AC_3_PHASE: 3, PowerType.DC: 3}


def current_paths(power_type: PowerType) -> int:
    """How many conductors a current (A) flows in: W = A x V x this (the AC phases; 1 for DC)."""
    return 1 if power_type == PowerType.DC else PHASES[power_type]


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
    max_voltage: PositiveInt
    max_amperage: NonNegativeInt
    last_updated: datetime
    max_electric_power: NonNegativeInt | None = None
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

