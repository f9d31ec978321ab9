"""What the service asked CPOs and what they answered: commands, session control, active profiles."""

from __future__ import annotations

from typing import Any

import msgspec

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile


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

