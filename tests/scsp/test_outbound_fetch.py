"""Registration fetches a URL the caller names: the 3001 answer names the URL and the class of failure only.

A token A (POST) or C (PUT) makes us GET the `url` of a Credentials object. Reflecting what that GET
found would turn registration into a probe of internal hosts and ports (a URL-fetch oracle); the
operator may also restrict outbound hosts with `[http] peer_url_allow`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, get

from scsp.app import create_app, edge
from scsp.errors import PeerError, PeerFailure
from scsp.platform.client import OcpiClient
from scsp.platform.serving import ServerThread, bind
from scsp.records.parties import PartyStatus, TokenKind
from tests.conftest import Running, service_config, token_header

SECRET = "internal-value-7f3a"


class Internal:
    """An internal HTTP service that is not OCPI: it answers 200 with content that must never leak."""

    def __init__(self) -> None:
        self.hits = 0
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        @get("/healthz", sync_to_thread=False)
        def healthz(request: Request[Any, Any, Any]) -> dict[str, str]:
            self.hits += 1
            return {"status": "ok", "secret": SECRET}

        self.thread = ServerThread(Litestar([healthz], logging_config=None), sock).start()


@pytest.fixture
def internal() -> Iterator[Internal]:
    server = Internal()
    yield server
    server.thread.stop()


def invitation(service: Running) -> str:
    assert service.store is not None
    token = f"token-a-{time.monotonic_ns()}"
    service.store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="FAK",
                                 token=token, token_kind=TokenKind.A, now=datetime.now(UTC))
    return token


def register(service: Running, http: httpx.Client, url: str) -> dict[str, Any]:
    body = {"token": "token-b", "url": url,
            "roles": [{"role": "CPO", "party_id": "FAK", "country_code": "NL", "business_details": {"name": "F"}}]}
    reply = http.post(f"{service.url}/ocpi/2.2.1/credentials", json=body, headers=token_header(invitation(service)))
    assert reply.status_code == 200
    answer: dict[str, Any] = reply.json()
    return answer


def test_a_non_ocpi_reply_is_named_by_class_never_by_content(service: Running, http: httpx.Client,
                                                             internal: Internal) -> None:
    answer = register(service, http, f"{internal.url}/healthz")
    assert answer["status_code"] == 3001
    message = answer["status_message"]
    assert f"GET {internal.url}/healthz" in message and "HTTP 200, not an OCPI reply" in message
    assert SECRET not in message and "secret" not in message and "status" not in message.replace("status_code", "")


def test_connect_errors_and_statuses_are_named(service: Running, http: httpx.Client, internal: Internal) -> None:
    refused = register(service, http, "http://127.0.0.1:9/versions")
    assert refused["status_code"] == 3001 and "GET http://127.0.0.1:9/versions: connect error" in \
        refused["status_message"]
    missing = register(service, http, f"{internal.url}/nothing-here?probe=1")
    assert missing["status_code"] == 3001
    assert missing["status_message"].endswith(f"GET {internal.url}/nothing-here: HTTP 404, not an OCPI reply")


def test_peer_url_allow_keeps_outbound_calls_to_the_listed_hosts(tmp_path: Path, http: httpx.Client,
                                                                 internal: Internal) -> None:
    sock = bind("127.0.0.1", 0)
    config = service_config(tmp_path, sock.getsockname()[1])
    config = msgspec.structs.replace(config, http=msgspec.structs.replace(config.http,
                                                                          peer_url_allow=("*.cpo.example",)))
    app = create_app(config)
    thread = ServerThread(edge(app), sock).start()
    try:
        service = Running(thread, config, app.state.store, app)
        answer = register(service, http, f"{internal.url}/healthz")
        assert answer["status_code"] == 3001 and "host not allowed by http.peer_url_allow" in \
            answer["status_message"]
        assert internal.hits == 0
    finally:
        thread.stop()


@pytest.mark.parametrize(("patterns", "url", "allowed"), [
    ((), "http://10.0.0.1/x", True),
    (("*.cpo.example",), "https://ocpi.cpo.example/versions", True),
    (("*.cpo.example",), "https://cpo.example.evil/versions", False),
    (("*.cpo.example",), "https://OCPI.CPO.EXAMPLE/versions", True),
    (("10.1.2.*",), "http://10.1.2.3:8080/versions", True),
    (("10.1.2.*",), "file:///etc/passwd", False),
])
def test_allow_patterns_match_the_host_only(patterns: tuple[str, ...], url: str, allowed: bool) -> None:
    client = OcpiClient(country_code="NL", party_id="SCP", peer_url_allow=patterns)
    assert client.allowed(url) is allowed


def test_a_summary_never_carries_the_message() -> None:
    error = PeerError(f"GET http://x/y: HTTP 200, unreadable OCPI reply: {SECRET}", http_status=200,
                      failure=PeerFailure.NOT_OCPI)
    assert SECRET not in error.summary("GET", "http://x/y?q=1")
    assert error.summary("GET", "http://x/y?q=1") == "GET http://x/y: HTTP 200, not an OCPI reply"
