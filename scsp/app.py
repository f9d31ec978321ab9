"""The service (role SCSP) as a Litestar application: the OCPI platform plus our modules, API and engine."""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, Request, Response, get
from litestar.concurrency import get_asyncio_executor, set_asyncio_executor
from litestar.datastructures import State
from prometheus_client import CollectorRegistry, Counter, generate_latest

from ocpi221.credentials import CredentialsRole
from ocpi221.types import BusinessDetails, InterfaceRole, Role
from scsp.api import API_CONTROLLERS, API_OPENAPI_COMPONENTS, document_parameter_problems
from scsp.api.commands import CommandsController
from scsp.api.control import SessionControlController
from scsp.api.plans import FleetController, PlansController
from scsp.config import Config
from scsp.dispatch.controllers import ChargingProfilesSender
from scsp.dispatch.results import Readback
from scsp.dispatch.sender import Dispatcher
from scsp.events import SiteEvents
from scsp.ingest.receivers import HubClientInfoReceiver, LocationsReceiver, SessionsReceiver
from scsp.metrics import registry_for
from scsp.planning.engine import Engine
from scsp.platform.app import build_platform_app
from scsp.platform.identity import Platform
from scsp.platform.transport import OcpiEdge
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








def metrics_key_matches(configured: str, header: str | None) -> bool:
    """Whether an Authorization header carries the configured metrics key (the key or `sha256:<hex>`)."""
    scheme, _, presented = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    digest = hashlib.sha256(presented.strip().encode("utf-8")).hexdigest()
    if configured.startswith("sha256:"):
        return hmac.compare_digest(digest, configured.removeprefix("sha256:").strip().lower())
    return hmac.compare_digest(digest, hashlib.sha256(configured.encode("utf-8")).hexdigest())


@get("/metrics", sync_to_thread=True, media_type="text/plain; version=0.0.4; charset=utf-8")
def metrics(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    """Prometheus text exposition: parties, sessions, profile requests and outcomes, each site's plan.

    With `[http] metrics_key` set, only for `Authorization: Bearer <key>` (else 401).
    """
    config: Config = state.config
    key = config.http.metrics_key
    if key is not None and not metrics_key_matches(key, request.headers.get("authorization")):
        return Response(b"metrics need the key: Authorization: Bearer <metrics_key>\n", status_code=401,
                        media_type="text/plain; charset=utf-8", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    registry: CollectorRegistry = state.metrics
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")


DASHBOARD = Path(__file__).parent / "static" / "dashboard.html"
LANDING = Path(__file__).parent / "static" / "index.html"


@get("/", sync_to_thread=True, media_type="text/html; charset=utf-8", include_in_schema=False)
def landing() -> bytes:
    """A small page linking the dashboard, the API documentation and the OCPI versions."""
    return LANDING.read_bytes()


@get("/dashboard", sync_to_thread=True, media_type="text/html; charset=utf-8", include_in_schema=False)
def dashboard() -> bytes:
    """The DSO dashboard: a static page that reads `/api/v1` with the API key the user types in."""
    return DASHBOARD.read_bytes()






# Threads that run the synchronous request handlers. Litestar's default is the event loop's
# executor (min(32, cpus + 4) threads), shared with the engine's `asyncio.to_thread` calls: on two
# cores six threads, so at most six writes could wait for one group commit, and a planning pass
# took threads from requests.
REQUEST_THREADS = 32


def _request_threads() -> None:
    if get_asyncio_executor() is None:
        try:
            set_asyncio_executor(ThreadPoolExecutor(max_workers=REQUEST_THREADS, thread_name_prefix="request"))
        except RuntimeError:
            pass  # called inside a running loop: the loop's executor stays


def create_app(config: Config, *, transport: httpx.AsyncBaseTransport | None = None) -> Litestar:
    """Build the service for `config`; `transport` replaces the network for outbound calls in unit tests."""
    _request_threads()
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

    app = build_platform_app(
        platform=platform,
        parties=store.parties,
        ocpi_handlers=[SessionsReceiver, LocationsReceiver, ChargingProfilesSender, HubClientInfoReceiver],
        other_handlers=[*API_CONTROLLERS, PlansController, SessionControlController, CommandsController,
                        FleetController, metrics, dashboard, landing],
        openapi_components=API_OPENAPI_COMPONENTS,
        state={"store": store, "config": config, "events": events, "dispatcher": None, "engine": None,
               "readback": Readback(store=store, config=config, events=events),
               "metrics": registry, "http_requests": http_requests},
        lifespans=[engine_lifespan],
        max_body_bytes=config.http.max_body_bytes,
        connect_timeout_s=config.http.connect_timeout_s,
        request_timeout_s=config.http.request_timeout_s,
        transport=transport,
        peer_url_allow=config.http.peer_url_allow,
        title="scsp: OCPI 2.2.1 Smart Charging Service Provider",
    )
    document_parameter_problems(app)
    return app


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
