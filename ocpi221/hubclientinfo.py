"""HubClientInfo module (mod_hub_client_info.asciidoc)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from ocpi221.types import CiString2, CiString3, OcpiObject, Role


class ConnectionStatus(StrEnum):
    """mod_hub_client_info.asciidoc "ConnectionStatus"."""

    CONNECTED = "CONNECTED"
    OFFLINE = "OFFLINE"
    PLANNED = "PLANNED"
    SUSPENDED = "SUSPENDED"


class ClientInfo(OcpiObject, kw_only=True):
    """mod_hub_client_info.asciidoc "ClientInfo"."""

    party_id: CiString3
    country_code: CiString2
    role: Role
    status: ConnectionStatus
    last_updated: datetime

