"""What the service asked CPOs and what they answered: commands, session control, active profiles."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile
from profiles import ComplianceVerdict
from scsp.records.sessions import SessionKey


class CommandKind(StrEnum):
    """The three ChargingProfiles requests (mod_charging_profiles.asciidoc Receiver interface)."""

    SET = "set"  # PUT SetChargingProfile
    GET = "get"  # GET ActiveChargingProfile
    CLEAR = "clear"  # DELETE


class CommandState(StrEnum):
    """Where a command stands."""

    PENDING = "pending"  # recorded, the request is on its way
    AWAITING_RESULT = "awaiting_result"  # the CPO answered ACCEPTED; the charge point's result is due
    REFUSED = "refused"  # the CPO answered something else than ACCEPTED
    COMPLETED = "completed"  # the result came
    FAILED = "failed"  # the request itself failed (transport, HTTP or OCPI error)
    UNKNOWN = "unknown"  # the timeout passed without a result, or the service restarted meanwhile


# States in which a command is still in flight (at most one set/clear and one get per session).
IN_FLIGHT = (CommandState.PENDING, CommandState.AWAITING_RESULT)


class NotSteered(StrEnum):
    """Why a session is planned as fixed load instead of being steered (the value is what people read)."""

    EVSE_NOT_CAPABLE = "EVSE is not CHARGING_PROFILE_CAPABLE"
    CPO_NOT_SUPPORTED = "CPO answered NOT_SUPPORTED"
    CPO_REJECTED = "CPO answered REJECTED"
    CHARGE_POINT_REJECTED = "the charge point rejected the profile"
    CPO_REFUSED = "CPO refused profiles"  # a refusal recorded without its kind
    CPO_UNREACHABLE = "CPO unreachable"
    CPO_GONE = "CPO connection gone (unregistered or refusing our token)"
    DISPATCH_DISABLED = "dispatch disabled"
    RELEASED = "released by the operator"


class SessionEnd(StrEnum):
    """Why a session the CPO still lists as ACTIVE is over for planning (the value is what people read)."""

    UNKNOWN_SESSION = "the CPO answered UNKNOWN_SESSION"
    ABSENT = "absent from the CPO's own list of sessions"


class ProfileSource(StrEnum):
    """How an ActiveChargingProfile reached us."""

    PUSH = "push"  # the CPO's PUT to our Sender interface
    GET = "get"  # the result of our GET


class Command(msgspec.Struct, frozen=True, kw_only=True):
    """One ChargingProfiles request we made (recorded before it was sent)."""

    id: str
    kind: CommandKind
    key: SessionKey
    state: CommandState
    created_at: datetime
    plan: int | None = None
    profile: ChargingProfile | None = None
    response: str | None = None  # ChargingProfileResponseType, as the CPO answered
    result: str | None = None  # ChargingProfileResultType, as the charge point answered
    error: str | None = None
    responded_at: datetime | None = None
    timeout_at: datetime | None = None
    result_at: datetime | None = None
    # Why it was sent (`profiles.selection.SendReason`, a readback, an operator's release).
    reason: str | None = None
    # The site of the session when the command was made (None: the session's Location was unknown).
    site_id: str | None = None


class CommandReason(StrEnum):
    """Why a GET or DELETE was sent (a SET's reason is the selection's `SendReason`)."""

    READBACK = "readback: what the charge point applies"
    RECONCILE = "no result before the timeout: what does the charge point apply?"
    RELEASE = "released by the operator"


class SessionControl(msgspec.Struct, frozen=True, kw_only=True):
    """What we know about controlling one session."""

    key: SessionKey
    controllable: bool = True
    reason: NotSteered | None = None
    sent_profile: ChargingProfile | None = None
    sent_at: datetime | None = None
    accepted_profile: ChargingProfile | None = None
    accepted_at: datetime | None = None
    backoff_until: datetime | None = None
    too_often: int = 0
    # The CPO's evidence that the session is over although it never sent COMPLETED: not planned
    # unless the CPO updates it after `ended_at`.
    ended_at: datetime | None = None
    ended_reason: SessionEnd | None = None


class ControlUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """A change to a session's control record that goes with a CPO's answer (UNSET: unchanged)."""

    controllable: bool | msgspec.UnsetType = msgspec.UNSET
    reason: NotSteered | None | msgspec.UnsetType = msgspec.UNSET
    accepted_profile: ChargingProfile | None | msgspec.UnsetType = msgspec.UNSET
    accepted_at: datetime | None | msgspec.UnsetType = msgspec.UNSET
    backoff_until: datetime | None | msgspec.UnsetType = msgspec.UNSET
    too_often: int | msgspec.UnsetType = msgspec.UNSET


class ComplianceDetail(msgspec.Struct, frozen=True, kw_only=True):
    """How an ActiveChargingProfile compares with the plan, slot by slot (`profiles.Compliance`)."""

    first_slot: int = 0
    applied_w: list[float] = []
    excess_w: list[float] = []
    shows_evse_maximum: bool = False


class ActiveProfileRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An ActiveChargingProfile we received (push or GET result) and its compliance with the plan."""

    id: int
    key: SessionKey
    source: ProfileSource
    received_at: datetime
    profile: ActiveChargingProfile
    plan: int | None = None
    verdict: ComplianceVerdict | None = None
    worst_excess_w: float | None = None
    compliance: float | None = None
    detail: ComplianceDetail = ComplianceDetail()
