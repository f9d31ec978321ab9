"""Dispatch against fake CPOs over real HTTP: results, refusals, late results, and when nothing may be sent."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
from litestar import Litestar, Request, get, put
from litestar.params import FromPath
from litestar.response import Response

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod
from ocpi221.hubclientinfo import ClientInfo
from ocpi221.sessions import Session
from ocpi221.types import InterfaceRole
from ocpi221.versions import Endpoint
from profiles import ElectricalFacts
from scsp.app import scsp_platform
from scsp.dispatch.results import Readback
from scsp.dispatch.sender import Dispatcher
from scsp.events import SiteEvents
from scsp.ingest.hubclientinfo import record_client_info
from scsp.planning.engine import Engine
from scsp.platform.client import OcpiClient
from scsp.platform.serving import ServerThread, bind
from scsp.platform.transport import Caller
from scsp.records.commands import Command, CommandKind, CommandState
from scsp.records.parties import TokenKind
from scsp.records.plans import PlanDetail, PlanSession, StoredPlan
from scsp.records.sessions import SessionKey
from tests.conftest import EXAMPLES, Running, register_party


@contextmanager
def fake_cpo(*handlers: Any) -> Iterator[str]:
    """A CPO's ChargingProfiles Receiver served on 127.0.0.1 by `handlers`; yields its base URL."""
    sock = bind("127.0.0.1", 0)
    thread = ServerThread(Litestar(list(handlers)), sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        thread.stop()


def answer(result: str) -> Response[Any]:
    """A CPO's synchronous ChargingProfileResponse."""
    return Response({"data": {"result": result, "timeout": 30}, "status_code": 1000,
                     "timestamp": "2026-01-01T00:00:00Z"})


def test_a_result_that_arrives_before_the_synchronous_reply_is_kept(service: Running) -> None:
    assert service.store is not None
    token_for_us: dict[str, str] = {}

    @put("/chargingprofiles/{session_id:str}")
    async def receive(request: Request[Any, Any, Any], session_id: FromPath[str]) -> Response[Any]:
        body = await request.json()
        # The charge point answers at once: the result goes out before our synchronous reply does.
        async with httpx.AsyncClient() as http:
            await http.post(body["response_url"], json={"result": "ACCEPTED"}, headers={
                "Authorization": "Token " + base64.b64encode(token_for_us["t"].encode()).decode()})
        return answer("ACCEPTED")

    with fake_cpo(receive) as cpo_url:
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
        stored = service.store.commands.get(command.id)
        assert stored is not None
        assert (stored.response, stored.result, stored.state) == ("ACCEPTED", "ACCEPTED", "completed")
        assert service.store.commands.control(key).accepted_profile == profile
        assert service.store.commands.find(states=("pending", "awaiting_result")) == []


START = datetime(2026, 11, 25, 12, tzinfo=UTC)


def amps(limit: float) -> ChargingProfile:
    return ChargingProfile(charging_rate_unit="A", start_date_time=START,
                           charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=limit)])


def two_session_plan(store: Any, party: Any, *, held: dict[str, float], new: dict[str, float], limit_w: float,
                     max_w: float, evse_max_w: float) -> Any:
    """A stored plan of one site with 3-phase AC sessions holding `held` A and planned at `new` A."""

    def key(sid: str) -> SessionKey:
        return SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id=sid)

    for sid, limit in held.items():
        store.commands.record_accepted(key(sid), amps(limit), START)
    facts = ElectricalFacts(phases=3, voltage_v=230.0, max_electric_power_w=evse_max_w)
    plan = StoredPlan(id=0, site_id="NL-CPA-LOC1", created_at=START, start=START,
                      slot_s=900, n_slots=4, status="OPTIMAL", path="LP", limit_w=[limit_w] * 4,
                      site_power_w=[sum(new.values()) * 690] * 4, fixed_load_w=[0.0] * 4,
                      detail=PlanDetail(failsafe_w=0.0),
                      sessions=[PlanSession(key=key(s), controllable=True, facts=facts, max_w=max_w,
                                            evse_max_w=evse_max_w, failsafe_w=0.0, power_w=[a * 690] * 4,
                                            energy_kwh=1.0, shortfall_kwh=0.0, profile=amps(a))
                                for s, a in new.items()])
    return store.plans.save(plan)


def test_the_site_check_counts_a_held_profile_up_to_the_evse_maximum_not_the_learned_vehicle_maximum(
        service: Running) -> None:
    """A car that seemed to take 11 kW may take the 22 kW its held 32 A profile allows: that profile must go down."""
    assert service.store is not None
    _, party = register_party(service.store, "NL", "CPA", endpoints=[])
    # S1: 32 A held, 16 A planned (its learned 11.5 kW); S2: 16 A held, 20 A planned. Limit 26 kW.
    plan = two_session_plan(service.store, party, held={"S1": 32.0, "S2": 16.0}, new={"S1": 16.0, "S2": 20.0},
                            limit_w=26_000.0, max_w=11_500.0, evse_max_w=22_080.0)
    dispatcher = Dispatcher(store=service.store, client=OcpiClient(country_code="NL", party_id="SCP"),
                            platform=scsp_platform(service.config), config=service.config, events=SiteEvents())
    choices = {row.key.session_id: choice for row, choice in dispatcher.choose(plan, START)}
    # Counted at 11.5 kW, S1 would stay at 32 A beside S2's 13.8 kW: 35.9 kW on a 26 kW site.
    assert choices["S1"].send and choices["S1"].lowers
    assert choices["S2"].send and not choices["S2"].lowers


def test_a_refused_decrease_holds_back_the_increase_and_re_plans_the_site(service: Running) -> None:
    assert service.store is not None
    received: list[str] = []

    @put("/chargingprofiles/{session_id:str}")
    async def receive(session_id: FromPath[str]) -> Response[Any]:
        received.append(session_id)
        # The CPO refuses S1's request (its rate limit); S2's would be accepted.
        result = "TOO_OFTEN" if session_id == "S1" else "ACCEPTED"
        return answer(result)

    with fake_cpo(receive) as cpo_url:
        _, party = register_party(service.store, "NL", "CPA", endpoints=[
            Endpoint(identifier="chargingprofiles", role=InterfaceRole.RECEIVER, url=f"{cpo_url}/chargingprofiles")])
        plan = two_session_plan(service.store, party, held={"S1": 32.0, "S2": 10.0}, new={"S1": 16.0, "S2": 20.0},
                                limit_w=26_000.0, max_w=22_080.0, evse_max_w=22_080.0)
        service.store.sync.resynced(party.id)  # registered and resynced
        events = SiteEvents()

        async def run() -> dict[str, int]:
            client = OcpiClient(country_code="NL", party_id="SCP")
            try:
                dispatcher = Dispatcher(store=service.store, client=client, platform=scsp_platform(service.config),
                                        config=service.config, events=events)
                return await dispatcher.dispatch([plan], START)
            finally:
                await client.aclose()

        outcomes = asyncio.run(run())
        # S2's increase relied on S1's decrease: it is not sent while S1 keeps 32 A.
        assert received == ["S1"]
        assert outcomes.get("held_back") == 1 and outcomes.get("TOO_OFTEN") == 1
        assert events.drain() == {"NL-CPA-LOC1"}


def test_a_late_result_of_a_replaced_profile_changes_nothing_in_force(service: Running) -> None:
    """ocpi-notes §10.9: after the timeout the outcome is unknown; a newer profile then decides what holds."""


    assert service.store is not None
    store = service.store
    _, party = register_party(store, "NL", "CPA", endpoints=[])
    key = SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id="S1")
    caller = Caller(party=party, kind=TokenKind.C, base64=True)
    readback = Readback(store=store, config=service.config, events=SiteEvents())
    now = datetime.now(UTC).replace(microsecond=0)

    def sent(limit: float, at: datetime, timeout_s: int) -> Command:
        command = Command(id=uuid.uuid4().hex, kind=CommandKind.SET, key=key, state=CommandState.PENDING,
                          created_at=at, profile=amps(limit))
        assert store.commands.create(command)
        store.commands.record_response(command.id, response="ACCEPTED", timeout_s=timeout_s, now=at)
        return command

    first = sent(16.0, now - timedelta(seconds=100), 10)
    assert [c.id for c in store.commands.expire(now=now - timedelta(seconds=80))] == [first.id]
    second = sent(6.0, now - timedelta(seconds=50), 30)
    readback.on_result(caller, second.id, {"result": "ACCEPTED"}, datetime.now(UTC))
    assert store.commands.control(key).accepted_profile == amps(6.0)
    # The first one's result arrives after all: recorded, but 6 A is what the charge point was last told.
    readback.on_result(caller, first.id, {"result": "ACCEPTED"}, datetime.now(UTC))
    late = store.commands.get(first.id)
    assert late is not None and late.result == "ACCEPTED"
    assert store.commands.control(key).accepted_profile == amps(6.0)
    # A late REJECTED of a replaced profile does not stop the steering either.
    third = sent(8.0, now - timedelta(seconds=40), 10)
    store.commands.expire(now=now - timedelta(seconds=20))
    sent(9.0, now - timedelta(seconds=10), 30)
    readback.on_result(caller, third.id, {"result": "REJECTED"}, datetime.now(UTC))
    assert store.commands.control(key).controllable


def test_no_request_goes_to_a_cpo_that_is_offline_or_awaits_its_resync(service: Running) -> None:
    """mod_hub_client_info OFFLINE: "No requests can be sent"; after a start-up or a return, the resync comes first."""


    assert service.store is not None
    store = service.store
    asked: list[str] = []

    @get("/chargingprofiles/{session_id:str}")
    async def active(session_id: FromPath[str]) -> Response[Any]:
        asked.append(session_id)
        return answer("ACCEPTED")

    with fake_cpo(active) as cpo_url:
    
        _, hub = register_party(store, "NL", "HUB", role="HUB", endpoints=[
            Endpoint(identifier="chargingprofiles", role=InterfaceRole.RECEIVER, url=f"{cpo_url}/chargingprofiles")])
        doc = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
        doc.update(country_code="NL", party_id="CPA", id="S1", status="ACTIVE")
        store.sessions.put(hub.id, msgspec.convert(doc, Session), now=datetime.now(UTC))
        key = SessionKey(party=hub.id, country_code="NL", party_id="CPA", session_id="S1")
        store.commands.record_accepted(key, amps(10.0), datetime.now(UTC))
        store.sync.resynced(hub.id)
        caller = Caller(party=hub, kind=TokenKind.C, base64=True)

        def report(status: str, stamp: str) -> None:
            record_client_info(store, caller, "NL", "CPA", ClientInfo(
                party_id="CPA", country_code="NL", role="CPO", status=status,
                last_updated=datetime.fromisoformat(stamp)), now=datetime.now(UTC), changed=lambda site: None)

        async def readback() -> int:
            client = OcpiClient(country_code="NL", party_id="SCP")
            events = SiteEvents()
            dispatcher = Dispatcher(store=store, client=client, platform=scsp_platform(service.config),
                                    config=service.config, events=events)
            engine = Engine(store=store, client=client, dispatcher=dispatcher, config=service.config, events=events)
            try:
                return await engine.readback()
            finally:
                engine.executor.shutdown()
                await client.aclose()

        report("OFFLINE", "2026-01-01T10:00:00+00:00")
        assert asyncio.run(readback()) == 0 and asked == []
        report("CONNECTED", "2026-01-01T11:00:00+00:00")  # back: a resync is due before anything else
        assert store.sync.state(hub.id).needs_resync
        assert asyncio.run(readback()) == 0 and asked == []
        store.sync.resynced(hub.id)  # what a completed resync does
        assert asyncio.run(readback()) == 1 and asked == ["S1"]
