"""Connected platforms as the service keeps them: the party, its handshake state, its sync state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec

from ocpi221.credentials import CredentialsRole
from ocpi221.hubclientinfo import ConnectionStatus
from ocpi221.versions import Endpoint


class PartyStatus(StrEnum):
    """Where a connected platform stands in the credentials handshake."""

    INVITED = "INVITED"  # we issued token A; the peer has not registered yet
    PENDING = "PENDING"  # we are registering with the peer (our POST is in flight)
    REGISTERED = "REGISTERED"
    UNREGISTERED = "UNREGISTERED"


class TokenKind(StrEnum):
    """Tokens we issue: A (registration, single use) or C (the peer's token for calling us)."""

    A = "A"
    C = "C"


class Party(msgspec.Struct, kw_only=True, frozen=True):
    """A connected OCPI platform (CPO, Hub, eMSP) as we store it."""

    id: int
    role: str
    country_code: str
    party_id: str
    status: PartyStatus
    business_name: str | None = None
    roles: list[CredentialsRole] = []
    versions_url: str | None = None
    version: str | None = None
    version_url: str | None = None
    endpoints: list[Endpoint] = []
    # The token the peer gave us to call it (stored as given: we need it to call out).
    token_out: str | None = None
    # Whether the peer wants `Token base64(token)` (the 2.2.1 rule) or the raw token.
    token_base64: bool = True
    connection_status: ConnectionStatus = ConnectionStatus.CONNECTED
    # The identities (`CC-PID`, upper case) this connection may act for besides its own: those it
    # was invited or registered with, or the operator added. Its CredentialsRoles are only a claim.
    identities: list[str] = []
    created_at: datetime
    updated_at: datetime

    @property
    def handle(self) -> str:
        """Human handle used by the CLI: `CC-PID` (e.g. `NL-SIM`)."""
        return f"{self.country_code}-{self.party_id}"

    def endpoint(self, identifier: str, role: str | None = None) -> str | None:
        """URL of the peer's module endpoint, preferring the given interface role."""
        matches = [e for e in self.endpoints if e.identifier == identifier]
        if role is not None:
            preferred = [e for e in matches if e.role == role]
            matches = preferred or matches
        return matches[0].url if matches else None

    def owns(self, country_code: str, party_id: str) -> bool:
        """True when (country_code, party_id) is an identity granted to this connection (case-insensitive).

        Granted means invited, registered with, or added by the operator: a CredentialsRole a peer
        merely lists in a credentials PUT grants nothing (another connection may hold it).
        """
        handle = f"{country_code.upper()}-{party_id.upper()}"
        return handle == self.handle.upper() or handle in self.identities

    @property
    def is_hub(self) -> bool:
        """True for a Hub: it forwards the objects of the parties its ClientInfo lists."""
        return self.role == "HUB"

    @property
    def reachable(self) -> bool:
        """True when we may send this party traffic (registered and not reported offline by a Hub)."""
        return self.status == PartyStatus.REGISTERED and self.connection_status == ConnectionStatus.CONNECTED



class SyncState(msgspec.Struct, frozen=True, kw_only=True):
    """Per party: last pulls, reachability, pending resync."""

    party: int
    sessions_pulled_at: datetime | None = None
    locations_pulled_at: datetime | None = None
    unreachable_since: datetime | None = None
    # Since when the party refuses the token we hold (HTTP 401 to our pull).
    refused_since: datetime | None = None
    needs_resync: bool = True

