"""Injectable faults of the simulated CPO (README "Faults"): per EVSE, per location or simulator-wide.

A fault matches a request when it names the request's EVSE, or the location of that EVSE, or
neither (simulator-wide). `DOWNTIME` is simulator-wide only: the OCPI API answers HTTP 503 and no
push leaves the simulator.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated

import msgspec

from scsp import errors


class FaultKind(StrEnum):
    """What can go wrong."""

    TOO_OFTEN = (
        "TOO_OFTEN"  # sync TOO_OFTEN (always, or when `value` s have not passed since the last request)
    )
    REJECTED = "REJECTED"  # sync REJECTED
    NOT_SUPPORTED = "NOT_SUPPORTED"  # sync NOT_SUPPORTED
    UNKNOWN_SESSION = "UNKNOWN_SESSION"  # sync UNKNOWN_SESSION
    NO_CALLBACK = "NO_CALLBACK"  # sync ACCEPTED, the result is never posted
    SLOW_CALLBACK = "SLOW_CALLBACK"  # the charge point answers after `value` s
    RESULT_REJECTED = "RESULT_REJECTED"  # sync ACCEPTED, async result REJECTED, nothing applied
    APPLY_LOWER = "APPLY_LOWER"  # the charge point applies `value` x the asked limits
    DOWNTIME = "DOWNTIME"  # OCPI API down (503 / 3000), no pushes; ends after `value` s or on DELETE


# Defaults for faults that need a value and got none.
DEFAULT_SLOW_CALLBACK_S = 60.0
DEFAULT_APPLY_FRACTION = 0.5


class Fault(msgspec.Struct, kw_only=True, frozen=True):
    """One injected fault (control API body item)."""

    kind: FaultKind
    evse_uid: Annotated[str, msgspec.Meta(min_length=1, max_length=36)] | None = None
    location_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36)] | None = None
    # Seconds or a fraction depending on the kind; at most a year (larger would overflow datetimes).
    value: Annotated[float, msgspec.Meta(ge=0, le=31_536_000)] | None = None


class ActiveFault(msgspec.Struct, kw_only=True, frozen=True):
    """A fault as held: with when it was set and, for DOWNTIME with a value, when it ends."""

    kind: FaultKind
    evse_uid: str | None
    location_id: str | None
    value: float | None
    since: datetime
    until: datetime | None = None


def validate(fault: Fault) -> None:
    """Reject faults that make no sense (InvalidParameters, 2001 / HTTP 422 on the control API)."""
    if fault.evse_uid is not None and fault.location_id is not None:
        raise errors.InvalidParameters("faults: give evse_uid or location_id, not both")
    if fault.kind == FaultKind.DOWNTIME and (fault.evse_uid or fault.location_id):
        raise errors.InvalidParameters(
            "faults: DOWNTIME concerns the whole simulator (no evse_uid/location_id)"
        )
    if fault.kind == FaultKind.APPLY_LOWER and fault.value is not None and fault.value > 1:
        raise errors.InvalidParameters("faults: APPLY_LOWER value is a fraction in [0, 1]")


class FaultBook:
    """The faults in force. Not thread-safe: the runtime's lock guards it."""

    def __init__(self) -> None:
        self._faults: list[ActiveFault] = []

    def replace(self, faults: list[Fault], now: datetime) -> list[ActiveFault]:
        """Replace every fault with `faults` (validated first: nothing changes on an invalid list)."""
        for fault in faults:
            validate(fault)
        self._faults = [
            ActiveFault(
                kind=f.kind,
                evse_uid=f.evse_uid,
                location_id=f.location_id,
                value=f.value,
                since=now,
                until=now + timedelta(seconds=f.value)
                if f.kind == FaultKind.DOWNTIME and f.value is not None
                else None,
            )
            for f in faults
        ]
        return self.current(now)

    def clear(self) -> None:
        """Remove every fault."""
        self._faults = []

    def current(self, now: datetime) -> list[ActiveFault]:
        """The faults in force at `now` (an expired DOWNTIME is dropped)."""
        self._faults = [f for f in self._faults if f.until is None or f.until > now]
        return list(self._faults)

    def match(self, kind: FaultKind, location_id: str, evse_uid: str, now: datetime) -> ActiveFault | None:
        """The most specific fault of this kind for an EVSE (EVSE, then location, then simulator-wide)."""
        candidates = [f for f in self.current(now) if f.kind == kind]
        for f in candidates:
            if f.evse_uid == evse_uid:
                return f
        for f in candidates:
            if f.location_id == location_id and f.evse_uid is None:
                return f
        for f in candidates:
            if f.location_id is None and f.evse_uid is None:
                return f
        return None

    def down(self, now: datetime) -> bool:
        """True while a DOWNTIME fault is in force."""
        return any(f.kind == FaultKind.DOWNTIME for f in self.current(now))
