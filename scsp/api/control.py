"""Operator actions on one session: release it from smart charging (OCPI DELETE), or steer it again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import PathParameter

from scsp import errors
from scsp.api.auth import ApiController, check_site, problem_responses, require_roles
from scsp.dispatch.sender import Dispatcher
from scsp.records.grid import ApiKey, ApiRole
from scsp.records.sessions import SessionKey, site_id
from scsp.store import Store

CountryCode = Annotated[str, PathParameter(min_length=2, max_length=2)]
PartyId = Annotated[str, PathParameter(min_length=3, max_length=3)]
SessionId = Annotated[str, PathParameter(min_length=1, max_length=36)]


class SessionControlOut(msgspec.Struct, kw_only=True):
    """The session's control state after the action."""

    country_code: str
    party_id: str
    session_id: str
    controllable: bool
    reason: str | None
    # For a release: the DELETE we sent (its id, and the CPO's synchronous answer), if one went out.
    command_id: str | None = None
    response: str | None = None


class CommandInFlight(errors.OcpiError):
    """Another request for the session awaits its answer: try again shortly (HTTP 409)."""

    ocpi_status, http_status = 2000, 409


def _key(store: Store, api_key: ApiKey, cc: str, pid: str, session_id: str) -> SessionKey:
    matches = store.sessions.by_owner(cc, pid, session_id)
    if not matches:
        raise errors.NotFound(f"no session {cc.upper()}/{pid.upper()}/{session_id}")
    stored = matches[0]
    check_site(api_key, site_id(cc, pid, stored.session.location_id))
    return SessionKey(party=stored.party, country_code=cc.upper(), party_id=pid.upper(), session_id=session_id)


class SessionControlController(ApiController):
    """`/api/v1/sessions/{cc}/{pid}/{id}/release` and `/manage` (admin)."""

    path = "/api/v1/sessions/{country_code:str}/{party_id:str}/{session_id:str}"
    tags = ["sessions"]

    @post("/release", guards=[require_roles(ApiRole.admin)], status_code=200,
          responses=problem_responses(401, 403, 404))
    async def release(self, store: NamedDependency[Store], dispatcher: NamedDependency[Dispatcher],
                      api_key: NamedDependency[ApiKey], country_code: CountryCode, party_id: PartyId,
                      session_id: SessionId) -> SessionControlOut:
        """Stop steering the session and clear our ChargingProfile on it (OCPI DELETE).

        The session is then planned as fixed load at its maximum, so the others stay within the limit.
        409 when another request for the session is in flight.
        """
        key = _key(store, api_key, country_code, party_id, session_id)
        try:
            command = await dispatcher.release(key, datetime.now(UTC))
        except errors.PeerError as exc:
            raise errors.Conflict(exc.message) from None
        if command is None:
            raise CommandInFlight("a request for this session awaits its answer: try again shortly")
        control = store.commands.control(key)
        return SessionControlOut(country_code=key.country_code, party_id=key.party_id, session_id=session_id,
                                 controllable=control.controllable, reason=control.reason, command_id=command.id,
                                 response=command.response or command.state)

    @post("/manage", guards=[require_roles(ApiRole.admin)], status_code=200, sync_to_thread=True,
          responses=problem_responses(401, 403, 404))
    def manage(self, store: NamedDependency[Store], dispatcher: NamedDependency[Dispatcher],
               api_key: NamedDependency[ApiKey], country_code: CountryCode, party_id: PartyId,
               session_id: SessionId) -> SessionControlOut:
        """Steer the session again: the next plan sends it a profile (also after a CPO refused once)."""
        key = _key(store, api_key, country_code, party_id, session_id)
        dispatcher.resume(key)
        control = store.commands.control(key)
        return SessionControlOut(country_code=key.country_code, party_id=key.party_id, session_id=session_id,
                                 controllable=control.controllable, reason=control.reason)
