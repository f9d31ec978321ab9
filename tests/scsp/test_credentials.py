"""Credentials server-side error semantics and client-side token-form detection, against fake peers."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, post
from litestar.response import Response

from scsp import registration
from scsp.app import scsp_platform
from scsp.cpo_client import OcpiClient
from scsp.errors import ClientApiUnusable
from scsp.models import PartyStatus, TokenKind
from scsp.serving import ServerThread, bind
from tests.conftest import Running, register_party, token_header


class FakePeer:
    """A minimal OCPI platform: versions, details and credentials, with knobs for what goes wrong."""

    def __init__(self, *, versions: list[str] = ("2.2.1",), modules: tuple[str, ...] = ("credentials",),  # type: ignore[assignment]
                 raw_only: bool = False) -> None:
        self.token = "peer-token-a"
        self.raw_only = raw_only
        self.seen: list[str] = []
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        def authorised(request: Request[Any, Any, Any]) -> bool:
            header = request.headers.get("authorization", "")
            self.seen.append(header)
            expected = f"Token {self.token}" if raw_only else \
                f"Token {base64.b64encode(self.token.encode()).decode()}"
            return header == expected

        def envelope(data: Any, status: int = 200) -> Response[Any]:
            return Response({"data": data, "status_code": 1000 if status == 200 else 2000,
                             "timestamp": "2026-01-01T00:00:00Z"}, status_code=status)

        @get("/versions", sync_to_thread=False)
        def versions_handler(request: Request[Any, Any, Any]) -> Response[Any]:
            if not authorised(request):
                return envelope(None, 401)
            return envelope([{"version": v, "url": f"{self.url}/details"} for v in versions])

        @get("/details", sync_to_thread=False)
        def details_handler(request: Request[Any, Any, Any]) -> Response[Any]:
            if not authorised(request):
                return envelope(None, 401)
            return envelope({"version": "2.2.1", "endpoints": [
                {"identifier": m, "role": "SENDER", "url": f"{self.url}/{m}"} for m in modules]})

        @post("/credentials", sync_to_thread=False, status_code=200)
        def credentials_handler(request: Request[Any, Any, Any]) -> Response[Any]:
            if not authorised(request):
                return envelope(None, 401)
            return envelope({"token": "token-c", "url": f"{self.url}/versions", "roles": [
                {"role": "CPO", "party_id": "FAK", "country_code": "NL", "business_details": {"name": "Fake"}}]})

        self.thread = ServerThread(Litestar([versions_handler, details_handler, credentials_handler]), sock).start()


@pytest.fixture
def peers() -> Iterator[list[FakePeer]]:
    made: list[FakePeer] = []
    yield made
    for peer in made:
        peer.thread.stop()


def invitation(service: Running) -> str:
    assert service.store is not None
    token = f"token-a-{time.monotonic_ns()}"
    service.store.create_party(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="FAK",
                               token=token, token_kind=TokenKind.A, now=int(time.time()))
    return token


def credentials_of(peer_url: str, token: str = "token-b") -> dict[str, Any]:
    return {"token": token, "url": f"{peer_url}/versions",
            "roles": [{"role": "CPO", "party_id": "FAK", "country_code": "NL", "business_details": {"name": "F"}}]}


def test_registration_errors_follow_the_spec(service: Running, http: httpx.Client, peers: list[FakePeer]) -> None:
    url = f"{service.url}/ocpi/2.2.1/credentials"
    # 3001: the client's versions cannot be fetched.
    reply = http.post(url, json=credentials_of("http://127.0.0.1:9"), headers=token_header(invitation(service)))
    assert reply.status_code == 200 and reply.json()["status_code"] == 3001
    # 3002: no mutual version.
    old = FakePeer(versions=["2.1.1"])
    peers.append(old)
    old.token = "token-b"
    reply = http.post(url, json=credentials_of(old.url), headers=token_header(invitation(service)))
    assert reply.json()["status_code"] == 3002 and "2.1.1" in reply.json()["status_message"]
    # 3003: required endpoints missing.
    bare = FakePeer(modules=("locations",))
    peers.append(bare)
    bare.token = "token-b"
    reply = http.post(url, json=credentials_of(bare.url), headers=token_header(invitation(service)))
    assert reply.json()["status_code"] == 3003 and "credentials" in reply.json()["status_message"]
    # The invitation's identity must be among the roles.
    reply = http.post(url, json={**credentials_of(bare.url), "roles": [
        {"role": "CPO", "party_id": "XYZ", "country_code": "NL", "business_details": {"name": "X"}}]},
        headers=token_header(invitation(service)))
    assert reply.json()["status_code"] == 2001
    assert service.store is not None
    assert all(p.status != PartyStatus.REGISTERED for p in service.store.parties())  # nothing registered


def test_the_405_cases_of_the_credentials_module(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    url = f"{service.url}/ocpi/2.2.1/credentials"
    token_a = invitation(service)
    # Not registered yet: PUT and DELETE are 405.
    assert http.put(url, json=credentials_of("http://x"), headers=token_header(token_a)).status_code == 405
    assert http.delete(url, headers=token_header(token_a)).status_code == 405
    # Registered: POST is 405.
    token_c, _ = register_party(service.store, "NL", "REG")
    reply = http.post(url, json=credentials_of("http://x"), headers=token_header(token_c))
    assert reply.status_code == 405 and reply.json()["status_code"] == 2000
    # GET returns our credentials with the token the caller used.
    mine = http.get(url, headers=token_header(token_c)).json()["data"]
    assert mine["token"] == token_c and mine["roles"][0]["role"] == "SCSP"
    assert mine["url"] == service.versions_url


def test_a_peer_that_only_takes_raw_tokens_is_detected_and_remembered(
        service: Running, peers: list[FakePeer]) -> None:
    peer = FakePeer(raw_only=True)
    peers.append(peer)

    async def run() -> Any:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            assert service.store is not None
            return await registration.register_with(service.store, client, scsp_platform(service.config),
                                                    f"{peer.url}/versions", peer.token, now=time.time())
        finally:
            await client.aclose()

    party = asyncio.run(run())
    assert party.token_base64 is False and party.token_out == "token-c"
    assert peer.seen[0].startswith("Token ") and peer.seen[0] != f"Token {peer.token}"  # Base64 tried first
    assert peer.seen[-1] == f"Token {peer.token}"


def test_a_registration_that_fails_stores_nothing_and_raises(service: Running, peers: list[FakePeer]) -> None:
    peer = FakePeer()
    peers.append(peer)

    async def run() -> None:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            assert service.store is not None
            await registration.register_with(service.store, client, scsp_platform(service.config),
                                             f"{peer.url}/versions", "wrong-token", now=time.time())
        finally:
            await client.aclose()

    with pytest.raises(ClientApiUnusable):
        asyncio.run(run())
    assert service.store is not None and service.store.parties() == []
