"""ChargingProfiles module (mod_charging_profiles.asciidoc): profiles, requests, responses, results.

Reading is tolerant (limits with more decimals are accepted); writing is strict, see
`spec_violations`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from ocpi221.types import NonNegative, NonNegativeInt, OcpiObject, Url


class ChargingRateUnit(StrEnum):
    """mod_charging_profiles.asciidoc "ChargingRateUnit"."""

    # "Watts (power). This is the TOTAL allowed charging power." ocpi-notes §10.1: not for AC.
    W = "W"
    # "The amount of Ampere per phase, not the sum of all phases."
    A = "A"


class ChargingProfilePeriod(OcpiObject, kw_only=True):
    """mod_charging_profiles.asciidoc "ChargingProfilePeriod"."""

    start_period: NonNegativeInt
    """Start of the period, in seconds from the start of profile; also the stop of the previous."""
    limit: NonNegative
    """Rate limit in the profile's `charging_rate_unit`; at most one decimal (e.g. 8.1)."""


class ChargingProfile(OcpiObject, kw_only=True):
    """mod_charging_profiles.asciidoc "ChargingProfile"."""

    start_date_time: datetime | None = None
    """Starting point of an absolute profile; absent means relative to the start of charging."""
    duration: NonNegativeInt | None = None
    """Seconds; absent means the last period lasts indefinitely (or to the end of the transaction)."""
    charging_rate_unit: ChargingRateUnit
    min_charging_rate: NonNegative | None = None
    """Minimum rate the EV supports, in `charging_rate_unit`; at most one decimal."""
    charging_profile_period: list[ChargingProfilePeriod] = []
    """Card. `*`: may be absent or empty on the wire (ocpi-notes §10.10); we always send >= 1."""


class ActiveChargingProfile(OcpiObject, kw_only=True):
    """mod_charging_profiles.asciidoc "ActiveChargingProfile": the profile as the EVSE computed it."""

    start_date_time: datetime
    """When the Charge Point calculated it. "All time measurements within the profile are relative
    to this timestamp." """
    charging_profile: ChargingProfile



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



# types.asciidoc "DateTime" in the form we send: whole seconds and "Z" (20 characters <= 25).
_SENT_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


# A JSON number with at most one digit after the point ("Accepts at most one digit fraction").
_ONE_DECIMAL = re.compile(r"^-?\d+(\.\d)?$")


_PROFILE_KEYS = {
    "start_date_time",
    "duration",
    "charging_rate_unit",
    "min_charging_rate",
    "charging_profile_period",
}


def _literal_json(profile: ChargingProfile) -> dict[str, Any]:
    """Encode and re-parse with every number kept as its literal text."""
    # The stdlib parser hands out the literal text of each number, which is what the peer sees.
    parsed: dict[str, Any] = json.loads(msgspec.json.encode(profile), parse_float=str)
    return parsed


def spec_violations(profile: ChargingProfile) -> list[str]:
    """List how an outgoing ChargingProfile breaks the rules we write by (empty when valid).

    Checked on the encoded JSON, as the peer receives it: known keys only, `charging_rate_unit` a
    ChargingRateUnit value, `start_date_time` UTC with `Z` in whole seconds (string(25)),
    `duration` a non-negative int when present, at least one period (ocpi-notes §10.10), the first
    `start_period` 0 and strictly increasing ints, every `limit` and `min_charging_rate` a finite
    non-negative number with at most one decimal ("Accepts at most one digit fraction").

    Args:
        profile: the profile we are about to send.

    Returns:
        Human-readable violations; an empty list means the profile is fit to send.
    """
    problems: list[str] = []
    for value in (p.limit for p in profile.charging_profile_period):
        if not math.isfinite(value):
            return [f"limit {value!r} is not a finite number"]
    if profile.min_charging_rate is not None and not math.isfinite(profile.min_charging_rate):
        return [f"min_charging_rate {profile.min_charging_rate!r} is not a finite number"]
    wire = _literal_json(profile)
    unknown = set(wire) - _PROFILE_KEYS
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    if wire.get("charging_rate_unit") not in {u.value for u in ChargingRateUnit}:
        problems.append(f"charging_rate_unit {wire.get('charging_rate_unit')!r} is not A or W")
    start = wire.get("start_date_time")
    if start is not None and not (isinstance(start, str) and _SENT_DATETIME.match(start)):
        problems.append(f"start_date_time {start!r} is not UTC 'YYYY-MM-DDThh:mm:ssZ'")
    duration = wire.get("duration")
    if duration is not None and not (isinstance(duration, int) and duration >= 0):
        problems.append(f"duration {duration!r} is not a non-negative int")
    rate = wire.get("min_charging_rate")
    if rate is not None and not (isinstance(rate, str) and _ONE_DECIMAL.match(rate) and float(rate) >= 0):
        problems.append(f"min_charging_rate {rate} is not a non-negative number with <= 1 decimal")
    periods = wire.get("charging_profile_period", [])
    if not periods:
        problems.append("no charging_profile_period")
    previous: int | None = None
    for index, period in enumerate(periods):
        start_period, limit = period.get("start_period"), period.get("limit")
        if not isinstance(start_period, int):
            problems.append(f"period {index}: start_period {start_period!r} is not an int")
        elif previous is None and start_period != 0:
            problems.append(f"period {index}: the first start_period is {start_period}, not 0")
        elif previous is not None and start_period <= previous:
            problems.append(f"period {index}: start_period {start_period} does not increase")
        if isinstance(start_period, int):
            previous = start_period
        # A limit written as an int literal ("16") is a JSON number too, and has no fraction.
        text = str(limit) if isinstance(limit, int) else limit
        if not (isinstance(text, str) and _ONE_DECIMAL.match(text) and float(text) >= 0):
            problems.append(f"period {index}: limit {text} is not a non-negative number with <= 1 decimal")
        if set(period) - {"start_period", "limit"}:
            problems.append(f"period {index}: unknown keys {sorted(set(period) - {'start_period', 'limit'})}")
    return problems

