"""How records become columns: unix seconds and JSON text (only `scsp.store` converts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from ocpi221.chargingprofiles import ChargingProfile
from scsp.records.sessions import SessionKey


def unix(moment: datetime | None) -> int | None:
    """Unix seconds of an aware datetime (None stays None)."""
    return None if moment is None else int(moment.timestamp())


def json_text(obj: Any) -> str:
    """JSON text of any msgspec-encodable value."""
    return msgspec.json.encode(obj).decode()



_decode_profile = msgspec.json.Decoder(ChargingProfile).decode
decode_floats = msgspec.json.Decoder(list[float]).decode
decode_dict = msgspec.json.Decoder(dict[str, Any]).decode

# The columns that key a session's rows in session_control, commands, plan_sessions and active_profiles.
KEY_SQL = "party = ? AND country_code = ? AND party_id = ? AND session_id = ?"


def key_args(key: SessionKey) -> list[Any]:
    """The values of `KEY_SQL` for a session."""
    return [key.party, key.country_code, key.party_id, key.session_id]


def profile_of(text: str | None) -> ChargingProfile | None:
    """A stored ChargingProfile (None stays None)."""
    return _decode_profile(text) if text else None
