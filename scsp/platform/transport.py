"""OCPI transport rules (transport_and_format.asciidoc): envelope, auth, ids, routing headers, errors.

- Every response, errors included, is the OCPI envelope with a UTC `timestamp` ending in `Z`.
- `Authorization: Token <base64(token)>`; the raw token is accepted too (ocpi-notes §1.1: many
  2.1.1/2.2 peers send it un-encoded).
- `X-Request-ID` / `X-Correlation-ID` echoed, generated when absent.
- Routing headers (`OCPI-from-*`, `OCPI-to-*`) on every functional-module response, never on the
  configuration modules (versions, credentials, hubclientinfo).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    ClientException,
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response

from ocpi221.types import CONFIGURATION_MODULES, OCPI_VERSION, OcpiResponse
from scsp import errors, logs
from scsp.records.parties import Party, PartyStatus, TokenKind
from scsp.store.parties import PartyStore

log = logging.getLogger("scsp.http")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

OCPI_PREFIX = "/ocpi"


def utcnow() -> datetime:
    """The current time, aware UTC, whole seconds (handlers and jobs only)."""
    return datetime.now(UTC).replace(microsecond=0)


def ok(data: Any = None) -> OcpiResponse[Any]:
    """A success envelope (1000). `data` is left out when None (d2: "leave data unset")."""
    return OcpiResponse(data=data, status_code=1000, timestamp=utcnow())


def envelope_response(status_code: int, message: str | None, http_status: int) -> Response[bytes]:
    """An error envelope as a Litestar response."""
    body = msgspec.json.encode(
        OcpiResponse[None](status_code=status_code, status_message=message, timestamp=utcnow())
    )
    return Response(content=body, status_code=http_status, media_type="application/json")


def problem_response(http_status: int, title: str, detail: str, errors_: list[dict[str, str]] | None = None
                     ) -> Response[bytes]:
    """An RFC 9457 problem body for our own JSON API."""
    problem: dict[str, Any] = {"type": "about:blank", "title": title, "status": http_status, "detail": detail}
    if errors_:
        problem["errors"] = errors_
    return Response(content=msgspec.json.encode(problem), status_code=http_status,
                    media_type="application/problem+json")


# -- authentication ------------------------------------------------------------------------------

class Caller(msgspec.Struct, frozen=True):
    """Who is calling: the party owning the presented token, and how it encoded the token."""

    party: Party
    kind: TokenKind
    base64: bool
    # The OCPI-from-country-code / OCPI-from-party-id routing headers of the request, when both came.
    routed_from: tuple[str, str] | None = None


def token_candidates(header: str | None) -> list[tuple[str, bool]]:
    """Possible tokens in an Authorization header, most likely first, as (token, was_base64).

    `Token <base64>` is the 2.2.1 rule; the raw token is also tried because many peers send it. A
    Base64 value that decodes to a token plus one trailing newline yields the token: peers that
    copied the spec's own examples (`ZXhhbXBsZS10b2tlbgo=`, ocpi-notes §1.1 erratum) send that form.
    """
    if not header:
        return []
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    candidates: list[tuple[str, bool]] = []
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        decoded = ""
    if decoded.endswith("\n"):
        decoded = decoded[:-1]  # one newline only: what is left must still be all printable
    if decoded and all("!" <= c <= "~" for c in decoded):
        candidates.append((decoded, True))
    candidates.append((value, False))
    return candidates


def authenticate(parties: PartyStore, header: str | None) -> Caller:
    """Resolve the Authorization header to a caller, or raise `Unauthorized` (HTTP 401)."""
    candidates = token_candidates(header)
    if not candidates:
        raise errors.Unauthorized("missing or malformed Authorization header (expected 'Token <token>')")
    for token, was_base64 in candidates:
        found = parties.by_token(token)
        if found is not None:
            party, kind = found
            if party.status == PartyStatus.UNREGISTERED:
                break
            return Caller(party=party, kind=kind, base64=was_base64)
    raise errors.Unauthorized("unknown or revoked token")


# handler.opt["ocpi_access"]: "registration" = versions/credentials (token A and pending parties
# allowed); anything else needs a registered party (transport_and_format: a valid TOKEN_A on any
# other module gets HTTP 401).
ACCESS_REGISTRATION = "registration"


def ocpi_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Litestar guard: authenticate every OCPI request and enforce what each token may reach."""
    parties: PartyStore = connection.app.state.parties
    caller = authenticate(parties, connection.headers.get("authorization"))
    if handler.opt.get("ocpi_access") != ACCESS_REGISTRATION and (
        caller.kind != TokenKind.C or caller.party.status != PartyStatus.REGISTERED
    ):
        raise errors.Unauthorized("this token may only be used on versions and credentials")
    from_cc, from_pid = (connection.headers.get("ocpi-from-country-code"),
                         connection.headers.get("ocpi-from-party-id"))
    if from_cc and from_pid:
        caller = msgspec.structs.replace(caller, routed_from=(from_cc.strip().upper(), from_pid.strip().upper()))
    connection.scope["state"]["caller"] = caller


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    """The caller the guard authenticated (dependency provider)."""
    caller: Caller = request.scope["state"]["caller"]
    return caller


# -- pagination (transport_and_format "Pagination") ----------------------------------------------

class PageRequest(msgspec.Struct, frozen=True):
    """Validated paging/filter parameters of a GET list."""

    offset: int
    limit: int
    date_from: datetime | None
    date_to: datetime | None


def page_request(offset: int | None, limit: int | None, date_from: datetime | None,
                 date_to: datetime | None, *, max_limit: int) -> PageRequest:
    """Clamp paging parameters: the server "may return fewer" than asked, never more than `X-Limit`."""
    if offset is not None and offset < 0:
        raise errors.InvalidParameters("offset: must be >= 0")
    if limit is not None and limit < 0:
        raise errors.InvalidParameters("limit: must be >= 0")
    as_utc = [d if d is None or d.tzinfo else d.replace(tzinfo=UTC) for d in (date_from, date_to)]
    return PageRequest(offset=offset or 0, limit=min(limit if limit is not None else max_limit, max_limit),
                       date_from=as_utc[0], date_to=as_utc[1])


def page_headers(url: str, page: PageRequest, total: int, returned: int, max_limit: int) -> dict[str, str]:
    """`X-Total-Count`, `X-Limit` and, unless this is the last page, `Link: <…>; rel="next"` keeping filters."""
    headers = {"X-Total-Count": str(total), "X-Limit": str(max_limit)}
    next_offset = page.offset + returned
    if returned and next_offset < total:
        query: dict[str, str] = {}
        if page.date_from:
            query["date_from"] = iso(page.date_from)
        if page.date_to:
            query["date_to"] = iso(page.date_to)
        query["offset"] = str(next_offset)
        query["limit"] = str(page.limit)
        headers["Link"] = f'<{url.split("?")[0]}?{urlencode(query)}>; rel="next"'
    return headers


def iso(moment: datetime) -> str:
    """OCPI DateTime: UTC with `Z`, whole seconds (types.asciidoc)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- strict request bodies -----------------------------------------------------------------------

# msgspec reports where a value failed as a JSON path: "Expected `float`, got `str` - at `$.kwh`".
_MSGSPEC_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def _body_type(request: Request[Any, Any, Any]) -> Any:
    """The type a handler declares for its JSON body (`data`), or None when it takes none or any."""
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None or data.annotation is Any:
        return None
    return data.annotation


def validation_error(exc: msgspec.ValidationError) -> ValidationException:
    """A msgspec validation error as the ValidationException naming its field (2001 / 422)."""
    match = _MSGSPEC_AT.match(str(exc))
    message, path = (match.group("message"), match.group("path") or "") if match else (str(exc), "")
    field = path.lstrip(".") or "body"
    return ValidationException(detail=f"{field}: {message}", extra=[{"key": field, "message": message}])


async def strict_body(request: Request[Any, Any, Any]) -> None:
    """Decode the JSON body strictly against the handler's declared type, before Litestar's lax parse.

    One decoding policy for every OCPI endpoint and /api/v1 (house rule, STYLE.md §2): Litestar
    converts bodies with msgspec's lax mode (`strict=False`), which reads the string "NaN" as a
    float, "5" as 5 and the integer 123 as a DateTime in 1970. Strictly, a string is never a number
    or a time and an integer never a time; constrained numbers (`Meta(ge=..., le=...)`) are finite
    by construction. Invalid JSON is left to Litestar's own reading (HTTP 400 / 2000).
    """
    wanted = _body_type(request)
    if wanted is None or request.method not in {"POST", "PUT", "PATCH"}:
        return
    body = await request.body()
    try:
        msgspec.json.decode(body, type=wanted)
    except msgspec.ValidationError as exc:
        try:
            # A typed decode skips unknown fields unread: invalid UTF-8 there is still not JSON.
            msgspec.json.decode(body)
        except msgspec.ValidationError:
            pass  # a number beyond float range (1e999): valid JSON, an invalid value
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return  # (ValidationError is a DecodeError: it is caught first, above)
        raise validation_error(exc) from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return  # not JSON at all: answered by the normal path as HTTP 400 / 2000


# -- errors -> envelope / problem ----------------------------------------------------------------

def exception_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """The one exception handler: OCPI envelope under /ocpi, JSON problem elsewhere. Never an HTML page."""
    http_status, ocpi_status, message, details = _classify(exc)
    if http_status >= 500:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith(OCPI_PREFIX):
        response = envelope_response(ocpi_status, message, http_status)
    else:
        problem_status = 422 if ocpi_status == 2001 else http_status
        response = problem_response(problem_status, _title(problem_status), message, details)
    if isinstance(exc, MethodNotAllowedException) and exc.headers:
        # RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field" listing the supported methods.
        allow = next((v for k, v in exc.headers.items() if k.lower() == "allow"), None)
        if allow:
            response.headers["Allow"] = allow
    return response


class OcpiEnvelope(msgspec.Struct, kw_only=True):
    """The OCPI envelope without `data` (errors, and pushes that define none), for OpenAPI.

    Every OCPI answer is this envelope, errors included: `data` is left out, `status_code` is the
    OCPI code (2000 client error, 2001 invalid or missing parameters, 3001 unusable client API...),
    `status_message` says why, `timestamp` is UTC with `Z`.
    """

    status_code: int
    status_message: str | None = None
    timestamp: datetime


# The HTTP statuses an OCPI operation can answer besides its success, each with the envelope.
_OCPI_ERRORS = {
    400: "Not valid JSON (or not UTF-8): OCPI 2000. A valid body with a bad field is HTTP 200 with "
         "OCPI 2001 naming the field (the spec forbids an HTTP error for valid JSON).",
    401: "Missing, unknown or revoked token, or token A outside versions and credentials.",
    404: "No such object, or its country_code/party_id are not among the caller's roles.",
    405: "Credentials: POST when already registered, PUT or DELETE when not (credentials.asciidoc).",
    413: "The request body exceeds `http.max_body_bytes`.",
}


def ocpi_responses(method: str, path: str) -> dict[int, ResponseSpec]:
    """OpenAPI `responses` of an OCPI operation: its real statuses, each with the OCPI envelope."""
    statuses = [400, 401, 404]
    if method in {"POST", "PUT", "PATCH"}:
        statuses.append(413)
    if path.endswith("/credentials"):
        statuses.append(405)
    out = {s: ResponseSpec(data_container=OcpiEnvelope, description=_OCPI_ERRORS[s], generate_examples=False)
           for s in statuses}
    if method == "PUT" and not path.endswith(("/credentials",)) and "/chargingprofiles/" not in path:
        # transport_and_format "PUT": 201 when the object was created, 200 when it was replaced.
        out[201] = ResponseSpec(data_container=OcpiEnvelope, description="Created (OCPI 1000).",
                                generate_examples=False)
    return out


def _classify(exc: Exception) -> tuple[int, int, str, list[dict[str, str]] | None]:
    if isinstance(exc, errors.OcpiError):
        return exc.http_status, exc.ocpi_status, exc.message, None
    if isinstance(exc, ValidationException):
        extra = exc.extra if isinstance(exc.extra, list) else []
        items = [{"field": str(e.get("key", "")), "message": str(e.get("message", ""))}
                 for e in extra if isinstance(e, dict)]
        # Litestar reports an empty body as a KeyError on "data": that is not JSON at all.
        if any(i["field"] == "data" and i["message"] == "'data'" for i in items):
            return 400, 2000, "request body is empty: a JSON object is required", None
        text = "; ".join(f"{i['field']}: {i['message']}" for i in items) or (exc.detail or "invalid request")
        return 200, 2001, text, items
    if isinstance(exc, msgspec.ValidationError):
        # Raised by a store that validates what it is about to write (nothing is stored).
        return _classify(validation_error(exc))
    if isinstance(exc, RecursionError):
        # Pathologically nested JSON exhausts the decoder's recursion: unreadable input, not our failure.
        return 400, 2000, "request body is not valid JSON: nested too deeply", None
    if isinstance(exc, UnicodeDecodeError):
        # msgspec raises it (not a DecodeError) for invalid UTF-8 inside a JSON string.
        return 400, 2000, "request body is not valid JSON: invalid UTF-8", None
    if isinstance(exc, NotFoundException):
        return 404, 2000, "not found", None
    if isinstance(exc, MethodNotAllowedException):
        return 405, 2000, "method not allowed", None
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return 413, 2000, "request body too large", None
    if isinstance(exc, ClientException) and exc.status_code == 400:
        return 400, 2000, f"request body is not valid JSON: {exc.detail}", None
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return exc.status_code, 2000, exc.detail, None
    return 500, 3000, "internal server error", None


def _title(status: int) -> str:
    return {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
            422: "Unprocessable Content"}.get(status, "Error")


# -- the outer ASGI edge -------------------------------------------------------------------------

def _module_of(path: str) -> str | None:
    """`/ocpi/2.2.1/sessions/...` -> "sessions"; None outside the versioned OCPI tree."""
    parts = path.strip("/").split("/")
    if len(parts) >= 3 and parts[0] == "ocpi" and parts[1] == OCPI_VERSION:
        return parts[2]
    return None


class OcpiEdge:
    """Outermost ASGI layer: ids, routing headers, access log, and a last-resort envelope.

    It wraps the whole Litestar app (not a per-route middleware) so unmatched routes and errors
    raised before routing get the same headers.
    """

    def __init__(self, app: Any, *, country_code: str, party_id: str,
                 on_response: Callable[[str, int], None] | None = None, server: str = "service") -> None:
        self.app = app
        # Named on every log line written while serving this app (`scsp.logs.server`).
        self.server = server
        self.country_code = country_code
        self.party_id = party_id
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Set for the lifespan too, so what it starts (the engine, the simulation) logs as this server.
        logs.server.set(self.server)
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id") or str(uuid.uuid4())
        cid = headers.get("x-correlation-id") or str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["request_id"], state["correlation_id"] = rid, cid
        rid_token, cid_token = logs.request_id.set(rid), logs.correlation_id.set(cid)
        started = time.perf_counter()
        status_box: list[int] = []
        module = _module_of(scope.get("path", ""))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box.append(message["status"])
                extra = [(b"x-request-id", rid.encode("latin-1")), (b"x-correlation-id", cid.encode("latin-1"))]
                if module is not None and module not in CONFIGURATION_MODULES:
                    extra += self._routing(headers, state)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("request failed outside the application")
            if not status_box:
                body = msgspec.json.encode(OcpiResponse[None](status_code=3000, status_message="internal server error",
                                                              timestamp=utcnow()))
                await send_with_headers({"type": "http.response.start", "status": 500,
                                         "headers": [(b"content-type", b"application/json"),
                                                     (b"content-length", str(len(body)).encode())]})
                await send_with_headers({"type": "http.response.body", "body": body})
        finally:
            if self.on_response is not None:
                self.on_response(str(scope.get("method")), status_box[0] if status_box else 0)
            status = status_box[0] if status_box else 0
            # A CPO PATCHes every session about once a minute: routine traffic, DEBUG; the rest INFO.
            routine = scope.get("method") == "PATCH" and 200 <= status < 300
            log.log(
                logging.DEBUG if routine else logging.INFO,
                "%s %s -> %s", scope.get("method"), scope.get("path"), status or "-",
                extra={"duration_ms": round((time.perf_counter() - started) * 1000, 1),
                       "party": _caller_handle(state)},
            )
            logs.request_id.reset(rid_token)
            logs.correlation_id.reset(cid_token)

    def _routing(self, headers: dict[str, str], state: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        """Response routing: TO = the requester, FROM = us (or whom the request addressed)."""
        caller: Caller | None = state.get("caller")
        to_cc = headers.get("ocpi-from-country-code") or (caller.party.country_code if caller else None)
        to_pid = headers.get("ocpi-from-party-id") or (caller.party.party_id if caller else None)
        from_cc = headers.get("ocpi-to-country-code") or self.country_code
        from_pid = headers.get("ocpi-to-party-id") or self.party_id
        out = [(b"ocpi-from-country-code", from_cc.encode("latin-1")),
               (b"ocpi-from-party-id", from_pid.encode("latin-1"))]
        if to_cc and to_pid:
            out += [(b"ocpi-to-country-code", to_cc.encode("latin-1")),
                    (b"ocpi-to-party-id", to_pid.encode("latin-1"))]
        return out


def _caller_handle(state: dict[str, Any]) -> str | None:
    caller: Caller | None = state.get("caller")
    return caller.party.handle if caller else None
