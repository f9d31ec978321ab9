"""The Litestar applications: the service (role SCSP) and the shared OCPI platform scaffolding."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, Request, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.types import ControllerRouterHandler
from prometheus_client import CollectorRegistry, Counter, generate_latest

from ocpi221.credentials import CredentialsRole
from ocpi221.types import BusinessDetails, InterfaceRole, Role
from scsp import __version__
from scsp.api import API_CONTROLLERS, API_OPENAPI_COMPONENTS
from scsp.api.control import SessionControlController
from scsp.api.plans import PlansController
from scsp.config import Config
from scsp.cpo_client import OcpiClient
from scsp.dispatch import Dispatcher
from scsp.events import SiteEvents
from scsp.metrics import registry_for
from scsp.ocpi.chargingprofiles import ChargingProfilesSender
from scsp.ocpi.credentials import CredentialsController
from scsp.ocpi.hubclientinfo import HubClientInfoReceiver
from scsp.ocpi.platform import Platform
from scsp.ocpi.receivers import LocationsReceiver, SessionsReceiver
from scsp.ocpi.transport import OcpiEdge, caller_of, exception_response, ocpi_guard
from scsp.ocpi.versions import VersionsController
from scsp.scheduling import Engine
from scsp.store import Store

log = logging.getLogger("scsp.app")

# The modules the service implements: (ModuleID, our InterfaceRole, path under /ocpi/2.2.1).
SCSP_MODULES: tuple[tuple[str, InterfaceRole, str], ...] = (
    # credentials: "the role is irrelevant" (ocpi-notes §2); SENDER is the advised value for one's own.
    ("credentials", InterfaceRole.SENDER, "credentials"),
    ("sessions", InterfaceRole.RECEIVER, "sessions"),
    ("locations", InterfaceRole.RECEIVER, "locations"),
    # ChargingProfiles Sender: the CPO posts results to our response_urls and PUTs ActiveChargingProfiles.
    ("chargingprofiles", InterfaceRole.SENDER, "chargingprofiles"),
    ("hubclientinfo", InterfaceRole.RECEIVER, "hubclientinfo"),
)


def scsp_platform(config: Config) -> Platform:
    """Our OCPI identity (role SCSP) and endpoints."""
    return Platform(
        role=CredentialsRole(
            role=Role.SCSP, country_code=config.party.country_code.upper(),
            party_id=config.party.party_id.upper(),
            business_details=BusinessDetails(name=config.party.business_name, website=config.party.website),
        ),
        public_url=config.http.public_url,
        modules=SCSP_MODULES,
    )


def _from_state(key: str) -> Callable[[State], Any]:
    def provide(state: State) -> Any:
        return state[key]

    return provide


def _caller(request: Request[Any, Any, Any]) -> Any:
    return caller_of(request)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok", "version": __version__}


@get("/metrics", sync_to_thread=True, media_type="text/plain; version=0.0.4; charset=utf-8")
def metrics(state: State) -> bytes:
    """Prometheus text exposition: parties, sessions, profile requests and outcomes, each site's plan."""
    registry: CollectorRegistry = state.metrics
    return generate_latest(registry)


DASHBOARD = Path(__file__).parent / "static" / "dashboard.html"


@get("/dashboard", sync_to_thread=True, media_type="text/html; charset=utf-8", include_in_schema=False)
def dashboard() -> bytes:
    """The DSO dashboard: a static page that reads `/api/v1` with the API key the user types in."""
    return DASHBOARD.read_bytes()


@get("/readyz", sync_to_thread=True)
def readyz(state: State) -> dict[str, Any]:
    """Readiness: the database is reachable and migrated."""
    store: Store = state.store
    store.ping()
    return {"status": "ready", "migrations": len(store.applied_migrations())}


def build_platform_app(
    *,
    platform: Platform,
    store: Store,
    ocpi_handlers: Sequence[ControllerRouterHandler],
    other_handlers: Sequence[ControllerRouterHandler] = (),
    state: dict[str, Any] | None = None,
    lifespans: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    max_body_bytes: int = 1_048_576,
    connect_timeout_s: float = 5.0,
    request_timeout_s: float = 20.0,
    transport: httpx.AsyncBaseTransport | None = None,
    title: str = "scsp",
    openapi_components: Any = None,
) -> Litestar:
    """A Litestar app for one OCPI platform: Versions, Credentials, the given modules, the envelope rules.

    State always holds `store`, `platform` and (during the lifespan) `client`, the outbound OcpiClient.
    """

    @asynccontextmanager
    async def client_lifespan(app: Litestar) -> AsyncIterator[None]:
        client = OcpiClient(
            country_code=platform.country_code, party_id=platform.party_id,
            connect_timeout_s=connect_timeout_s, request_timeout_s=request_timeout_s, transport=transport,
        )
        app.state.client = client
        try:
            yield
        finally:
            await client.aclose()

    ocpi = Router(
        path="/",
        route_handlers=[VersionsController, CredentialsController, *ocpi_handlers],
        guards=[ocpi_guard],
        dependencies={"caller": Provide(_caller, sync_to_thread=False)},
        include_in_schema=True,
    )
    return Litestar(
        route_handlers=[ocpi, healthz, readyz, *other_handlers],
        dependencies={
            key: Provide(_from_state(key), sync_to_thread=False)
            for key in ("store", "client", "platform", *(state or {}))
        },
        state=State({"store": store, "platform": platform, **(state or {})}),
        lifespan=[client_lifespan, *lifespans],
        exception_handlers={Exception: exception_response},
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(
            title=title, version=__version__, path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=openapi_components or [],
        ),
        debug=False,
    )


def create_app(config: Config, *, transport: httpx.AsyncBaseTransport | None = None) -> Litestar:
    """Build the service for `config`; `transport` replaces the network for outbound calls in unit tests."""
    store = Store(config.db_path)
    store.migrate()
    platform = scsp_platform(config)
    events = SiteEvents()
    registry, http_requests = registry_for(store)

    @asynccontextmanager
    async def engine_lifespan(app: Litestar) -> AsyncIterator[None]:
        dispatcher = Dispatcher(store=store, client=app.state.client, platform=platform, config=config,
                                events=events)
        app.state.dispatcher = dispatcher
        engine = Engine(store=store, client=app.state.client, dispatcher=dispatcher, config=config, events=events)
        app.state.engine = engine
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    return build_platform_app(
        platform=platform,
        store=store,
        ocpi_handlers=[SessionsReceiver, LocationsReceiver, ChargingProfilesSender, HubClientInfoReceiver],
        other_handlers=[*API_CONTROLLERS, PlansController, SessionControlController, metrics, dashboard],
        openapi_components=API_OPENAPI_COMPONENTS,
        state={"config": config, "events": events, "dispatcher": None, "engine": None, "metrics": registry,
               "http_requests": http_requests},
        lifespans=[engine_lifespan],
        max_body_bytes=config.http.max_body_bytes,
        connect_timeout_s=config.http.connect_timeout_s,
        request_timeout_s=config.http.request_timeout_s,
        transport=transport,
        title="scsp: OCPI 2.2.1 Smart Charging Service Provider",
    )


def edge(app: Litestar) -> OcpiEdge:
    """Wrap an app in the OCPI edge (ids, routing headers, access log): what uvicorn serves."""
    platform: Platform = app.state.platform
    counter: Counter | None = app.state.get("http_requests")

    def count(method: str, status: int) -> None:
        if counter is not None:
            counter.labels(method=method, status=f"{status // 100}xx").inc()

    return OcpiEdge(app, country_code=platform.country_code, party_id=platform.party_id, on_response=count)


def create_asgi(config: Config, *, transport: httpx.AsyncBaseTransport | None = None) -> OcpiEdge:
    """The service as uvicorn serves it."""
    return edge(create_app(config, transport=transport))
