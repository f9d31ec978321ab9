"""Domain errors. Each carries its OCPI status code and HTTP status (status_codes.asciidoc).

Domain code raises these, never Litestar exceptions; `create_app` turns them into the OCPI envelope
(or a JSON problem body on our own API).
"""

from __future__ import annotations

from enum import StrEnum


class OcpiError(Exception):
    """Base: a generic server error (3000)."""

    ocpi_status, http_status = 3000, 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message



class InvalidParameters(OcpiError, ValueError):
    """Valid JSON with a missing or invalid field (2001).

    HTTP 200: d2 "If a request is syntactically valid JSON and addresses an existing resource, a
    HTTP error MUST NOT be returned."
    """

    ocpi_status, http_status = 2001, 200




class SiteOfAnother(InvalidParameters):
    """2001: a Location or Session for a site that another connection owns (two never meet in one site)."""


class UnknownLocation(OcpiError, LookupError):
    """2003: the Location does not exist here."""

    ocpi_status, http_status = 2003, 404


class NotFound(OcpiError, LookupError):
    """The addressed object does not exist (transport_and_format: GET of a missing object SHOULD be 404)."""

    ocpi_status, http_status = 2000, 404


class Unauthorized(OcpiError, PermissionError):
    """Missing, unknown or revoked token, or token A outside versions/credentials: HTTP 401."""

    ocpi_status, http_status = 2000, 401


class MethodNotAllowed(OcpiError):
    """credentials.asciidoc: POST when registered, PUT/DELETE when not: HTTP 405."""

    ocpi_status, http_status = 2000, 405


class Conflict(OcpiError, ValueError):
    """The request contradicts stored state (e.g. a party already registered under that identity)."""

    ocpi_status, http_status = 2000, 409


class ClientApiUnusable(OcpiError):
    """3001: we could not use the peer's API (its versions/details GETs failed) during registration.

    HTTP 200: the request itself was fine, and nothing a peer sends may turn into a 5xx.
    """

    ocpi_status, http_status = 3001, 200


class UnsupportedVersion(OcpiError):
    """3002: no mutual OCPI version."""

    ocpi_status, http_status = 3002, 200


class NoMatchingEndpoints(OcpiError):
    """3003: the peer's version details lack endpoints we require."""

    ocpi_status, http_status = 3003, 200


class PeerFailure(StrEnum):
    """The class of an outbound call's failure: what may be told to whoever made us call."""

    REFUSED = "host not allowed by http.peer_url_allow"
    CONNECT = "connect error"
    TIMEOUT = "timeout"
    STATUS = "HTTP or OCPI error status"
    NOT_OCPI = "not an OCPI reply"


class PeerError(Exception):
    """An outbound OCPI call failed: transport error, HTTP error, bad envelope or non-1xxx status."""

    def __init__(self, message: str, *, http_status: int | None = None, ocpi_status: int | None = None,
                 failure: PeerFailure = PeerFailure.STATUS) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.ocpi_status = ocpi_status
        self.failure = failure

    def summary(self, method: str, url: str) -> str:
        """The failure in words safe to return to the caller that made us fetch `url`.

        Names the URL and the class of failure (and the HTTP status), never what was fetched: the
        reply of an internal host must not leak through an error message (a URL-fetch oracle).
        """
        where = f"{method} {url.split('?')[0]}"
        if self.failure == PeerFailure.STATUS and self.http_status is not None:
            code = f", OCPI {self.ocpi_status}" if self.ocpi_status is not None and self.http_status < 300 else ""
            return f"{where}: HTTP {self.http_status}{code}"
        if self.failure == PeerFailure.NOT_OCPI and self.http_status is not None:
            return f"{where}: HTTP {self.http_status}, {self.failure.value}"
        return f"{where}: {self.failure.value}"

    @property
    def unreachable(self) -> bool:
        """True when the peer could not be reached at all (no HTTP answer)."""
        return self.http_status is None
