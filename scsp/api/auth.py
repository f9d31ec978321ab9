"""API keys of the JSON API: issuing, `Authorization: Bearer KEY`, roles and site scopes.

Who may do what (every read is open to every role):

| endpoint                         | aggregator | dso | admin |
|----------------------------------|:----------:|:---:|:-----:|
| PUT/POST site signals            |     x      |  x  |   x   |
| PUT session preferences          |     x      |     |   x   |
| PUT site grid settings           |            |  x  |   x   |
| GET anything                     |     x      |  x  |   x   |

A key with sites may only touch those sites; a key without sites may touch every site. A missing,
unknown or revoked key is a 401 problem; a role that may not do something, or a site out of scope,
is a 403 problem. Keys are 256-bit random, stored as their SHA-256 and never logged.

Other `/api/v1` controllers reuse this: subclass `ApiController` (it provides the `api_key`
dependency and the OpenAPI security requirement), put `guards=[require_roles(...)]` on each handler
and call `check_site(api_key, site_id)` before touching a site.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, Litestar, Request, Response
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import ParameterKwarg
from litestar.routes import HTTPRoute
from litestar.types import Guard

from scsp import errors
from scsp.platform.transport import problem_response
from scsp.records.grid import ApiKey, ApiRole
from scsp.store import Store

# The name of the security scheme in the OpenAPI document.
BEARER_SCHEME = "BearerToken"

# Every `/api/v1` operation requires this scheme.
API_SECURITY: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]

# What `OpenAPIConfig(components=...)` needs so `API_SECURITY` refers to something.
API_OPENAPI_COMPONENTS = Components(
    security_schemes={
        BEARER_SCHEME: SecurityScheme(
            type="http",
            scheme="bearer",
            bearer_format="opaque API key",
            description="An API key from `scsp apikey create --role ROLE [--site ID ...]`, sent as "
            "`Authorization: Bearer KEY`. Roles: aggregator (signals, preferences), dso (signals, "
            "grid settings), admin (everything); every role may read. A key with sites may only "
            "touch those sites.",
        )
    }
)

ALL_ROLES = (ApiRole.aggregator, ApiRole.dso, ApiRole.admin)

# Prefix of every key we issue, so a leaked key is recognisable in logs and secret scanners.
KEY_PREFIX = "scsp_"


class Forbidden(errors.OcpiError, PermissionError):
    """The key is valid but may not do this (its role, or a site outside its scope): HTTP 403."""

    ocpi_status, http_status = 2000, 403


class ProblemField(msgspec.Struct, kw_only=True):
    """One invalid field of a request."""

    field: str
    message: str


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem body, as every `/api/v1` error is rendered (documentation of the shape)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    # Present for body/parameter validation failures: one entry per invalid field.
    errors: list[ProblemField] | None = None


_PROBLEMS = {
    400: "The body is not valid JSON (or not UTF-8).",
    401: "Missing, unknown or revoked API key.",
    403: "The key's role may not do this, or the site is outside the key's scope.",
    404: "Nothing stored here.",
    422: "A field is invalid; `detail` names it (`points[3].end: must be after start`). Nothing was stored.",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` entries for the problem statuses an operation can answer."""
    return {
        s: ResponseSpec(
            data_container=Problem,
            description=_PROBLEMS[s],
            media_type="application/problem+json",
            generate_examples=False,
        )
        for s in statuses
    }


def document_parameter_problems(app: Litestar) -> None:
    """Document the 422 every `/api/v1` operation with a path or query parameter can answer.

    A parameter outside its declared constraints (a site id with spaces, a negative limit) is a
    422 problem naming it, before the handler runs; the OpenAPI document must say so. Done on the
    built app, before the document is first generated (lazily, on request).
    """
    for route in app.routes:
        if not route.path.startswith("/api/v1/") or not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            fields = handler.parsed_fn_signature.parameters.values()
            if route.path_parameters or any(isinstance(f.kwarg_definition, ParameterKwarg) for f in fields):
                handler.responses = {**problem_responses(422), **(handler.responses or {})}


def new_api_key() -> str:
    """A fresh random key: 32 bytes (256 bits) from the OS CSPRNG, URL-safe text."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def issue_api_key(
    store: Store, *, role: ApiRole, sites: Sequence[str], label: str | None, now: datetime
) -> tuple[str, ApiKey]:
    """Create and store a key; returns the key itself (shown once, never stored) and its record."""
    cleaned = tuple(s.strip() for s in sites)
    if any(not s for s in cleaned):
        raise errors.InvalidParameters("sites: a site id must not be empty")
    key = new_api_key()
    return key, store.grid.create_api_key(key, role=role, sites=cleaned, label=label, now=now)


def bearer_key(header: str | None) -> str | None:
    """The key in an `Authorization: Bearer KEY` header, or None when absent or not a bearer credential."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


def authenticate_api_key(store: Store, header: str | None) -> ApiKey:
    """The live key presented in the Authorization header, or `Unauthorized` (401)."""
    key = bearer_key(header)
    if key is None:
        raise errors.Unauthorized("missing API key: send 'Authorization: Bearer <API key>'")
    found = store.grid.api_key(key)
    if found is None:
        raise errors.Unauthorized("unknown or revoked API key")
    return found


def require_roles(*roles: ApiRole) -> Guard:
    """A Litestar guard: authenticate the API key, then allow only `roles` (403 for the others).

    The authenticated key is then available to the handler as the `api_key` dependency.
    """
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        store: Store = connection.app.state.store
        key = authenticate_api_key(store, connection.headers.get("authorization"))
        connection.scope["state"]["api_key"] = key
        if key.role not in allowed:
            raise Forbidden(f"an API key with role {key.role.value!r} may not do this (allowed: {names})")

    return guard


def provide_api_key(request: Request[Any, Any, Any]) -> ApiKey:
    """The key `require_roles` authenticated for this request (dependency `api_key`)."""
    key: ApiKey = request.scope["state"]["api_key"]
    return key


def may_access(key: ApiKey, site_id: str) -> bool:
    """True when the key's scope includes the site (a key without sites covers every site)."""
    return not key.sites or site_id in key.sites


def check_site(key: ApiKey, site_id: str) -> None:
    """Raise `Forbidden` (403) unless the key may touch `site_id`."""
    if not may_access(key, site_id):
        raise Forbidden(f"this API key may not access site {site_id!r}")


def require_site(store: Store, site_id: str) -> None:
    """Raise `NotFound` (404) unless the site exists.

    A site exists once a CPO's Location or active Session names it, or an admin declared it
    (`PUT /api/v1/sites/{site_id}`): a typo in a site id answers 404 instead of creating a site.
    """
    if not store.plans.site_exists(site_id):
        raise errors.NotFound(f"no site {site_id!r}: a site exists once a CPO's Location or Session names it, "
                              f"or an admin declares it (PUT /api/v1/sites/{site_id})")


def too_deep_response(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    """A 400 problem for a body nested too deeply to decode (msgspec raises RecursionError for it)."""
    return problem_response(400, "Bad Request", "request body is not valid JSON: nested too deeply")


def unauthorized_response(request: Request[Any, Any, Any], exc: errors.Unauthorized) -> Response[bytes]:
    """The 401 problem with the challenge RFC 6750 §3 asks for, so clients know a bearer key is expected."""
    response = problem_response(401, "Unauthorized", exc.message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="scsp"'
    return response


class ApiController(Controller):
    """Base of `/api/v1` controllers: the `api_key` dependency and the bearer security requirement.

    Each handler still needs `guards=[require_roles(...)]`: without a guard there is no key.
    """

    dependencies = {"api_key": Provide(provide_api_key, sync_to_thread=False)}
    security = API_SECURITY
    # The app-wide handler would make this a 500: a client must never cause one.
    exception_handlers = {RecursionError: too_deep_response, errors.Unauthorized: unauthorized_response}
