"""The rules every push shares: the owner is the URL, the body must match it, older news never wins."""

from __future__ import annotations

from datetime import UTC, datetime

from scsp import errors
from scsp.platform.transport import Caller


def owned(caller: Caller, country_code: str, party_id: str) -> None:
    # transport_and_format "Client Owned Object Push": if the URL's country_code/party_id is not one
    # of the client's roles the server "is allowed to respond with an HTTP 404". A Hub forwards the
    # pushes of the parties behind it (its 2.2.1 credentials name only itself).
    if not caller.party.speaks_for(country_code, party_id):
        raise errors.NotFound(f"{country_code}/{party_id} is not one of your credentials roles")


def newer(stored: datetime, pushed: datetime) -> bool:
    """Whether a pushed object's `last_updated` is not older than the stored one's (older news never wins)."""
    return pushed.astimezone(UTC) >= stored.astimezone(UTC)


def same(field: str, url_value: str, body_value: str) -> None:
    # CiStrings compare case-insensitively (types.asciidoc); a mismatch is 2001 (transport_and_format).
    if url_value.upper() != body_value.upper():
        raise errors.InvalidParameters(f"{field}: {body_value!r} in the body differs from {url_value!r} in the URL")

