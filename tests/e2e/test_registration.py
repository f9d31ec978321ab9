"""Registration both ways, rotation and unregistration between the service and the CPO simulator, over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from scsp.app import scsp_platform
from scsp.platform import registration
from scsp.platform.client import OcpiClient
from scsp.records.parties import Party, PartyStatus, TokenKind
from tests.conftest import Running, token_header


def register_service_with_simulator(service: Running, simulator: Running, http: httpx.Client) -> Party:
    invitation = http.post(f"{simulator.url}/sim/invite",
                           json={"country_code": "NL", "party_id": "SCP"}).raise_for_status().json()
    assert invitation["versions_url"] == simulator.versions_url

    async def run() -> Party:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            assert service.store is not None
            return await registration.register_with(service.store.parties, client, scsp_platform(service.config),
                                                    invitation["versions_url"], invitation["token_a"],
                                                    now=datetime.now(UTC))
        finally:
            await client.aclose()

    return asyncio.run(run())


def invite(service: Running, role: str = "CPO", cc: str = "NL", pid: str = "SIM") -> str:
    token = registration.new_token()
    assert service.store is not None
    service.store.parties.create(status=PartyStatus.INVITED, role=role, country_code=cc, party_id=pid,
                               token=token, token_kind=TokenKind.A, now=datetime.now(UTC))
    return token


def sim_party(simulator: Running, handle: str) -> Party:
    assert simulator.store is not None
    return next(p for p in reversed(simulator.store.parties.all()) if p.handle == handle)


def test_the_service_registers_with_the_simulator_and_both_hold_working_tokens(
        service: Running, simulator: Running, http: httpx.Client) -> None:
    party = register_service_with_simulator(service, simulator, http)
    assert (party.handle, party.role, party.status) == ("NL-SIM", "CPO", PartyStatus.REGISTERED)
    assert party.version == "2.2.1" and party.endpoint("credentials")
    assert party.token_base64 is True
    theirs = sim_party(simulator, "NL-SCP")
    assert theirs.status == PartyStatus.REGISTERED and theirs.role == "SCSP"
    # The simulator's token for us (our token B) opens our credentials; ours (token C) opens theirs.
    assert theirs.token_out is not None and party.token_out is not None
    mine = http.get(f"{service.url}/ocpi/2.2.1/credentials", headers=token_header(theirs.token_out)).json()
    assert mine["status_code"] == 1000 and mine["data"]["token"] == theirs.token_out
    assert mine["data"]["roles"][0]["role"] == "SCSP"
    reply = http.get(f"{simulator.url}/ocpi/2.2.1/credentials", headers=token_header(party.token_out))
    assert reply.json()["data"]["roles"][0]["role"] == "CPO"


def test_the_simulator_registers_with_the_service_using_an_invitation(
        service: Running, simulator: Running, http: httpx.Client) -> None:
    token_a = invite(service)
    reply = http.post(f"{simulator.url}/sim/register", json={"versions_url": service.versions_url, "token_a": token_a})
    assert reply.status_code == 201, reply.text
    assert service.store is not None
    ours = next(p for p in service.store.parties.all() if p.handle == "NL-SIM")
    assert ours.status == PartyStatus.REGISTERED and ours.endpoint("credentials")
    # Token A is single use: it no longer opens anything, not even versions.
    assert http.get(service.versions_url, headers=token_header(token_a)).status_code == 401
    again = http.post(f"{service.url}/ocpi/2.2.1/credentials", headers=token_header(token_a),
                      json={"token": "x", "url": simulator.versions_url, "roles": []})
    assert again.status_code == 401


def test_rotation_started_by_us_retires_both_old_tokens(
        service: Running, simulator: Running, http: httpx.Client) -> None:
    party = register_service_with_simulator(service, simulator, http)
    old_sim_token = sim_party(simulator, "NL-SCP").token_out
    assert old_sim_token and party.token_out

    async def run() -> Party:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            assert service.store is not None
            return await registration.rotate(service.store.parties, client, scsp_platform(service.config), party,
                                             now=datetime.now(UTC))
        finally:
            await client.aclose()

    rotated = asyncio.run(run())
    new_sim_token = sim_party(simulator, "NL-SCP").token_out
    assert rotated.token_out and rotated.token_out != party.token_out
    assert new_sim_token and new_sim_token != old_sim_token
    assert http.get(f"{simulator.url}/ocpi/versions", headers=token_header(party.token_out)).status_code == 401
    assert http.get(f"{simulator.url}/ocpi/versions", headers=token_header(rotated.token_out)).status_code == 200
    assert http.get(service.versions_url, headers=token_header(old_sim_token)).status_code == 401
    assert http.get(service.versions_url, headers=token_header(new_sim_token)).status_code == 200


def test_rotation_and_unregistration_started_by_the_peer(
        service: Running, simulator: Running, http: httpx.Client) -> None:
    http.post(f"{simulator.url}/sim/register",
              json={"versions_url": service.versions_url, "token_a": invite(service)}).raise_for_status()
    theirs = sim_party(simulator, "NL-SCP")
    old_token = theirs.token_out
    assert old_token
    http.post(f"{simulator.url}/sim/parties/{theirs.id}/rotate").raise_for_status()
    new_token = sim_party(simulator, "NL-SCP").token_out
    assert new_token and new_token != old_token
    assert http.get(service.versions_url, headers=token_header(old_token)).status_code == 401
    assert http.get(service.versions_url, headers=token_header(new_token)).status_code == 200

    gone = http.post(f"{simulator.url}/sim/parties/{theirs.id}/unregister").raise_for_status().json()
    assert gone["remote_error"] is None and gone["party"]["status"] == "UNREGISTERED"
    assert service.store is not None
    assert next(p for p in service.store.parties.all() if p.handle == "NL-SIM").status == PartyStatus.UNREGISTERED
    # After unregistering, the old token gets 401 everywhere.
    assert http.get(service.versions_url, headers=token_header(new_token)).status_code == 401
    assert http.get(f"{service.url}/ocpi/2.2.1/credentials", headers=token_header(new_token)).status_code == 401


def test_unregistration_started_by_us_stops_the_peer_token(
        service: Running, simulator: Running, http: httpx.Client) -> None:
    party = register_service_with_simulator(service, simulator, http)
    sim_token = sim_party(simulator, "NL-SCP").token_out
    assert sim_token

    async def run() -> tuple[Party, str | None]:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            assert service.store is not None
            return await registration.unregister(service.store.parties, client, party, now=datetime.now(UTC))
        finally:
            await client.aclose()

    updated, problem = asyncio.run(run())
    assert problem is None and updated.status == PartyStatus.UNREGISTERED
    assert sim_party(simulator, "NL-SCP").status == PartyStatus.UNREGISTERED
    assert http.get(service.versions_url, headers=token_header(sim_token)).status_code == 401
    assert party.token_out
    assert http.get(simulator.versions_url, headers=token_header(party.token_out)).status_code == 401


def test_no_token_reaches_the_logs(service: Running, simulator: Running, http: httpx.Client,
                                   caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from scsp.logs import JsonFormatter

    caplog.set_level(logging.DEBUG)
    party = register_service_with_simulator(service, simulator, http)
    theirs = sim_party(simulator, "NL-SCP")
    assert party.token_out and theirs.token_out
    http.get(service.versions_url, headers=token_header(theirs.token_out))
    http.get(service.versions_url, headers={"Authorization": f"Token {theirs.token_out}"})
    http.get(service.versions_url, headers=token_header("some-unknown-token"))
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert "GET /ocpi/versions -> 401" in text  # the service logged those requests
    for secret in (party.token_out, theirs.token_out, "some-unknown-token"):
        assert secret not in text
