"""Versions module (version_information_endpoint.asciidoc, version_details_endpoint.asciidoc)."""

from __future__ import annotations

from ocpi221.types import InterfaceRole, OcpiObject, Url


class Version(OcpiObject, kw_only=True):
    """One entry of the version information endpoint."""

    version: str  # VersionNumber; str so a peer offering "2.3.0" does not fail our decoding
    url: Url


class Endpoint(OcpiObject, kw_only=True):
    """One module endpoint in the version details."""

    identifier: str  # ModuleID; str because custom module ids exist (e.g. "nltnm-tokens")
    role: InterfaceRole
    url: Url


class VersionDetails(OcpiObject, kw_only=True):
    """The version details endpoint's data."""

    version: str
    endpoints: list[Endpoint]

