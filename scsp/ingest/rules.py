"""The rules every push shares: the owner is the URL, the body must match it, older news never wins."""

from __future__ import annotations

from datetime import UTC, datetime

from scsp import errors
from scsp.platform.transport import Caller
from scsp.records.parties import Party
from scsp.store import Store


def may_hold(store: Store, party: Party, country_code: str, party_id: str) -> bool:
    """Whether objects of (country_code, party_id) may come through the connection `party`.

    A connection holds the identities it was invited or registered with (`Party.owns`). A Hub is
    the documented exception (its 2.2.1 credentials name only itself): it forwards the objects of
    the parties its ClientInfo lists (mod_hub_client_info), and of no one else.
    """
    if party.is_hub:
        return bool(store.sync.client_info(party.id, country_code, party_id))
    return party.owns(country_code, party_id)


def owned(store: Store, caller: Caller, country_code: str, party_id: str) -> None:
    # transport_and_format "Client Owned Object Push": if the URL's country_code/party_id is not one
    # of the client's roles the server "is allowed to respond with an HTTP 404".
    if caller.party.is_hub:
        # transport_and_format "Message Routing": the OCPI-from-* headers name the party that sent
        # the request; a Broadcast Push carries the Hub's own, the URL still the original owner's.
        sender = caller.routed_from
        hub = (caller.party.country_code.upper(), caller.party.party_id.upper())
        if sender is not None and sender not in ((country_code.upper(), party_id.upper()), hub):
            raise errors.NotFound(f"{country_code}/{party_id}: the routing headers name {sender[0]}/{sender[1]}; "
                                  "objects routed through a Hub belong to the party that sent them")
        if not may_hold(store, caller.party, country_code, party_id):
            raise errors.NotFound(f"{country_code}/{party_id} is not a party your ClientInfo lists")
        return
    if not caller.party.owns(country_code, party_id):
        raise errors.NotFound(f"{country_code}/{party_id} is not an identity of this connection")


def newer(stored: datetime, pushed: datetime) -> bool:
    """Whether a pushed object's `last_updated` is not older than the stored one's (older news never wins)."""
    return pushed.astimezone(UTC) >= stored.astimezone(UTC)


def same(field: str, url_value: str, body_value: str) -> None:
    # CiStrings compare case-insensitively (types.asciidoc); a mismatch is 2001 (transport_and_format).
    if url_value.upper() != body_value.upper():
        raise errors.InvalidParameters(f"{field}: {body_value!r} in the body differs from {url_value!r} in the URL")

