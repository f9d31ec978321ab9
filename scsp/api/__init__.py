"""The aggregator/DSO JSON API under `/api/v1`: API keys, site grid settings, signals, session preferences.

Mount with `Litestar(route_handlers=[..., *API_CONTROLLERS])` and add `API_OPENAPI_COMPONENTS` to
`OpenAPIConfig(components=...)` so the `BearerToken` security scheme the operations require is defined.
Other `/api/v1` controllers reuse the auth: subclass `ApiController`, guard each handler with
`require_roles(...)`, call `check_site(api_key, site_id)`.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from scsp.api.auth import (
    ALL_ROLES,
    API_OPENAPI_COMPONENTS,
    API_SECURITY,
    BEARER_SCHEME,
    ApiController,
    Forbidden,
    Problem,
    check_site,
    document_parameter_problems,
    issue_api_key,
    may_access,
    problem_responses,
    require_roles,
)
from scsp.api.preferences import PreferencesController
from scsp.api.settings import GridSettingsController
from scsp.api.signals import SignalsController
from scsp.records.grid import ApiKey, ApiRole

API_CONTROLLERS: list[ControllerRouterHandler] = [
    GridSettingsController,
    SignalsController,
    PreferencesController,
]

__all__ = [
    "ALL_ROLES",
    "API_CONTROLLERS",
    "API_OPENAPI_COMPONENTS",
    "API_SECURITY",
    "BEARER_SCHEME",
    "ApiController",
    "ApiKey",
    "ApiRole",
    "Forbidden",
    "Problem",
    "check_site",
    "document_parameter_problems",
    "issue_api_key",
    "may_access",
    "problem_responses",
    "require_roles",
]
