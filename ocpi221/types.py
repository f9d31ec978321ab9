"""OCPI 2.2.1 types shared by every module (types.asciidoc, transport_and_format.asciidoc).

Class and field names are the spec's, verbatim; the wire is snake_case (no renaming). Reading is
tolerant (unknown fields are ignored, a DateTime without designator is UTC); values keep their
limits. `OcpiObject` is the base of every OCPI object: every DateTime is normalised to UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

import msgspec

T = TypeVar("T")


def to_ocpi_datetime(value: datetime) -> datetime:
    """Normalise a datetime to an aware UTC value in whole seconds.

    types.asciidoc "DateTime": "All timestamps SHALL be in UTC. The absence of the timezone
    designator implies a UTC timestamp", and the value is string(25). msgspec writes fractional
    seconds with six digits (`2018-01-01T01:08:01.123000Z`, 27 characters), so the fraction is
    dropped (truncated, never rounded up, so a time never moves later).

    Args:
        value: a naive (read as UTC) or aware datetime.

    Returns:
        The same instant, or up to 999 999 microseconds earlier, in UTC with `microsecond == 0`.
    """
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+01:00: not representable in UTC. A ValueError lets msgspec report it
        # as an invalid field of the object being decoded instead of crashing the decoder's caller.
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from None
    return utc.replace(microsecond=0)


class OcpiObject(msgspec.Struct, omit_defaults=True):
    """Base of every OCPI object: every DateTime field is normalised to UTC on creation and decode.

    Subclasses must repeat `kw_only=True` (msgspec does not inherit it; `omit_defaults` is). A
    subclass that defines its own `__post_init__` must call `super().__post_init__()`.
    """

    def __post_init__(self) -> None:
        """Normalise every top-level datetime field (OCPI DateTime: no offset means UTC; send `Z`)."""
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                # force_setattr so that frozen subclasses work too.
                msgspec.structs.force_setattr(self, name, to_ocpi_datetime(value))



# types.asciidoc: CiString(n) is printable ASCII; string(n) printable UTF-8. Lengths are enforced on
# identifiers only (tolerant reader: free text such as addresses grew in the bugfix branch).
# "Case Insensitive String. Only printable ASCII allowed." (types.asciidoc): a unicode id is refused.
PRINTABLE_ASCII = r"^[ -~]+$"

CiString2 = Annotated[str, msgspec.Meta(min_length=1, max_length=2, pattern=PRINTABLE_ASCII)]


CiString3 = Annotated[str, msgspec.Meta(min_length=1, max_length=3, pattern=PRINTABLE_ASCII)]


CiString36 = Annotated[str, msgspec.Meta(min_length=1, max_length=36, pattern=PRINTABLE_ASCII)]


# credentials.asciidoc: "string(64)", printable non-whitespace ASCII (U+0021..U+007E).
CredentialsToken = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[!-~]+$")]


Url = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


# Numbers carry their domain (types.asciidoc "number": a JSON number, never a string). Every bound
# is finite, so NaN and +-Infinity (JSON `1e999` decodes to inf) fail at the edge, naming the field,
# instead of being stored and poisoning the planner. The bound is far beyond any real value.
FINITE_BOUND = 1e15

# Any finite number (prices may be negative: day-ahead markets).
Finite = Annotated[float, msgspec.Meta(ge=-FINITE_BOUND, le=FINITE_BOUND)]

# Energy, power, currents and limits: finite and >= 0.
NonNegative = Annotated[float, msgspec.Meta(ge=0, le=FINITE_BOUND)]

# A count or duration in whole units that cannot be negative (seconds, amperes, watts).
NonNegativeInt = Annotated[int, msgspec.Meta(ge=0)]

# A whole quantity that must be above zero (a connector's voltage).
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


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



class Price(OcpiObject, kw_only=True):
    """types "Price"."""

    excl_vat: Finite
    incl_vat: Finite | None = None


def to_dict(obj: msgspec.Struct) -> dict[str, Any]:
    """A Struct as a JSON-ready dict (DateTimes as `Z` strings, omitted defaults left out)."""
    out: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(obj))
    return out

