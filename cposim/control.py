"""The simulator's control API (`/sim/...`, JSON, loopback tool: no authentication).

It lets an operator, the demo and the tests drive the simulated CPO: issue an invitation (token A)
so an SCSP can register with it, register it with an SCSP, rotate and unregister; plug EVs in and
out, inject faults, and read the state, the site meters and the ChargingProfiles requests received.
The endpoints are listed in `cposim/README.md`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, PathParameter, QueryParameter

from cposim.faults import ActiveFault, Fault
from cposim.runtime import SimulatedCpo
from cposim.views import CommandRecord, EvView, MeterView, PlugRequest, StateView
from ocpi221.sessions import Session
from scsp.platform import registration
from scsp.platform.client import OcpiClient
from scsp.platform.identity import Platform
from scsp.records.parties import Party, PartyStatus, TokenKind
from scsp.store.parties import PartyStore


class InviteRequest(msgspec.Struct, kw_only=True):
    """Who may register with the simulator."""

    role: str = "SCSP"
    country_code: str
    party_id: str


class Invitation(msgspec.Struct, kw_only=True):
    """What the invited platform needs: our versions URL and its token A."""

    versions_url: str
    token_a: str


class RegisterRequest(msgspec.Struct, kw_only=True):
    """Register the simulator with a platform that invited it."""

    versions_url: str
    token_a: str


class PartyView(msgspec.Struct, kw_only=True):
    """A party as the control API shows it (never with tokens)."""

    id: int
    handle: str
    role: str
    status: str
    versions_url: str | None
    modules: list[str]


def party_view(party: Party) -> PartyView:
    """Public view of a party."""
    return PartyView(
        id=party.id,
        handle=party.handle,
        role=party.role,
        status=party.status,
        versions_url=party.versions_url,
        modules=sorted({e.identifier for e in party.endpoints}),
    )


class SimControlController(Controller):
    """`/sim`: drive the simulated CPO."""

    path = "/sim"

    @post("/invite", sync_to_thread=True, status_code=201)
    def invite(
        self,
        data: JSONBody[InviteRequest],
        parties: NamedDependency[PartyStore],
        platform: NamedDependency[Platform],
    ) -> Invitation:
        """Issue a token A for a platform that will register with the simulator."""
        token = registration.new_token()
        parties.create(
            status=PartyStatus.INVITED,
            role=data.role.upper(),
            country_code=data.country_code,
            party_id=data.party_id,
            token=token,
            token_kind=TokenKind.A,
            now=datetime.now(UTC),
        )
        return Invitation(versions_url=platform.versions_url, token_a=token)

    @post("/register", status_code=201)
    async def register(
        self,
        data: JSONBody[RegisterRequest],
        parties: NamedDependency[PartyStore],
        client: NamedDependency[OcpiClient],
        platform: NamedDependency[Platform],
    ) -> PartyView:
        """Register the simulator with the platform at `versions_url` using its token A."""
        party = await registration.register_with(
            parties, client, platform, data.versions_url, data.token_a, now=datetime.now(UTC)
        )
        return party_view(party)

    @get("/parties", sync_to_thread=True)
    def parties(self, parties: NamedDependency[PartyStore]) -> list[PartyView]:
        """Every party the simulator knows."""
        return [party_view(p) for p in parties.all()]

    @post("/parties/{party:int}/rotate", status_code=200)
    async def rotate(
        self,
        party: FromPath[int],
        parties: NamedDependency[PartyStore],
        client: NamedDependency[OcpiClient],
        platform: NamedDependency[Platform],
    ) -> PartyView:
        """Rotate credentials with a registered party (credentials PUT)."""
        return party_view(
            await registration.rotate(parties, client, platform, parties.get(party), now=datetime.now(UTC))
        )

    @post("/parties/{party:int}/unregister", status_code=200)
    async def unregister(
        self, party: FromPath[int], parties: NamedDependency[PartyStore], client: NamedDependency[OcpiClient]
    ) -> dict[str, Any]:
        """Unregister from a party (credentials DELETE)."""
        updated, problem = await registration.unregister(parties, client, parties.get(party), now=datetime.now(UTC))
        return {"party": party_view(updated), "remote_error": problem}

    # -- the living CPO ----------------------------------------------------------------------------

    @post("/evs", sync_to_thread=True, status_code=201)
    def plug_in(self, data: JSONBody[PlugRequest], sim: NamedDependency[SimulatedCpo]) -> Session:
        """Plug a specific EV into a free EVSE; returns its OCPI Session (ACTIVE)."""
        return sim.plug_in(data)

    @get("/evs", sync_to_thread=True)
    def evs(self, sim: NamedDependency[SimulatedCpo]) -> list[EvView]:
        """Every plugged-in EV."""
        return sim.ev_views()

    @delete("/evs/{session_id:str}", sync_to_thread=True, status_code=200)
    def unplug(
        self,
        session_id: Annotated[str, PathParameter(min_length=1, max_length=36)],
        sim: NamedDependency[SimulatedCpo],
    ) -> Session:
        """Unplug an EV now; returns its OCPI Session (COMPLETED)."""
        return sim.unplug(session_id)

    @get("/state", sync_to_thread=True)
    def state(self, sim: NamedDependency[SimulatedCpo]) -> StateView:
        """EVs (power, energy, applied limit, profile source), EVSEs, downtime, the SCSPs we push to."""
        return sim.state()

    @get("/meter", sync_to_thread=True)
    def meter(
        self,
        sim: NamedDependency[SimulatedCpo],
        since: Annotated[
            float | None, QueryParameter(description="only samples at or after this unix time")
        ] = None,
    ) -> MeterView:
        """Each site's metered load: samples `{t, load_w}`, peak and energy since start."""
        return sim.meter(since)

    @get("/commands", sync_to_thread=True)
    def commands(self, sim: NamedDependency[SimulatedCpo]) -> list[CommandRecord]:
        """Every ChargingProfiles request received, with the synchronous answer and the async result."""
        return sim.command_log()

    @get("/faults", sync_to_thread=True)
    def faults(self, sim: NamedDependency[SimulatedCpo]) -> list[ActiveFault]:
        """The faults in force."""
        return sim.current_faults()

    @put("/faults", sync_to_thread=True)
    def set_faults(
        self, data: JSONBody[list[Fault]], sim: NamedDependency[SimulatedCpo]
    ) -> list[ActiveFault]:
        """Replace the faults in force with this list."""
        return sim.set_faults(data)

    @delete("/faults", sync_to_thread=True, status_code=200)
    def clear_faults(self, sim: NamedDependency[SimulatedCpo]) -> list[ActiveFault]:
        """Remove every fault (ends a DOWNTIME)."""
        return sim.clear_faults()
