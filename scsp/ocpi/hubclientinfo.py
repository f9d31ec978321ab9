"""HubClientInfo module, Receiver interface (mod_hub_client_info.asciidoc). A configuration module: no routing.

A Hub tells us which parties behind it are reachable. A party reported OFFLINE (or PLANNED,
SUSPENDED) gets no traffic; when it is CONNECTED again we resync with it (GET) and send the current
plan, never what we would have sent meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Response, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ocpi221.hubclientinfo import ClientInfo
from ocpi221.types import OcpiResponse
from scsp import errors, sites
from scsp.events import SiteEvents
from scsp.platform.transport import Caller, ok
from scsp.store import Store

CountryCode = Annotated[str, PathParameter(min_length=2, max_length=2)]
PartyId = Annotated[str, PathParameter(min_length=3, max_length=3)]


class HubClientInfoReceiver(Controller):
    """`/ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}`."""

    path = "/ocpi/2.2.1/hubclientinfo/{country_code:str}/{party_id:str}"

    @get("/", sync_to_thread=True)
    def read(self, caller: NamedDependency[Caller], store: NamedDependency[Store], country_code: CountryCode,
             party_id: PartyId) -> OcpiResponse[Any]:
        """The ClientInfo we hold for that party (as reported by the caller)."""
        sites.require_hub(caller)
        rows = store.sync.client_info(caller.party.id, country_code.upper(), party_id.upper())
        if not rows:
            raise errors.NotFound(f"no client info for {country_code}/{party_id}")
        row = rows[0]
        return ok(ClientInfo(party_id=row["party_id"], country_code=row["country_code"], role=row["role"],
                             status=row["status"], last_updated=datetime.fromtimestamp(row["last_updated"], UTC)))

    @put("/", sync_to_thread=True)
    def update(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
               events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
               data: JSONBody[ClientInfo]) -> Response[OcpiResponse[Any]]:
        """A Hub's news about a party's connection status."""
        created = sites.record_client_info(store, caller, country_code, party_id, data, now=datetime.now(UTC),
                                           changed=events.site_changed)
        return Response(ok(), status_code=201 if created else 200)
