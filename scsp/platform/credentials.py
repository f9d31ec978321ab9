"""Credentials module (credentials.asciidoc), server side: GET, POST, PUT, DELETE. Never routed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from ocpi221.credentials import Credentials
from ocpi221.types import OcpiResponse
from scsp.platform import registration
from scsp.platform.client import OcpiClient
from scsp.platform.identity import Platform
from scsp.platform.transport import ACCESS_REGISTRATION, Caller, ok, token_candidates
from scsp.store.parties import PartyStore


class CredentialsController(Controller):
    """`/ocpi/2.2.1/credentials`: registration, update and unregistration of a client platform."""

    path = "/ocpi/2.2.1/credentials"
    opt = {"ocpi_access": ACCESS_REGISTRATION}

    @get("/", sync_to_thread=False)
    def read(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
             platform: NamedDependency[Platform]) -> OcpiResponse[Any]:
        """Our Credentials object, carrying the token the caller used (the one it must use)."""
        token = next(t for t, b in token_candidates(request.headers.get("authorization")) if b == caller.base64)
        return ok(platform.credentials(token))

    @post("/", status_code=200)
    async def register(self, data: JSONBody[Credentials], caller: NamedDependency[Caller],
                       parties: NamedDependency[PartyStore], client: NamedDependency[OcpiClient],
                       platform: NamedDependency[Platform]) -> OcpiResponse[Any]:
        """Register the client: fetch its endpoints with its token, issue our token C."""
        return ok(await registration.accept_registration(parties, client, platform, caller, data,
                                                         now=datetime.now(UTC)))

    @put("/")
    async def update(self, data: JSONBody[Credentials], caller: NamedDependency[Caller],
                     parties: NamedDependency[PartyStore], client: NamedDependency[OcpiClient],
                     platform: NamedDependency[Platform]) -> OcpiResponse[Any]:
        """Update the client's credentials and endpoints; a new token replaces the old one."""
        return ok(await registration.accept_update(parties, client, platform, caller, data, now=datetime.now(UTC)))

    @delete("/", status_code=200, sync_to_thread=True)
    def unregister(self, caller: NamedDependency[Caller], parties: NamedDependency[PartyStore]) -> OcpiResponse[Any]:
        """Unregister the client: its token stops working and we stop all traffic to it."""
        registration.accept_unregister(parties, caller, now=datetime.now(UTC))
        return ok()
