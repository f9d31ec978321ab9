"""Credentials server-side error semantics and client-side token-form detection, against fake peers."""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, route
from litestar.response import Response

from ocpi221.types import InterfaceRole
from ocpi221.versions import Endpoint
from scsp.app import scsp_platform
from scsp.errors import ClientApiUnusable
from scsp.platform import registration
from scsp.platform.client import OcpiClient
from scsp.platform.serving import ServerThread, bind
from scsp.records.parties import PartyStatus, TokenKind
from tests.conftest import Running, register_party, token_header


class FakePeer:
    """A minimal OCPI platform: versions, details and credentials, with knobs for what goes wrong."""

    def __init__(self, *, versions: list[str] = ("2.2.1",), modules: tuple[str, ...] = ("credentials",),  # type: ignore[assignment]
                 raw_only: bool = False, versions_down_after_credentials: bool = False,
                 reply_versions_path: str = "/versions") -> None:
        self.token = "peer-token-a"
        self.raw_only = raw_only
        self.seen: list[str] = []
        # Credentials bodies we received (POST or PUT): the token each one hands the peer.
        self.received: list[dict[str, Any]] = []
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

        @get(["/versions", "/v2/versions"], sync_to_thread=False)
        def versions_handler(request: Request[Any, Any, Any]) -> Response[Any]:
            if versions_down_after_credentials and self.received:
                return envelope(None, 503)
            if not authorised(request):
                return envelope(None, 401)
            return envelope([{"version": v, "url": f"{self.url}/details"} for v in versions])

        @get("/details", sync_to_thread=False)
        def details_handler(request: Request[Any, Any, Any]) -> Response[Any]:
            if not authorised(request):
                return envelope(None, 401)
            return envelope({"version": "2.2.1", "endpoints": [
                {"identifier": m, "role": "SENDER", "url": f"{self.url}/{m}"} for m in modules]})

        @route("/credentials", http_method=["POST", "PUT"], status_code=200)
        async def credentials_handler(request: Request[Any, Any, Any]) -> Response[Any]:
            if not authorised(request):
                return envelope(None, 401)
            self.received.append(await request.json())
            return envelope({"token": "token-c", "url": f"{self.url}{reply_versions_path}", "roles": [
                {"role": "CPO", "party_id": "FAK", "country_code": "NL", "business_details": {"name": "Fake"}}]})

        # logging_config=None: starting this app must not reconfigure logging (and drop caplog's handler).
        app = Litestar([versions_handler, details_handler, credentials_handler], logging_config=None)
        self.thread = ServerThread(app, sock).start()


@pytest.fixture
def peers() -> Iterator[list[FakePeer]]:
    made: list[FakePeer] = []
    yield made
    for peer in made:
        peer.thread.stop()


def invitation(service: Running) -> str:
    assert service.store is not None
    token = f"token-a-{time.monotonic_ns()}"
    service.store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="FAK",
                               token=token, token_kind=TokenKind.A, now=datetime.now(UTC))
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
    assert all(p.status != PartyStatus.REGISTERED for p in service.store.parties.all())  # nothing registered


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
            return await registration.register_with(service.store.parties, client, scsp_platform(service.config),
                                                    f"{peer.url}/versions", peer.token, now=datetime.now(UTC))
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
            await registration.register_with(service.store.parties, client, scsp_platform(service.config),
                                             f"{peer.url}/versions", "wrong-token", now=datetime.now(UTC))
        finally:
            await client.aclose()

    with pytest.raises(ClientApiUnusable):
        asyncio.run(run())
    assert service.store is not None and service.store.parties.all() == []


def client_side(call: Callable[[OcpiClient], Awaitable[Any]]) -> Any:
    """Run one client-side registration coroutine with a fresh OcpiClient."""

    async def run() -> Any:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            return await call(client)
        finally:
            await client.aclose()

    return asyncio.run(run())


def test_a_rotation_whose_endpoint_refetch_fails_keeps_both_new_tokens_and_the_old_endpoints(
        service: Running, http: httpx.Client, peers: list[FakePeer], caplog: pytest.LogCaptureFixture) -> None:
    peer = FakePeer(versions_down_after_credentials=True)
    peers.append(peer)
    peer.token = "peer-token-old"
    assert service.store is not None
    store = service.store
    old_endpoints = [Endpoint(identifier="credentials", role=InterfaceRole.SENDER, url=f"{peer.url}/credentials")]
    old_token, party = register_party(store, "NL", "FAK", endpoints=old_endpoints, token_out=peer.token,
                                      versions_url=f"{peer.url}/versions")

    with caplog.at_level(logging.WARNING, logger="scsp"):
        rotated = client_side(lambda client: registration.rotate(
            store.parties, client, scsp_platform(service.config), party, now=datetime.now(UTC)))

    # The peer took our PUT, so it now calls us with the token we sent and we call it with "token-c".
    assert len(peer.received) == 1
    new_token = peer.received[0]["token"]
    stored = store.parties.get(party.id)
    assert rotated == stored and stored.status == PartyStatus.REGISTERED
    assert stored.token_out == "token-c" and [r.party_id for r in stored.roles] == ["FAK"]
    assert http.get(service.versions_url, headers=token_header(new_token)).status_code == 200
    assert http.get(service.versions_url, headers=token_header(old_token)).status_code == 401
    # Its versions answered 503 afterwards: the endpoints we had are kept, and the problem is a warning.
    assert stored.endpoints == old_endpoints and stored.versions_url == f"{peer.url}/versions"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "scsp.registration"]
    assert warnings and "NL-FAK" in warnings[0].getMessage() and "503" in warnings[0].getMessage()
    logged = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert all(secret not in logged for secret in (new_token, old_token, "token-c", "peer-token-old"))


def test_a_registration_the_peer_accepted_stays_registered_when_a_later_step_fails(
        service: Running, http: httpx.Client, peers: list[FakePeer], caplog: pytest.LogCaptureFixture) -> None:
    # The peer's Credentials name a new versions URL, which then answers 503.
    peer = FakePeer(versions_down_after_credentials=True, reply_versions_path="/v2/versions")
    peers.append(peer)
    assert service.store is not None
    store = service.store

    with caplog.at_level(logging.WARNING, logger="scsp"):
        party = client_side(lambda client: registration.register_with(
            store.parties, client, scsp_platform(service.config), f"{peer.url}/versions", peer.token,
            now=datetime.now(UTC)))

    token_b = peer.received[0]["token"]
    assert [p.id for p in store.parties.all()] == [party.id]
    assert (party.handle, party.status, party.token_out) == ("NL-FAK", PartyStatus.REGISTERED, "token-c")
    # What we know is kept: the endpoints from the versions URL that worked.
    assert party.versions_url == f"{peer.url}/versions"
    assert [e.url for e in party.endpoints] == [f"{peer.url}/credentials"]
    # Token B, which the peer now holds, still opens our registration modules.
    assert http.get(service.versions_url, headers=token_header(token_b)).status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "scsp.registration"]
    assert warnings and "NL-FAK" in warnings[0].getMessage() and "/v2/versions" in warnings[0].getMessage()
    logged = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert all(secret not in logged for secret in (token_b, "token-c", peer.token))


def test_a_peer_registering_with_a_raw_token_a_is_accepted_and_called_back_raw(
        service: Running, http: httpx.Client, peers: list[FakePeer]) -> None:
    peer = FakePeer(raw_only=True)
    peers.append(peer)
    peer.token = "token-b"
    token_a = invitation(service)
    reply = http.post(f"{service.url}/ocpi/2.2.1/credentials", json=credentials_of(peer.url),
                      headers=token_header(token_a, raw=True))
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000, reply.text
    token_c = reply.json()["data"]["token"]
    # The caller sent its token raw, so we called its versions raw first (ocpi-notes §1.1).
    assert peer.seen[0] == "Token token-b"
    assert service.store is not None
    party = next(p for p in service.store.parties.all() if p.handle == "NL-FAK")
    assert party.status == PartyStatus.REGISTERED and party.token_base64 is False and party.token_out == "token-b"
    assert http.get(service.versions_url, headers=token_header(token_c, raw=True)).status_code == 200
    assert http.get(service.versions_url, headers=token_header(token_a, raw=True)).status_code == 401


def test_a_registration_waiting_for_the_database_does_not_stall_other_requests(
        service: Running, http: httpx.Client, peers: list[FakePeer]) -> None:
    peer = FakePeer()
    peers.append(peer)
    peer.token = "token-b"
    token_a = invitation(service)
    # Another writer (the CLI, a scheduler thread) holds the write lock while the POST is handled.
    blocker = sqlite3.connect(service.config.db_path)
    blocker.execute("BEGIN IMMEDIATE")
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            posted = pool.submit(http.post, f"{service.url}/ocpi/2.2.1/credentials",
                                 json=credentials_of(peer.url), headers=token_header(token_a))
            deadline = time.monotonic() + 10
            while len(peer.seen) < 2 and time.monotonic() < deadline:  # versions and details fetched
                time.sleep(0.02)
            time.sleep(0.3)  # the handler is now waiting for the lock
            assert not posted.done()
            # A deadline for a hang, not a speed figure: a blocked event loop would never answer.
            health = http.get(f"{service.url}/healthz", timeout=5)
            assert health.status_code == 200
        finally:
            blocker.rollback()
            blocker.close()
        reply = posted.result(timeout=30)
    assert reply.json()["status_code"] == 1000, reply.text
