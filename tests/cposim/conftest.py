"""Fixtures: the CPO simulator and a small recording SCSP, both real servers on 127.0.0.1, registered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest
from litestar import Controller, Request, route
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Response

from cposim.app import create_simulator_asgi
from ocpi221.credentials import CredentialsRole
from ocpi221.types import BusinessDetails, InterfaceRole, OcpiResponse, Role
from scsp.app import edge
from scsp.config import SimEvseConfig, SimSiteConfig, SimulatorConfig
from scsp.platform import registration
from scsp.platform.app import build_platform_app
from scsp.platform.client import OcpiClient
from scsp.platform.identity import Platform
from scsp.platform.serving import ServerThread, bind
from scsp.platform.transport import envelope_response, ok
from scsp.records.parties import Party
from scsp.store import Store
from tests.conftest import token_header

T = TypeVar("T")

# A small layout: every power type, one EVSE without CHARGING_PROFILE_CAPABLE, two locations.
TEST_SITES = (
    SimSiteConfig(
        id="LOC-A",
        name="Site A",
        kind="workplace",
        evses=(
            SimEvseConfig(uid="A-AC3", power_type="AC_3_PHASE", max_voltage=230, max_amperage=16),
            SimEvseConfig(uid="A-AC1", power_type="AC_1_PHASE", max_voltage=230, max_amperage=32),
            SimEvseConfig(
                uid="A-DC",
                power_type="DC",
                max_voltage=500,
                max_amperage=125,
                max_electric_power=50_000,
                standard="IEC_62196_T2_COMBO",
                format="CABLE",
            ),
            SimEvseConfig(
                uid="A-OLD",
                power_type="AC_3_PHASE",
                max_voltage=230,
                max_amperage=16,
                capabilities=("RFID_READER",),
            ),
        ),
    ),
    SimSiteConfig(
        id="LOC-B",
        name="Site B",
        evses=(
            SimEvseConfig(uid="B-AC3", power_type="AC_3_PHASE", max_voltage=230, max_amperage=32, count=3),
        ),
    ),
)


def wait_for(condition: Callable[[], T | None], what: str, timeout_s: float = 15.0) -> T:
    """Poll `condition` until it returns something truthy (a generous deadline, never a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.03)


@dataclass
class Recorded:
    """One request the fake SCSP received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


class Recorder:
    """What the fake SCSP received, and how it answers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.refuse_session_patches = False

    def all(self, method: str | None = None, prefix: str = "") -> list[Recorded]:
        """Requests so far, optionally by method and path prefix (after /ocpi/2.2.1/)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith("/ocpi/2.2.1/" + prefix)
            ]


class RecordingController(Controller):
    """Answers 1000 to every push and result, recording it."""

    path = "/ocpi/2.2.1"

    @route("/{module:str}/{rest:path}", http_method=["GET", "PUT", "PATCH", "POST"])
    async def record(
        self,
        request: Request[Any, Any, Any],
        module: FromPath[str],
        rest: FromPath[str],
        recorder: NamedDependency[Recorder],
    ) -> Response[Any]:
        """Record the request; answer with an envelope without data."""
        raw = await request.body()
        body = msgspec.json.decode(raw) if raw else None
        with recorder.lock:
            recorder.requests.append(
                Recorded(
                    method=request.method,
                    path=request.url.path,
                    query=request.url.query or "",
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                )
            )
        if recorder.refuse_session_patches and module == "sessions" and request.method == "PATCH":
            return envelope_response(2001, "unknown session", 404)
        reply: OcpiResponse[Any] = ok()
        return Response(reply)


@dataclass
class World:
    """A registered pair: the simulator and the fake SCSP, with an HTTP client."""

    sim_url: str
    scsp_url: str
    recorder: Recorder
    party: Party  # the simulator, as the fake SCSP stores it (token_out opens the simulator's API)
    http: httpx.Client

    def ocpi(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the simulator's OCPI API as the SCSP (token C, routing headers)."""
        assert self.party.token_out
        headers = {
            **token_header(self.party.token_out),
            "OCPI-from-country-code": "NL",
            "OCPI-from-party-id": "SCP",
            "OCPI-to-country-code": "NL",
            "OCPI-to-party-id": "SIM",
            **kwargs.pop("headers", {}),
        }
        return self.http.request(method, f"{self.sim_url}/ocpi/2.2.1/{path}", headers=headers, **kwargs)

    def sim(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call the control API; returns the JSON body after checking for success."""
        reply = self.http.request(method, f"{self.sim_url}/sim/{path}", **kwargs)
        assert reply.status_code < 300, reply.text
        return reply.json()

    def plug(self, evse_uid: str, location_id: str = "LOC-A", **changes: Any) -> str:
        """Plug an EV in; returns its session id."""
        body = {
            "location_id": location_id,
            "evse_uid": evse_uid,
            "energy_kwh": 40.0,
            "max_kw": 200.0,
            "departure_s": 3600,
            **changes,
        }
        session = self.sim("POST", "evs", json=body)
        assert session["status"] == "ACTIVE"
        return str(session["id"])

    def ev(self, session_id: str) -> dict[str, Any] | None:
        """The EV of a session in /sim/state (None when unplugged)."""
        return next((e for e in self.sim("GET", "state")["evs"] if e["session_id"] == session_id), None)


def simulator_settings(tmp_path: Path, port: int, **changes: Any) -> SimulatorConfig:
    """Deterministic test settings: no random arrivals, fast ticks, short callback delay."""
    return msgspec.structs.replace(
        SimulatorConfig(
            country_code="NL",
            party_id="SIM",
            host="127.0.0.1",
            port=port,
            public_url=f"http://127.0.0.1:{port}",
            db_path=str(tmp_path / "sim.db"),
            arrivals=False,
            tick_s=0.1,
            session_update_s=1.0,
            callback_delay_s=0.1,
            profile_timeout_s=30,
            active_profile_duration_s=900,
            page_limit=50,
            sites=TEST_SITES,
        ),
        **changes,
    )


def fake_scsp_platform(port: int) -> Platform:
    """The fake SCSP's identity and endpoints (what a real SCSP would advertise)."""
    return Platform(
        role=CredentialsRole(
            role=Role.SCSP,
            country_code="NL",
            party_id="SCP",
            business_details=BusinessDetails(name="recording SCSP"),
        ),
        public_url=f"http://127.0.0.1:{port}",
        modules=(
            ("credentials", InterfaceRole.SENDER, "credentials"),
            ("sessions", InterfaceRole.RECEIVER, "sessions"),
            ("locations", InterfaceRole.RECEIVER, "locations"),
            ("chargingprofiles", InterfaceRole.SENDER, "chargingprofiles"),
        ),
    )


def start_world(tmp_path: Path, **changes: Any) -> tuple[World, list[ServerThread]]:
    """Start the simulator and the fake SCSP and register the SCSP with the simulator."""
    sim_sock = bind("127.0.0.1", 0)
    sim_thread = ServerThread(
        create_simulator_asgi(simulator_settings(tmp_path, sim_sock.getsockname()[1], **changes)), sim_sock
    ).start()
    scsp_sock = bind("127.0.0.1", 0)
    platform = fake_scsp_platform(scsp_sock.getsockname()[1])
    store = Store(tmp_path / "scsp-fake.db")
    store.migrate()
    recorder = Recorder()
    app = build_platform_app(
        platform=platform,
        parties=store.parties,
        ocpi_handlers=[RecordingController],
        state={"recorder": recorder},
        title="recording SCSP",
    )
    scsp_thread = ServerThread(edge(app), scsp_sock).start()
    sim_url = f"http://127.0.0.1:{sim_thread.port}"
    http = httpx.Client(timeout=30)
    invitation = http.post(f"{sim_url}/sim/invite", json={"country_code": "NL", "party_id": "SCP"})
    invitation.raise_for_status()

    async def register() -> Party:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            return await registration.register_with(
                store.parties,
                client,
                platform,
                invitation.json()["versions_url"],
                invitation.json()["token_a"],
                now=datetime.now(UTC),
            )
        finally:
            await client.aclose()

    party = asyncio.run(register())
    world = World(
        sim_url=sim_url,
        scsp_url=f"http://127.0.0.1:{scsp_thread.port}",
        recorder=recorder,
        party=party,
        http=http,
    )
    return world, [sim_thread, scsp_thread]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The simulator (test layout) with the fake SCSP registered; Locations already pushed."""
    running, threads = start_world(tmp_path)
    try:
        wait_for(
            lambda: len({r.path for r in running.recorder.all("PUT", "locations/")}) == len(TEST_SITES),
            "the Locations push",
        )
        yield running
    finally:
        running.http.close()
        for thread in threads:
            thread.stop()


def results_url(world: World, name: str) -> str:
    """A unique response_url on the fake SCSP (with a query string, as some Senders make them)."""
    return f"{world.scsp_url}/ocpi/2.2.1/chargingprofiles/results/{name}?request_id={name}&kind=x"


def set_profile(
    world: World,
    session_id: str,
    *periods: tuple[int, float],
    unit: str = "A",
    name: str = "set",
    **profile: Any,
) -> dict[str, Any]:
    """PUT a SetChargingProfile; returns the synchronous ChargingProfileResponse."""
    body = {
        "charging_profile": {
            "charging_rate_unit": unit,
            **profile,
            "charging_profile_period": [{"start_period": s, "limit": v} for s, v in periods],
        },
        "response_url": results_url(world, name),
    }
    reply = world.ocpi("PUT", f"chargingprofiles/{session_id}", json=body)
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000, reply.text
    data: dict[str, Any] = reply.json()["data"]
    return data


def posted_results(world: World, name: str) -> list[Recorded]:
    """The result POSTs that reached the response_url named `name`."""
    return [r for r in world.recorder.all("POST", "chargingprofiles/results/") if r.path.endswith(f"/{name}")]


def active_profile_pushes(world: World, session_id: str) -> list[Recorded]:
    """ActiveChargingProfile PUTs to the fake SCSP's chargingprofiles endpoint for a session."""
    return [
        r
        for r in world.recorder.all("PUT", "chargingprofiles/")
        if r.path == f"/ocpi/2.2.1/chargingprofiles/{session_id}"
    ]
