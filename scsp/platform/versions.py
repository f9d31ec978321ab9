"""Versions module (version_information_endpoint.asciidoc): a configuration module, never routed."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency

from ocpi221.types import OCPI_VERSION, OcpiResponse
from ocpi221.versions import Version
from scsp.platform.identity import Platform
from scsp.platform.transport import ACCESS_REGISTRATION, ok


class VersionsController(Controller):
    """`GET /ocpi/versions` and `GET /ocpi/2.2.1` (callable with tokens A, B and C)."""

    path = "/ocpi"
    opt = {"ocpi_access": ACCESS_REGISTRATION}

    @get("/versions", sync_to_thread=False)
    def versions(self, platform: NamedDependency[Platform]) -> OcpiResponse[Any]:
        """List the OCPI versions we support, with their details URLs."""
        return ok([Version(version=OCPI_VERSION, url=platform.details_url)])

    @get(f"/{OCPI_VERSION}", sync_to_thread=False)
    def details(self, platform: NamedDependency[Platform]) -> OcpiResponse[Any]:
        """The endpoints of the modules we implement in OCPI 2.2.1."""
        return ok(platform.version_details())
