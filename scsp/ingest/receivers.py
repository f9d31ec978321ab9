"""Sessions, Locations and HubClientInfo Receiver interfaces (mod_sessions, mod_locations, mod_hub_client_info).

Client owned objects: `{module}/{country_code}/{party_id}/{object_id}`; PUT creates or replaces
(HTTP 201 when created, 200 when updated), PATCH updates part and must carry `last_updated`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Response, get, patch, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ocpi221.hubclientinfo import ClientInfo
from ocpi221.locations import EVSE, Connector, Location
from ocpi221.sessions import Session, SessionPatch
from ocpi221.types import OcpiResponse
from scsp.events import SiteEvents
from scsp.ingest import hubclientinfo, locations, sessions
from scsp.platform.transport import Caller, ok
from scsp.store import Store

CountryCode = Annotated[str, PathParameter(min_length=2, max_length=2)]
PartyId = Annotated[str, PathParameter(min_length=3, max_length=3)]
# CiString(36): printable ASCII (types.asciidoc).
ObjectId = Annotated[str, PathParameter(min_length=1, max_length=36, pattern=r"^[ -~]+$")]


def pushed(created: bool) -> Response[OcpiResponse[Any]]:
    """The envelope for a pushed object: HTTP 201 when created, 200 when updated (transport_and_format)."""
    return Response(ok(), status_code=201 if created else 200)


class SessionsReceiver(Controller):
    """`/ocpi/2.2.1/sessions/{country_code}/{party_id}/{session_id}`: the CPO pushes its Sessions."""

    path = "/ocpi/2.2.1/sessions/{country_code:str}/{party_id:str}/{session_id:str}"

    @get("/", sync_to_thread=True)
    def read(self, caller: NamedDependency[Caller], store: NamedDependency[Store], country_code: CountryCode,
             party_id: PartyId, session_id: ObjectId) -> OcpiResponse[Any]:
        """The Session as we hold it."""
        return ok(sessions.get_session(store, caller, country_code, party_id, session_id))

    @put("/", sync_to_thread=True)
    def replace(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                session_id: ObjectId, data: JSONBody[Session]) -> Response[OcpiResponse[Any]]:
        """Create or replace a Session (the whole object)."""
        return pushed(sessions.put_session(store, caller, country_code, party_id, session_id, data,
                                           now=datetime.now(UTC), changed=events.site_changed,
                                           arrived=events.site_arrived))

    @patch("/", sync_to_thread=True)
    def update(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
               events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
               session_id: ObjectId, data: JSONBody[SessionPatch]) -> OcpiResponse[Any]:
        """Update part of a Session; charging_periods are appended."""
        sessions.patch_session(store, caller, country_code, party_id, session_id, data, now=datetime.now(UTC),
                               changed=events.site_changed, arrived=events.site_arrived)
        return ok()


class LocationsReceiver(Controller):
    """`/ocpi/2.2.1/locations/{cc}/{pid}/{location_id}[/{evse_uid}[/{connector_id}]]`."""

    path = "/ocpi/2.2.1/locations/{country_code:str}/{party_id:str}/{location_id:str}"

    @get("/", sync_to_thread=True)
    def read_location(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                      country_code: CountryCode, party_id: PartyId, location_id: ObjectId) -> OcpiResponse[Any]:
        """The Location as we hold it."""
        return ok(locations.get_location_object(store, caller, country_code, party_id, location_id))

    @get("/{evse_uid:str}", sync_to_thread=True)
    def read_evse(self, caller: NamedDependency[Caller], store: NamedDependency[Store], country_code: CountryCode,
                  party_id: PartyId, location_id: ObjectId, evse_uid: ObjectId) -> OcpiResponse[Any]:
        """One EVSE as we hold it."""
        return ok(locations.get_location_object(store, caller, country_code, party_id, location_id, evse_uid))

    @get("/{evse_uid:str}/{connector_id:str}", sync_to_thread=True)
    def read_connector(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                       country_code: CountryCode, party_id: PartyId, location_id: ObjectId, evse_uid: ObjectId,
                       connector_id: ObjectId) -> OcpiResponse[Any]:
        """One connector as we hold it."""
        return ok(locations.get_location_object(store, caller, country_code, party_id, location_id, evse_uid,
                                            connector_id))

    @put("/", sync_to_thread=True)
    def put_location(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                     events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                     location_id: ObjectId, data: JSONBody[Location]) -> Response[OcpiResponse[Any]]:
        """Create or replace a Location."""
        return pushed(locations.put_location(store, caller, country_code, party_id, location_id, data,
                                         changed=events.site_changed))

    @put("/{evse_uid:str}", sync_to_thread=True)
    def put_evse(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                 events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                 location_id: ObjectId, evse_uid: ObjectId, data: JSONBody[EVSE]) -> Response[OcpiResponse[Any]]:
        """Create or replace one EVSE of a known Location."""
        return pushed(locations.put_evse(store, caller, country_code, party_id, location_id, evse_uid, data,
                                     changed=events.site_changed))

    @put("/{evse_uid:str}/{connector_id:str}", sync_to_thread=True)
    def put_connector(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                      events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                      location_id: ObjectId, evse_uid: ObjectId, connector_id: ObjectId,
                      data: JSONBody[Connector]) -> Response[OcpiResponse[Any]]:
        """Create or replace one connector of a known EVSE."""
        return pushed(locations.put_connector(store, caller, country_code, party_id, location_id, evse_uid,
                                          connector_id, data, changed=events.site_changed))

    @patch("/", sync_to_thread=True)
    def patch_location(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                       events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                       location_id: ObjectId, data: JSONBody[dict[str, Any]]) -> OcpiResponse[Any]:
        """Update part of a Location."""
        locations.patch_location_object(store, caller, country_code, party_id, location_id, None, None, data,
                                    changed=events.site_changed)
        return ok()

    @patch("/{evse_uid:str}", sync_to_thread=True)
    def patch_evse(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                   events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                   location_id: ObjectId, evse_uid: ObjectId, data: JSONBody[dict[str, Any]]) -> OcpiResponse[Any]:
        """Update part of an EVSE (typically its status)."""
        locations.patch_location_object(store, caller, country_code, party_id, location_id, evse_uid, None, data,
                                    changed=events.site_changed)
        return ok()

    @patch("/{evse_uid:str}/{connector_id:str}", sync_to_thread=True)
    def patch_connector(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
                        events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
                        location_id: ObjectId, evse_uid: ObjectId, connector_id: ObjectId,
                        data: JSONBody[dict[str, Any]]) -> OcpiResponse[Any]:
        """Update part of a connector."""
        locations.patch_location_object(store, caller, country_code, party_id, location_id, evse_uid, connector_id,
                                    data, changed=events.site_changed)
        return ok()


class HubClientInfoReceiver(Controller):
    """`/ocpi/2.2.1/hubclientinfo/{country_code}/{party_id}`."""

    path = "/ocpi/2.2.1/hubclientinfo/{country_code:str}/{party_id:str}"

    @get("/", sync_to_thread=True)
    def read(self, caller: NamedDependency[Caller], store: NamedDependency[Store], country_code: CountryCode,
             party_id: PartyId) -> OcpiResponse[Any]:
        """The ClientInfo we hold for that party (as reported by the caller)."""
        return ok(hubclientinfo.get_client_info(store, caller, country_code, party_id))

    @put("/", sync_to_thread=True)
    def update(self, caller: NamedDependency[Caller], store: NamedDependency[Store],
               events: NamedDependency[SiteEvents], country_code: CountryCode, party_id: PartyId,
               data: JSONBody[ClientInfo]) -> Response[OcpiResponse[Any]]:
        """A Hub's news about a party's connection status."""
        created = hubclientinfo.record_client_info(store, caller, country_code, party_id, data,
                                                   now=datetime.now(UTC), changed=events.site_changed)
        return Response(ok(), status_code=201 if created else 200)

