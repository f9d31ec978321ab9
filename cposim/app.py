"""The simulated CPO (role CPO): Locations and Sessions Sender, ChargingProfiles Receiver, control API."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from litestar import Litestar, get

from cposim.control import SimControlController
from cposim.gate import DowntimeGate
from cposim.ocpi_cpo import ChargingProfilesController, LocationsController, SessionsController
from cposim.runtime import SimulatedCpo
from ocpi221.credentials import CredentialsRole
from ocpi221.types import BusinessDetails, InterfaceRole, Role
from scsp.config import SimulatorConfig
from scsp.platform.app import build_platform_app
from scsp.platform.identity import Platform
from scsp.platform.transport import OcpiEdge
from scsp.store.parties import PartyStore

# Exactly what the simulator implements: (ModuleID, our InterfaceRole, path under /ocpi/2.2.1).
CPO_MODULES: tuple[tuple[str, InterfaceRole, str], ...] = (
    ("credentials", InterfaceRole.SENDER, "credentials"),
    ("locations", InterfaceRole.SENDER, "locations"),
    ("sessions", InterfaceRole.SENDER, "sessions"),
    ("chargingprofiles", InterfaceRole.RECEIVER, "chargingprofiles"),
)


def simulator_platform(settings: SimulatorConfig) -> Platform:
    """The simulator's OCPI identity (role CPO) and endpoints."""
    return Platform(
        role=CredentialsRole(
            role=Role.CPO,
            country_code=settings.country_code.upper(),
            party_id=settings.party_id.upper(),
            business_details=BusinessDetails(name=settings.business_name),
        ),
        public_url=settings.public_url,
        modules=CPO_MODULES,
    )


LANDING = Path(__file__).parent / "index.html"


@get("/", sync_to_thread=True, media_type="text/html; charset=utf-8", include_in_schema=False)
def landing() -> bytes:
    """A small page linking the simulator's state, meter and control API."""
    return LANDING.read_bytes()


def create_simulator_app(settings: SimulatorConfig) -> Litestar:
    """Build the simulated CPO; `app.state.sim` is its live state, run by the app's lifespan."""
    parties = PartyStore.open(settings.db_path)
    platform = simulator_platform(settings)
    sim = SimulatedCpo(settings, platform, parties, now=datetime.now(UTC))
    return build_platform_app(
        platform=platform,
        parties=parties,
        ocpi_handlers=[LocationsController, SessionsController, ChargingProfilesController],
        other_handlers=[SimControlController, landing],
        state={"settings": settings, "sim": sim},
        lifespans=[sim.lifespan],
        title="scsp CPO simulator",
    )


def create_simulator_asgi(settings: SimulatorConfig) -> OcpiEdge:
    """The simulator as uvicorn serves it: the OCPI edge around the downtime gate around the app."""
    app = create_simulator_app(settings)
    platform: Platform = app.state.platform
    return OcpiEdge(
        DowntimeGate(app, app.state.sim), country_code=platform.country_code, party_id=platform.party_id,
        server="simulator")
