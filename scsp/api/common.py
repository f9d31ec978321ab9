"""What every `/api/v1` module shares: time conversion, the input base Struct, field error collection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar.params import PathParameter

from scsp import errors

# A site id as the service names it (`CC-PID-location_id`, see `scsp.sites.site_id`) or as configured:
# printable ASCII without spaces; long enough for a country code, party id and a CiString(36) id.
SiteId = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=80,
        pattern=r"^[!-~]+$",
        description="The site: `CC-PID-location_id` (one OCPI Location).",
    ),
]

# At most this many field errors are listed in one problem body: enough to fix a request, small to send.
MAX_LISTED_ERRORS = 20


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime in whole seconds; a value without offset is UTC (house rule for API input).

    Raises:
        ValueError: the instant is not representable in UTC (e.g. year 1 with a positive offset).
    """
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("date and time out of range") from None
    # Truncated, never rounded up: a time never moves later. Stored as unix seconds anyway.
    return utc.replace(microsecond=0)


def utcnow() -> datetime:
    """The current time, aware UTC, whole seconds (handlers only: domain functions take `now`)."""
    return datetime.now(UTC).replace(microsecond=0)




class ApiInput(msgspec.Struct, kw_only=True):
    """Base of request bodies: every top-level datetime field becomes aware UTC on decode.

    msgspec turns the ValueError of an unrepresentable instant into a validation error naming the
    field, so a client never causes an OverflowError (a 500).
    """

    def __post_init__(self) -> None:
        """Normalise datetime fields to UTC whole seconds."""
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                try:
                    setattr(self, name, as_utc(value))
                except ValueError as exc:
                    # msgspec reports the path of the object, not of the field: name the field here.
                    raise ValueError(f"{name}: {exc}") from None


class FieldErrors:
    """Collects `field: message` problems of one request, raised together as `InvalidParameters` (422)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, field: str, message: str) -> None:
        """Record that `field` is invalid."""
        self.items.append(f"{field}: {message}")

    def raise_any(self) -> None:
        """Raise `InvalidParameters` naming every recorded field, if there is one."""
        if self.items:
            shown = self.items[:MAX_LISTED_ERRORS]
            more = len(self.items) - len(shown)
            raise errors.InvalidParameters("; ".join(shown) + (f"; and {more} more" if more else ""))
