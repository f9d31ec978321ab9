"""The simulated CPO as an OCPI 2.2.1 platform (role CPO)."""

from __future__ import annotations

from litestar import Litestar

from scsp.app import build_platform_app
from scsp.config import SimulatorConfig
from scsp.ocpi.platform import Platform
from scsp.ocpi.transport import OcpiEdge
from scsp.ocpi.types import BusinessDetails, CredentialsRole, InterfaceRole, Role
from scsp.simulator.control import SimControlController
from scsp.storage import Store

CPO_MODULES: tuple[tuple[str, InterfaceRole, str], ...] = (
    ("credentials", InterfaceRole.SENDER, "credentials"),
)


def simulator_platform(settings: SimulatorConfig) -> Platform:
    """The simulator's OCPI identity (role CPO) and endpoints."""
    return Platform(
        role=CredentialsRole(role=Role.CPO, country_code=settings.country_code.upper(),
                             party_id=settings.party_id.upper(),
                             business_details=BusinessDetails(name=settings.business_name)),
        public_url=settings.public_url,
        modules=CPO_MODULES,
    )


def create_simulator_app(settings: SimulatorConfig) -> Litestar:
    """Build the simulated CPO."""
    store = Store(settings.db_path)
    store.migrate()
    return build_platform_app(
        platform=simulator_platform(settings), store=store, ocpi_handlers=[],
        other_handlers=[SimControlController], state={"settings": settings},
        title="scsp CPO simulator",
    )


def create_simulator_asgi(settings: SimulatorConfig) -> OcpiEdge:
    """The simulator as uvicorn serves it."""
    platform = simulator_platform(settings)
    return OcpiEdge(create_simulator_app(settings), country_code=platform.country_code,
                    party_id=platform.party_id)
