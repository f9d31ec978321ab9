"""OCPI 2.2.1 objects shared by every module (types.asciidoc, transport_and_format.asciidoc).

Class and field names are the spec's, verbatim; the wire is snake_case. The base class
`OcpiObject` (UTC normalisation of every DateTime) lives in `profiles.ocpi` because `profiles`
owns the ChargingProfile objects and may not import from here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Generic, TypeVar

import msgspec

from profiles.ocpi import OcpiObject

T = TypeVar("T")

# types.asciidoc: CiString(n) is printable ASCII; string(n) printable UTF-8. Lengths are enforced on
# identifiers only (tolerant reader: free text such as addresses grew in the bugfix branch).
CiString2 = Annotated[str, msgspec.Meta(min_length=1, max_length=2)]
CiString3 = Annotated[str, msgspec.Meta(min_length=1, max_length=3)]
CiString36 = Annotated[str, msgspec.Meta(min_length=1, max_length=36)]
# credentials.asciidoc: "string(64)", printable non-whitespace ASCII (U+0021..U+007E).
CredentialsToken = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[!-~]+$")]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class Role(StrEnum):
    """types.asciidoc "Role" (2.2.1)."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class InterfaceRole(StrEnum):
    """version_information_endpoint.asciidoc "InterfaceRole"."""

    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class ModuleID(StrEnum):
    """version_information_endpoint.asciidoc "ModuleID" (custom ids are allowed by agreement)."""

    CDRS = "cdrs"
    CHARGINGPROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUBCLIENTINFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


# Configuration modules are never routed (transport_and_format "Message Routing"): no OCPI-to/from.
CONFIGURATION_MODULES = frozenset({"versions", "credentials", "hubclientinfo"})

OCPI_VERSION = "2.2.1"


class OcpiResponse(OcpiObject, Generic[T], kw_only=True):
    """The envelope around every response, errors included (transport_and_format "Response format")."""

    data: T | None = None
    status_code: int
    status_message: str | None = None
    timestamp: datetime


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


class Image(OcpiObject, kw_only=True):
    """types.asciidoc "Image" (only carried through, never interpreted)."""

    url: Url
    category: str
    type: str
    thumbnail: str | None = None
    width: int | None = None
    height: int | None = None


class BusinessDetails(OcpiObject, kw_only=True):
    """credentials.asciidoc "BusinessDetails"."""

    name: Annotated[str, msgspec.Meta(max_length=100)]
    website: str | None = None
    logo: Image | None = None


class CredentialsRole(OcpiObject, kw_only=True):
    """credentials.asciidoc "CredentialsRole"."""

    role: Role
    business_details: BusinessDetails
    party_id: CiString3
    country_code: CiString2


class Credentials(OcpiObject, kw_only=True):
    """credentials.asciidoc "Credentials object"."""

    token: CredentialsToken
    url: Url
    roles: Annotated[list[CredentialsRole], msgspec.Meta(min_length=1)]
