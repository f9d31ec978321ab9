"""Our ChargingProfiles Sender interface and the HubClientInfo receiver, over real HTTP."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from scsp.records.commands import Command, CommandKind, CommandState
from scsp.records.sessions import SessionKey
from tests.conftest import EXAMPLES, Running, register_party, token_header

# A fixed time long past, where a test needs some time and the value does not matter.
EPOCH1 = datetime.fromtimestamp(1, UTC)


def put_session(service: Running, http: httpx.Client, token: str, sid: str = "S1") -> None:
    doc = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id=sid, status="ACTIVE")
    http.put(f"{service.url}/ocpi/2.2.1/sessions/NL/CPA/{sid}", json=doc, headers=token_header(token)
             ).raise_for_status()


def command(service: Running, party: int, kind: str, sid: str = "S1") -> Command:
    assert service.store is not None
    profile = ChargingProfile(charging_rate_unit=ChargingRateUnit.A, start_date_time=None,
                              charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=10.0)])
    cmd = Command(id=uuid.uuid4().hex, kind=CommandKind(kind),
                  key=SessionKey(party=party, country_code="NL", party_id="CPA", session_id=sid),
                  state=CommandState.PENDING, created_at=datetime.now(UTC), profile=profile if kind == "set" else None)
    assert service.store.commands.create(cmd)
    service.store.commands.record_response(cmd.id, response="ACCEPTED", timeout_s=30, now=datetime.now(UTC))
    return cmd


def test_results_are_taken_bare_or_wrapped_and_told_apart_by_the_url(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, party = register_party(service.store, "NL", "CPA")
    put_session(service, http, token)
    set_cmd = command(service, party.id, "set")
    url = f"{service.url}/ocpi/2.2.1/chargingprofiles/results/{set_cmd.id}"
    reply = http.post(url, json={"result": "ACCEPTED"}, headers=token_header(token))
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000 and "data" not in reply.json()
    assert reply.headers["ocpi-to-party-id"] == "CPA"  # a functional module: routing headers
    stored = service.store.commands.get(set_cmd.id)
    assert stored is not None and (stored.state, stored.result) == ("completed", "ACCEPTED")
    key = SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id="S1")
    assert service.store.commands.control(key).accepted_profile == set_cmd.profile

    clear_cmd = command(service, party.id, "clear")
    wrapped = {"data": {"result": "ACCEPTED"}, "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"}
    reply = http.post(f"{service.url}/ocpi/2.2.1/chargingprofiles/results/{clear_cmd.id}", json=wrapped,
                      headers=token_header(token))
    assert reply.json()["status_code"] == 1000
    assert service.store.commands.control(key).accepted_profile is None  # cleared

    get_cmd = command(service, party.id, "get")
    active = {"result": "ACCEPTED", "profile": {"start_date_time": "2026-01-01T10:00:00", "charging_profile": {
        "charging_rate_unit": "A", "charging_profile_period": [{"start_period": 0, "limit": 16}]}}}
    reply = http.post(f"{service.url}/ocpi/2.2.1/chargingprofiles/results/{get_cmd.id}", json=active,
                      headers=token_header(token))
    assert reply.json()["status_code"] == 1000
    [record] = service.store.commands.active_profiles()
    assert record.source == "get" and record.profile.charging_profile.charging_profile_period[0].limit == 16


def test_bad_or_foreign_results_get_an_ocpi_error_never_a_server_error(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, party = register_party(service.store, "NL", "CPA")
    other, _ = register_party(service.store, "NL", "CPB")
    put_session(service, http, token)
    cmd = command(service, party.id, "set")
    url = f"{service.url}/ocpi/2.2.1/chargingprofiles/results/{cmd.id}"
    unknown = http.post(f"{service.url}/ocpi/2.2.1/chargingprofiles/results/nope", json={"result": "ACCEPTED"},
                        headers=token_header(token))
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 2000
    foreign = http.post(url, json={"result": "ACCEPTED"}, headers=token_header(other))
    assert foreign.status_code == 404  # another CPO cannot answer our request to this one
    invalid = http.post(url, json={"result": "MAYBE"}, headers=token_header(token))
    assert invalid.status_code == 200 and invalid.json()["status_code"] == 2001
    stored = service.store.commands.get(cmd.id)
    assert stored is not None and stored.state == "awaiting_result"  # nothing stored half-way


def test_an_active_profile_push_is_recorded_and_unknown_sessions_are_an_error(
        service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, party = register_party(service.store, "NL", "CPA")
    put_session(service, http, token)
    body = {"start_date_time": "2026-01-01T10:00:00Z", "charging_profile": {
        "charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0, "limit": 7400.0}]}}
    reply = http.put(f"{service.url}/ocpi/2.2.1/chargingprofiles/S1", json=body, headers=token_header(token))
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000 and "data" not in reply.json()
    [record] = service.store.commands.active_profiles()
    assert (record.source, record.key.session_id, record.verdict) == ("push", "S1", None)  # no plan yet
    unknown = http.put(f"{service.url}/ocpi/2.2.1/chargingprofiles/NOPE", json=body, headers=token_header(token))
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 2000


def test_token_a_and_pending_tokens_never_open_a_functional_module(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    from scsp.records.parties import PartyStatus, TokenKind

    service.store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="INV",
                               token="token-a", token_kind=TokenKind.A, now=EPOCH1)
    service.store.parties.create(status=PartyStatus.PENDING, role="?", country_code="??", party_id="???",
                               token="token-b", token_kind=TokenKind.C, now=EPOCH1)
    for token in ("token-a", "token-b"):
        for method, path in (("GET", "/ocpi/2.2.1/sessions/NL/INV/1"), ("PUT", "/ocpi/2.2.1/chargingprofiles/1"),
                             ("PUT", "/ocpi/2.2.1/hubclientinfo/NL/INV")):
            reply = http.request(method, service.url + path, headers=token_header(token), json={})
            assert reply.status_code == 401 and reply.json()["status_code"] == 2000, (token, path)
        assert http.get(service.versions_url, headers=token_header(token)).status_code == 200


def client_info(status: str, stamp: str) -> dict[str, str]:
    return {"party_id": "CPA", "country_code": "NL", "role": "CPO", "status": status, "last_updated": stamp}


def test_a_hub_reporting_a_party_offline_stops_its_traffic_until_it_is_back(
        service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    hub_token, hub = register_party(service.store, "NL", "HUB", role="HUB")
    url = f"{service.url}/ocpi/2.2.1/hubclientinfo/NL/CPA"
    reply = http.put(url, json=client_info("OFFLINE", "2026-01-01T10:00:00Z"), headers=token_header(hub_token))
    assert reply.status_code == 201 and reply.json()["status_code"] == 1000
    assert not [h for h in reply.headers if h.lower().startswith("ocpi-")]  # configuration module: no routing
    assert service.store.sync.offline_parties() == {(hub.id, "NL", "CPA")}
    assert http.get(url, headers=token_header(hub_token)).json()["data"]["status"] == "OFFLINE"
    # Older news never overwrites newer.
    http.put(url, json=client_info("CONNECTED", "2026-01-01T09:00:00Z"), headers=token_header(hub_token))
    assert service.store.sync.offline_parties() == {(hub.id, "NL", "CPA")}
    service.store.sync.resynced(hub.id)
    http.put(url, json=client_info("CONNECTED", "2026-01-01T11:00:00Z"), headers=token_header(hub_token))
    assert service.store.sync.offline_parties() == set()
    assert service.store.sync.state(hub.id).needs_resync  # back: resync by GET
    mismatch = http.put(url, json={**client_info("CONNECTED", "2026-01-01T12:00:00Z"), "party_id": "XYZ"},
                        headers=token_header(hub_token))
    assert mismatch.json()["status_code"] == 2001


def test_only_a_hub_may_report_client_info(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    cpo_token, _ = register_party(service.store, "NL", "CPB")
    _, victim = register_party(service.store, "NL", "CPA")
    url = f"{service.url}/ocpi/2.2.1/hubclientinfo/NL/CPA"
    reply = http.put(url, json=client_info("OFFLINE", "2026-01-01T10:00:00Z"), headers=token_header(cpo_token))
    assert reply.status_code == 404 and reply.json()["status_code"] == 2000
    assert http.get(url, headers=token_header(cpo_token)).status_code == 404
    # The directly connected party keeps its traffic.
    assert service.store.sync.offline_parties() == set()
    assert service.store.parties.get(victim.id).reachable
