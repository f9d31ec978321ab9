"""ChargingProfiles module, our Sender interface (mod_charging_profiles.asciidoc "Sender Interface").

- POST `{response_url}`: the CPO posts the charge point's result of our GET/PUT/DELETE. The URL we
  handed out ends in the command id, so the body's type is known (ocpi-notes §10.8).
- PUT `/chargingprofiles/{session_id}`: the CPO pushes the session's ActiveChargingProfile.
Both answer with the envelope "with the data field omitted".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Controller, Request, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter

from ocpi221.chargingprofiles import ActiveChargingProfile
from ocpi221.types import OcpiResponse
from scsp.dispatch.results import Readback
from scsp.platform.transport import Caller, ok

SessionId = Annotated[str, PathParameter(min_length=1, max_length=36, pattern=r"^[ -~]+$")]  # CiString(36)
CommandId = Annotated[str, PathParameter(min_length=1, max_length=64)]


class ChargingProfilesSender(Controller):
    """`/ocpi/2.2.1/chargingprofiles`: results of our requests and ActiveChargingProfile updates."""

    path = "/ocpi/2.2.1/chargingprofiles"

    @post("/results/{command_id:str}", status_code=200, sync_to_thread=True)
    def result(self, caller: NamedDependency[Caller], readback: NamedDependency[Readback],
               command_id: CommandId, data: JSONBody[Any]) -> OcpiResponse[Any]:
        """Take a ChargingProfileResult, ActiveChargingProfileResult or ClearProfileResult."""
        readback.on_result(caller, command_id, data, datetime.now(UTC))
        return ok()

    @put("/{session_id:str}", sync_to_thread=True)
    def active_profile(self, request: Request[Any, Any, Any], caller: NamedDependency[Caller],
                       readback: NamedDependency[Readback], session_id: SessionId,
                       data: JSONBody[ActiveChargingProfile]) -> OcpiResponse[Any]:
        """Take the CPO's update of a session's ActiveChargingProfile."""
        cc, pid = request.headers.get("ocpi-from-country-code"), request.headers.get("ocpi-from-party-id")
        owner = (cc.upper(), pid.upper()) if cc and pid else None
        if owner is not None and not caller.party.owns(*owner):
            owner = None  # a Hub forwards: the routing header names the CPO behind it
        readback.on_active_push(caller, session_id, data, owner, datetime.now(UTC))
        return ok()
