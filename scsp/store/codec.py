"""How records become columns and back: unix seconds, JSON text, session keys (only `scsp.store` converts)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, overload

import msgspec

from ocpi221.chargingprofiles import ChargingProfile
from scsp.records.sessions import SessionKey


@overload
def unix(moment: datetime) -> int: ...


@overload
def unix(moment: None) -> None: ...


@overload
def unix(moment: datetime | None) -> int | None: ...


def unix(moment: datetime | None) -> int | None:
    """Unix seconds of an aware datetime (None stays None): how times are stored."""
    return None if moment is None else int(moment.timestamp())


@overload
def moment(ts: int) -> datetime: ...


@overload
def moment(ts: None) -> None: ...


@overload
def moment(ts: int | None) -> datetime | None: ...


def moment(ts: int | None) -> datetime | None:
    """The aware UTC datetime of stored unix seconds (None stays None)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def json_text(obj: Any) -> str:
    """JSON text of any msgspec-encodable value."""
    return msgspec.json.encode(obj).decode()


def checked_json_text(obj: msgspec.Struct) -> str:
    """JSON text of a Struct, proven readable first: it is decoded back strictly as its own type.

    A row that could not be read back must be impossible to store (a NaN is written as `null`,
    which then fails every read of the row, and with it every list and plan that reads it). Raises
    `msgspec.ValidationError` naming the field; nothing is written.
    """
    text = msgspec.json.encode(obj)
    msgspec.json.decode(text, type=type(obj))
    return text.decode()


def require_finite(**values: float | None) -> None:
    """Refuse to write a number SQLite would keep as NULL (NaN) or that no reader expects (+-inf).

    Raises `msgspec.ValidationError` naming the field, as a strict decode would; nothing is written.
    """
    for name, value in values.items():
        if value is not None and not math.isfinite(value):
            raise msgspec.ValidationError(f"Expected a finite number, got {value!r} - at `$.{name}`")


_decode_profile = msgspec.json.Decoder(ChargingProfile).decode
decode_floats = msgspec.json.Decoder(list[float]).decode
decode_dict = msgspec.json.Decoder(dict[str, Any]).decode

# The columns that key a session's rows in session_control, commands, plan_sessions and active_profiles.
KEY_SQL = "party = ? AND country_code = ? AND party_id = ? AND session_id = ?"


def key_args(key: SessionKey) -> list[Any]:
    """The values of `KEY_SQL` for a session."""
    return [key.party, key.country_code, key.party_id, key.session_id]


def key_of(row: dict[str, Any]) -> SessionKey:
    """The session key of a row with the `KEY_SQL` columns."""
    return SessionKey(party=row["party"], country_code=row["country_code"], party_id=row["party_id"],
                      session_id=row["session_id"])


def profile_of(text: str | None) -> ChargingProfile | None:
    """A stored ChargingProfile (None stays None)."""
    return _decode_profile(text) if text else None
