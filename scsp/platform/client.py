"""Outbound OCPI calls: one `httpx.AsyncClient` per service, explicit timeouts, the envelope decoded.

Every request carries `Authorization`, `X-Request-ID` (new per request) and `X-Correlation-ID`
(given or new); functional-module requests also carry the routing headers (transport_and_format
"Message Routing"). A non-1xxx status, an HTTP error or an unreadable reply raises `PeerError`.
"""

from __future__ import annotations

import base64
import fnmatch
import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TypeVar, overload

import httpx
import msgspec

from ocpi221.types import OcpiResponse
from scsp.errors import PeerError, PeerFailure
from scsp.platform.transport import iso
from scsp.records.parties import Party

log = logging.getLogger("scsp.client")

T = TypeVar("T")

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?', re.IGNORECASE)

# Most pages we follow in one pull: a guard against a peer whose Link header loops.
MAX_PAGES = 10_000


def authorization(token: str, use_base64: bool) -> str:
    """`Token base64(utf8(token))` (RFC 4648 §4, no trailing newline: ocpi-notes §1.1) or the raw token."""
    if use_base64:
        return "Token " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    return "Token " + token


class Reply(msgspec.Struct, frozen=True):
    """A decoded OCPI reply with the headers pagination needs."""

    envelope: OcpiResponse[Any]
    headers: dict[str, str]
    http_status: int


class OcpiClient:
    """Calls other OCPI platforms on behalf of our party."""

    def __init__(
        self,
        *,
        country_code: str,
        party_id: str,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
        peer_url_allow: tuple[str, ...] = (),
    ) -> None:
        self.country_code = country_code
        self.party_id = party_id
        # Host patterns (fnmatch, e.g. "*.cpo.example") outbound calls may reach; empty: any host.
        self.peer_url_allow = tuple(p.lower() for p in peer_url_allow)
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(request_timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport,
            follow_redirects=False,
        )

    def allowed(self, url: str) -> bool:
        """Whether `url`'s host matches `peer_url_allow` (always, when no pattern is configured)."""
        if not self.peer_url_allow:
            return True
        host = (httpx.URL(url).host or "").lower() if url.startswith(("http://", "https://")) else ""
        return bool(host) and any(fnmatch.fnmatchcase(host, pattern) for pattern in self.peer_url_allow)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    @overload
    async def request(self, method: str, url: str, *, token: str, use_base64: bool, data_type: type[T],
                      body: msgspec.Struct | None = None, params: dict[str, str] | None = None,
                      routing_to: tuple[str, str] | None = None, correlation_id: str | None = None,
                      ) -> tuple[T | None, Reply]: ...

    @overload
    async def request(self, method: str, url: str, *, token: str, use_base64: bool, data_type: None = None,
                      body: msgspec.Struct | None = None, params: dict[str, str] | None = None,
                      routing_to: tuple[str, str] | None = None, correlation_id: str | None = None,
                      ) -> tuple[None, Reply]: ...

    async def request(
        self,
        method: str,
        url: str,
        *,
        token: str,
        use_base64: bool,
        data_type: type[T] | None = None,
        body: msgspec.Struct | None = None,
        params: dict[str, str] | None = None,
        routing_to: tuple[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> tuple[T | None, Reply]:
        """Make one OCPI call and return the decoded `data` (of `data_type`; None without one) and the reply.

        Raises:
            PeerError: transport failure, HTTP error, unreadable envelope, or a non-1xxx status.
        """
        headers = {
            "Authorization": authorization(token, use_base64),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
        }
        if routing_to is not None:
            headers.update({
                "OCPI-from-country-code": self.country_code,
                "OCPI-from-party-id": self.party_id,
                "OCPI-to-country-code": routing_to[0],
                "OCPI-to-party-id": routing_to[1],
            })
        content = None
        if body is not None:
            content = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        if not self.allowed(url):
            raise PeerError(f"{method} {_safe(url)}: {PeerFailure.REFUSED.value}", failure=PeerFailure.REFUSED)
        try:
            response = await self._http.request(method, url, headers=headers, content=content, params=params)
        except httpx.HTTPError as exc:
            failure = PeerFailure.TIMEOUT if isinstance(exc, httpx.TimeoutException) else PeerFailure.CONNECT
            raise PeerError(f"{method} {_safe(url)}: {type(exc).__name__}: {exc}", failure=failure) from None
        try:
            wanted: Any = Any if data_type is None else data_type
            envelope = msgspec.json.decode(response.content, type=OcpiResponse[wanted])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            try:
                generic = msgspec.json.decode(response.content, type=OcpiResponse[Any])
            except (msgspec.DecodeError, msgspec.ValidationError):
                generic = None
            raise PeerError(
                f"{method} {_safe(url)}: HTTP {response.status_code}, unreadable OCPI reply: {exc}",
                http_status=response.status_code,
                ocpi_status=generic.status_code if generic else None,
                failure=PeerFailure.NOT_OCPI,
            ) from None
        if response.status_code >= 300 or not 1000 <= envelope.status_code < 2000:
            raise PeerError(
                f"{method} {_safe(url)}: HTTP {response.status_code}, OCPI {envelope.status_code}"
                f" {envelope.status_message or ''}".rstrip(),
                http_status=response.status_code,
                ocpi_status=envelope.status_code,
            )
        reply = Reply(envelope=envelope, headers={k.lower(): v for k, v in response.headers.items()},
                      http_status=response.status_code)
        return (None if data_type is None else envelope.data), reply

    @overload
    async def call(self, party: Party, method: str, url: str, *, data_type: type[T],
                   body: msgspec.Struct | None = None, params: dict[str, str] | None = None,
                   routing_to: tuple[str, str] | None = None, correlation_id: str | None = None,
                   ) -> tuple[T | None, Reply]: ...

    @overload
    async def call(self, party: Party, method: str, url: str, *, data_type: None = None,
                   body: msgspec.Struct | None = None, params: dict[str, str] | None = None,
                   routing_to: tuple[str, str] | None = None, correlation_id: str | None = None,
                   ) -> tuple[None, Reply]: ...

    async def call(
        self,
        party: Party,
        method: str,
        url: str,
        *,
        data_type: type[T] | None = None,
        body: msgspec.Struct | None = None,
        params: dict[str, str] | None = None,
        routing_to: tuple[str, str] | None = None,
        correlation_id: str | None = None,
    ) -> tuple[T | None, Reply]:
        """`request` with the party's token and its Base64 preference."""
        if not party.token_out:
            raise PeerError(f"no token to call {party.handle}")
        return await self.request(
            method, url, token=party.token_out, use_base64=party.token_base64, data_type=data_type,
            body=body, params=params, routing_to=routing_to, correlation_id=correlation_id,
        )

    async def get_all(
        self,
        party: Party,
        url: str,
        item_type: type[T],
        *,
        date_from: datetime | None = None,
        date_to: datetime | None = None,
        limit: int | None = None,
        routing_to: tuple[str, str] | None = None,
        skipped: list[str] | None = None,
    ) -> AsyncIterator[T]:
        """Pull a paginated list, following `Link rel="next"` (transport_and_format "Pagination").

        Items that fail to decode are skipped with a warning (tolerant reader): one bad object in
        a CPO's list must not stop us learning the rest. Each skip is appended to `skipped` (so
        the caller knows the list it saw is not the whole list).
        """
        params: dict[str, str] | None = {}
        assert params is not None
        if date_from is not None:
            params["date_from"] = iso(date_from)
        if date_to is not None:
            params["date_to"] = iso(date_to)
        if limit is not None:
            params["limit"] = str(limit)
        next_url: str | None = url
        correlation = str(uuid.uuid4())
        for _ in range(MAX_PAGES):
            if next_url is None:
                return
            raw, reply = await self.call(party, "GET", next_url, data_type=list[msgspec.Raw],
                                         params=params or None, routing_to=routing_to,
                                         correlation_id=correlation)
            for item in raw or []:
                try:
                    yield msgspec.json.decode(item, type=item_type)
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.warning("skipping an unreadable %s from %s: %s", item_type.__name__, party.handle, exc)
                    if skipped is not None:
                        skipped.append(str(exc))
            link = reply.headers.get("link", "")
            match = _LINK_NEXT.search(link)
            # The next link "SHALL keep the original filters": take it as given, no extra params.
            next_url, params = (match.group(1), None) if match and raw else (None, None)


def _safe(url: str) -> str:
    """A URL fit for logs and messages (no query string: it may carry a response_url with ids)."""
    return url.split("?")[0]
