"""Dispatch against a fake CPO over real HTTP: a result posted before the synchronous reply still counts."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import httpx
from litestar import Litestar, Request, put
from litestar.params import FromPath
from litestar.response import Response

from profiles.ocpi import ChargingProfile, ChargingProfilePeriod
from scsp.app import scsp_platform
from scsp.cpo_client import OcpiClient
from scsp.dispatch import Dispatcher
from scsp.events import SiteEvents
from scsp.ocpi.types import Endpoint, InterfaceRole
from scsp.records import SessionKey
from scsp.serving import ServerThread, bind
from tests.conftest import Running, register_party


def test_a_result_that_arrives_before_the_synchronous_reply_is_kept(service: Running) -> None:
    assert service.store is not None
    sock = bind("127.0.0.1", 0)
    cpo_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    token_for_us: dict[str, str] = {}

    @put("/chargingprofiles/{session_id:str}")
    async def receive(request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[Any]:
        body = await request.json()
        # The charge point answers at once: the result goes out before our synchronous reply does.
        async with httpx.AsyncClient() as http:
            await http.post(body["response_url"], json={"result": "ACCEPTED"}, headers={
                "Authorization": "Token " + base64.b64encode(token_for_us["t"].encode()).decode()})
        return Response({"data": {"result": "ACCEPTED", "timeout": 30}, "status_code": 1000,
                         "timestamp": "2026-01-01T00:00:00Z"})

    thread = ServerThread(Litestar([receive]), sock).start()
    try:
        token, party = register_party(service.store, "NL", "CPA", token_out="ours", endpoints=[
            Endpoint(identifier="chargingprofiles", role=InterfaceRole.RECEIVER, url=f"{cpo_url}/chargingprofiles")])
        token_for_us["t"] = token
        key = SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id="S1")
        profile = ChargingProfile(charging_rate_unit="A", start_date_time=None,
                                  charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=8.0)])

        async def run() -> Any:
            client = OcpiClient(country_code="NL", party_id="SCP")
            try:
                dispatcher = Dispatcher(store=service.store, client=client, platform=scsp_platform(service.config),
                                        config=service.config, events=SiteEvents())
                return await dispatcher.send_set(party, key, profile, None, datetime.now(UTC))
            finally:
                await client.aclose()

        command = asyncio.run(run())
        assert command is not None
        stored = service.store.command(command.id)
        assert stored is not None
        assert (stored.response, stored.result, stored.state) == ("ACCEPTED", "ACCEPTED", "completed")
        assert service.store.session_control(key).accepted_profile == profile
        assert service.store.commands(states=("pending", "awaiting_result")) == []
    finally:
        thread.stop()
