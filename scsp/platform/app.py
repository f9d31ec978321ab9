"""The Litestar app of one OCPI platform: Versions, Credentials, the given modules, the envelope rules.

Shared by the service (role SCSP) and the CPO simulator (role CPO): state always holds `parties`
(the registrations), `platform` (who we are) and, during the lifespan, `client` (the outbound
OcpiClient).
"""

from __future__ import annotations

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
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from scsp import __version__
from scsp.platform.client import OcpiClient
from scsp.platform.credentials import CredentialsController
from scsp.platform.identity import Platform
from scsp.platform.transport import (
    OCPI_PREFIX,
    caller_of,
    exception_response,
    ocpi_guard,
    ocpi_responses,
    strict_body,
)
from scsp.platform.versions import VersionsController
from scsp.store.parties import PartyStore

# Browser assets shipped in the package (scripts/vendor_assets.sh refreshes the vendored libraries),
# served at STATIC_PATH: no page of ours asks anything of another host.
STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
STATIC_PATH = "/static"


class LocalSwaggerUI(SwaggerRenderPlugin):
    """Swagger UI at /schema from the vendored swagger-ui-dist, with no request leaving this server.

    Swagger UI's defaults would call out twice: the favicon of Litestar's plugin comes from a CDN and
    the "online validator" badge sends the document to validator.swagger.io; both are switched off.
    """

    def __init__(self) -> None:
        base = f"{STATIC_PATH}/vendor/swagger-ui"
        super().__init__(js_url=f"{base}/swagger-ui-bundle.js", css_url=f"{base}/swagger-ui.css",
                         standalone_preset_js_url=f"{base}/swagger-ui-standalone-preset.js",
                         favicon="<link rel='icon' href='data:,'>")

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """Litestar's page, with the online validator off."""
        page = super().render(request, openapi_schema)
        return page.replace(b"deepLinking: true,", b"validatorUrl: null,\n                  deepLinking: true,", 1)


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


@get("/readyz", sync_to_thread=True)
def readyz(state: State) -> dict[str, Any]:
    """Readiness: the database is reachable and migrated."""
    parties: PartyStore = state.parties
    return {"status": "ready", "migrations": len(parties.applied_migrations())}


def build_platform_app(
    *,
    platform: Platform,
    parties: PartyStore,
    ocpi_handlers: Sequence[ControllerRouterHandler],
    other_handlers: Sequence[ControllerRouterHandler] = (),
    state: dict[str, Any] | None = None,
    lifespans: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    max_body_bytes: int = 1_048_576,
    connect_timeout_s: float = 5.0,
    request_timeout_s: float = 20.0,
    transport: httpx.AsyncBaseTransport | None = None,
    peer_url_allow: tuple[str, ...] = (),
    title: str = "scsp",
    openapi_components: Any = None,
) -> Litestar:
    """A Litestar app for one OCPI platform: Versions, Credentials, the given modules, the envelope rules.

    State always holds `parties`, `platform` and (during the lifespan) `client`, the outbound OcpiClient.
    """

    @asynccontextmanager
    async def client_lifespan(app: Litestar) -> AsyncIterator[None]:
        client = OcpiClient(
            country_code=platform.country_code, party_id=platform.party_id,
            connect_timeout_s=connect_timeout_s, request_timeout_s=request_timeout_s, transport=transport,
            peer_url_allow=peer_url_allow,
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
        security=[{OCPI_TOKEN_SCHEME: []}],
        dependencies={"caller": Provide(_caller, sync_to_thread=False)},
        include_in_schema=True,
    )
    app = Litestar(
        route_handlers=[ocpi, healthz, readyz, *other_handlers,
                        create_static_files_router(path=STATIC_PATH, directories=[STATIC_DIR],
                                                   include_in_schema=False, name="static")],
        dependencies={
            key: Provide(_from_state(key), sync_to_thread=False)
            for key in ("parties", "client", "platform", *(state or {}))
        },
        state=State({"parties": parties, "platform": platform, **(state or {})}),
        lifespan=[client_lifespan, *lifespans],
        exception_handlers={Exception: exception_response},
        before_request=strict_body,
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(
            title=title, version=__version__, path="/schema",
            render_plugins=[LocalSwaggerUI()],
            components=[OCPI_OPENAPI_COMPONENTS, *_as_list(openapi_components)],
        ),
        debug=False,
    )
    _document_ocpi_errors(app)
    return app


OCPI_TOKEN_SCHEME = "OcpiToken"

# transport_and_format "Authorization header": `Authorization: Token <base64(token)>`.
OCPI_OPENAPI_COMPONENTS = Components(security_schemes={
    OCPI_TOKEN_SCHEME: SecurityScheme(
        type="apiKey", name="Authorization", security_scheme_in="header",
        description="`Token <base64 of the credentials token>` (OCPI 2.2.1; the raw token is accepted too). "
                    "Token A opens only versions and credentials; every other module needs token C.",
    ),
})


def _as_list(components: Any) -> list[Any]:
    if not components:
        return []
    return list(components) if isinstance(components, list | tuple) else [components]


def _document_ocpi_errors(app: Litestar) -> None:
    """Give every OCPI operation its real error statuses with the OCPI envelope (not Litestar's shape).

    Done on the built app, before the OpenAPI document is first generated (lazily, on request).
    """
    for route in app.routes:
        if not route.path.startswith(OCPI_PREFIX) or not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            for method in handler.http_methods:
                handler.responses = {**ocpi_responses(method, route.path), **(handler.responses or {})}

