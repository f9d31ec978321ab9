"""Identities bound to connections, and sites bound to one owner: two CPOs, A (NL-ABC) and B (DE-XYZ),
registered with the service over real HTTP through two CPO simulators; a Hub beside them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scsp.api.auth import issue_api_key
from scsp.errors import Conflict
from scsp.records.grid import ApiRole
from scsp.records.parties import Party, PartyStatus, TokenKind
from scsp.store import Store
from tests.conftest import Running, register_party, start_service, start_simulator, token_header
from tests.e2e.test_registration import invite, sim_party

NOW = "2026-12-03T12:00:00Z"


class Tenants:
    """The service with CPO A (NL-ABC) and CPO B (DE-XYZ) registered through invitations."""

    def __init__(self, tmp_path: Path, http: httpx.Client) -> None:
        self.http = http
        self.service = start_service(tmp_path)
        self.a = start_simulator(tmp_path, "ABC", country_code="NL", arrivals=False)
        self.b = start_simulator(tmp_path, "XYZ", country_code="DE", arrivals=False)
        for sim, cc, pid in ((self.a, "NL", "ABC"), (self.b, "DE", "XYZ")):
            token_a = invite(self.service, cc=cc, pid=pid)
            reply = http.post(f"{sim.url}/sim/register", json={"versions_url": self.service.versions_url,
                                                               "token_a": token_a})
            assert reply.status_code == 201, reply.text

    @property
    def store(self) -> Store:
        assert self.service.store is not None
        return self.service.store

    def party(self, handle: str) -> Party:
        return next(p for p in self.store.parties.all(include_unregistered=False) if p.handle == handle)

    def token(self, sim: Running) -> str:
        """The token the CPO calls us with."""
        token = sim_party(sim, "NL-SCP").token_out
        assert token is not None
        return token

    def ocpi(self, method: str, path: str, token: str, body: Any = None,
             headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.request(method, f"{self.service.url}/ocpi/2.2.1/{path}",
                                 headers={**token_header(token), **(headers or {})}, json=body)

    def close(self) -> None:
        for running in (self.service, self.a, self.b):
            running.thread.stop()


@pytest.fixture
def tenants(tmp_path: Path, http: httpx.Client) -> Iterator[Tenants]:
    t = Tenants(tmp_path, http)
    yield t
    t.close()


def role(cc: str, pid: str, kind: str = "CPO") -> dict[str, Any]:
    return {"role": kind, "country_code": cc, "party_id": pid, "business_details": {"name": f"{cc}-{pid}"}}


def location(cc: str, pid: str, location_id: str, address: str) -> dict[str, Any]:
    return {"country_code": cc, "party_id": pid, "id": location_id, "publish": True, "address": address,
            "city": "Town", "country": "NLD", "coordinates": {"latitude": "52.0", "longitude": "5.0"},
            "time_zone": "Europe/Amsterdam", "last_updated": NOW,
            "evses": [{"uid": "E1", "status": "AVAILABLE", "capabilities": ["CHARGING_PROFILE_CAPABLE"],
                       "last_updated": NOW,
                       "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                       "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16,
                                       "last_updated": NOW}]}]}


def session(cc: str, pid: str, session_id: str, location_id: str) -> dict[str, Any]:
    return {"country_code": cc, "party_id": pid, "id": session_id, "start_date_time": NOW, "kwh": 0,
            "cdr_token": {"country_code": cc, "party_id": pid, "uid": "T1", "type": "RFID", "contract_id": "C1"},
            "auth_method": "WHITELIST", "location_id": location_id, "evse_uid": "E1", "connector_id": "1",
            "currency": "EUR", "status": "ACTIVE", "last_updated": NOW}


def test_a_credentials_put_cannot_borrow_another_connections_identity(tenants: Tenants) -> None:
    b_token = tenants.token(tenants.b)
    reply = tenants.ocpi("PUT", "credentials", b_token, {
        "token": "whatever", "url": tenants.b.versions_url, "roles": [role("DE", "XYZ"), role("NL", "ABC")]})
    body = reply.json()
    assert (reply.status_code, body["status_code"]) == (200, 2001), body
    assert "NL-ABC" in body["status_message"] and "another connection" in body["status_message"]
    # Nothing changed: B keeps its token and its identity, and may not push A's objects.
    b = tenants.party("DE-XYZ")
    assert not b.owns("NL", "ABC") and b.identities == []
    pushed = tenants.ocpi("PUT", "locations/NL/ABC/LOC-1", b_token, location("NL", "ABC", "LOC-1", "B street"))
    assert pushed.status_code == 404 and pushed.json()["status_code"] == 2000
    pushed = tenants.ocpi("PUT", "sessions/NL/ABC/S-1", b_token, session("NL", "ABC", "S-1", "LOC-1"))
    assert pushed.status_code == 404
    assert tenants.store.sessions.find()[1] == 0
    assert tenants.store.sessions.location(b.id, "NL", "ABC", "LOC-1") is None


def test_a_credentials_put_cannot_add_a_new_identity_without_the_operator(tenants: Tenants) -> None:
    b_token = tenants.token(tenants.b)
    body = {"token": "whatever", "url": tenants.b.versions_url, "roles": [role("DE", "XYZ"), role("BE", "XYZ")]}
    reply = tenants.ocpi("PUT", "credentials", b_token, body).json()
    assert reply["status_code"] == 2001 and "scsp parties allow DE-XYZ BE-XYZ" in reply["status_message"]
    # The operator may not hand B an identity A holds; it may add one nobody holds.
    b = tenants.party("DE-XYZ")
    with pytest.raises(Conflict):
        tenants.store.parties.allow(b.id, "NL-ABC", now=datetime.now(UTC))
    tenants.store.parties.allow(b.id, "BE-XYZ", now=datetime.now(UTC))
    # Now the PUT goes through (we fetch B's endpoints with the token B gave us).
    assert b.token_out is not None
    reply = tenants.ocpi("PUT", "credentials", b_token, {**body, "token": b.token_out}).json()
    assert reply["status_code"] == 1000, reply
    assert tenants.party("DE-XYZ").owns("BE", "XYZ")
    new_token = reply["data"]["token"]
    assert tenants.ocpi("PUT", "locations/BE/XYZ/LOC-9", new_token,
                        location("BE", "XYZ", "LOC-9", "B road")).status_code == 201
    # Taken away again, B may no longer push for it.
    tenants.store.parties.deny(b.id, "BE-XYZ", now=datetime.now(UTC))
    assert tenants.ocpi("PUT", "locations/BE/XYZ/LOC-9", new_token,
                        location("BE", "XYZ", "LOC-9", "B road")).status_code == 404


def test_a_registration_cannot_borrow_an_identity_either(tenants: Tenants) -> None:
    token_a = invite(tenants.service, cc="FR", pid="NEW")
    reply = tenants.ocpi("POST", "credentials", token_a, {
        "token": "whatever", "url": "http://127.0.0.1:9/versions", "roles": [role("FR", "NEW"), role("NL", "ABC")]})
    body = reply.json()
    assert body["status_code"] == 2001 and "NL-ABC" in body["status_message"], body
    # Refused before anything was stored or fetched: the invitation still stands, A keeps NL-ABC.
    invited = next(p for p in tenants.store.parties.all() if p.handle == "FR-NEW")
    assert invited.status == PartyStatus.INVITED
    assert tenants.party("NL-ABC").status == PartyStatus.REGISTERED
    assert tenants.store.parties.registered("NL", "ABC") == tenants.party("NL-ABC")


def test_an_invitation_may_carry_further_identities(tenants: Tenants) -> None:
    party = tenants.store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="FR",
                                         party_id="TWO", token="tok-two", token_kind=TokenKind.A,
                                         now=datetime.now(UTC), also=["BE-TWO"])
    assert party.identities == ["BE-TWO"]
    with pytest.raises(Conflict):
        tenants.store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="FR", party_id="THR",
                                     token="tok-three", token_kind=TokenKind.A, now=datetime.now(UTC),
                                     also=["DE-XYZ"])
    # The invited peer registers with both identities it was invited with.
    reply = tenants.ocpi("POST", "credentials", "tok-two", {
        "token": "whatever", "url": "http://127.0.0.1:9/versions", "roles": [role("FR", "TWO"), role("BE", "TWO")]})
    # Its versions URL does not answer: 3001, but not for its roles.
    assert reply.json()["status_code"] == 3001, reply.json()


def test_a_hub_forwards_only_the_parties_its_client_info_lists_and_never_into_anothers_site(
        tenants: Tenants) -> None:
    hub_token, hub = register_party(tenants.store, "NL", "HUB", role="HUB")
    a_token = tenants.token(tenants.a)
    # A's own site, as A reported it.
    assert tenants.ocpi("PUT", "locations/NL/ABC/LOC-1", a_token,
                        location("NL", "ABC", "LOC-1", "A street")).status_code == 201
    # The Hub may not push for a party its ClientInfo does not list.
    refused = tenants.ocpi("PUT", "locations/FR/HHH/LOC-H", hub_token, location("FR", "HHH", "LOC-H", "H lane"))
    assert refused.status_code == 404 and "ClientInfo" in refused.json()["status_message"]
    for cc, pid in (("FR", "HHH"), ("NL", "ABC")):
        info = {"country_code": cc, "party_id": pid, "role": "CPO", "status": "CONNECTED", "last_updated": NOW}
        assert tenants.ocpi("PUT", f"hubclientinfo/{cc}/{pid}", hub_token, info).status_code == 201
    routed = {"OCPI-from-country-code": "FR", "OCPI-from-party-id": "HHH",
              "OCPI-to-country-code": "NL", "OCPI-to-party-id": "SCP"}
    assert tenants.ocpi("PUT", "locations/FR/HHH/LOC-H", hub_token, location("FR", "HHH", "LOC-H", "H lane"),
                        headers=routed).status_code == 201
    # The routing headers name the sender: a Hub request from FR-HHH carries FR-HHH's objects only.
    borrowed = tenants.ocpi("PUT", "sessions/NL/ABC/S-H", hub_token, session("NL", "ABC", "S-H", "LOC-1"),
                            headers=routed)
    assert borrowed.status_code == 404 and "routing headers" in borrowed.json()["status_message"]
    # NL-ABC is listed, but its site LOC-1 belongs to the direct connection: refused, nothing stored.
    as_a = {**routed, "OCPI-from-country-code": "NL", "OCPI-from-party-id": "ABC"}
    for path, obj in (("locations/NL/ABC/LOC-1", location("NL", "ABC", "LOC-1", "Hub avenue")),
                      ("sessions/NL/ABC/S-H", session("NL", "ABC", "S-H", "LOC-1"))):
        reply = tenants.ocpi("PUT", path, hub_token, obj, headers=as_a)
        body = reply.json()
        assert (reply.status_code, body["status_code"]) == (200, 2001), body
        assert "NL-ABC-LOC-1 belongs to another connection" in body["status_message"]
    assert tenants.store.sessions.find(party=hub.id)[1] == 0
    # The Hub's objects for its own site are fine; A's session at A's site too.
    assert tenants.ocpi("PUT", "sessions/FR/HHH/S-H", hub_token, session("FR", "HHH", "S-H", "LOC-H"),
                        headers=routed).status_code == 201
    assert tenants.ocpi("PUT", "sessions/NL/ABC/S-1", a_token,
                        session("NL", "ABC", "S-1", "LOC-1")).status_code == 201
    assert tenants.store.sessions.site_owner("NL-ABC-LOC-1") == tenants.party("NL-ABC").id
    assert tenants.store.sessions.site_owner("FR-HHH-LOC-H") == hub.id
    # /api/v1/sites shows each site's own owner's address.
    key, _ = issue_api_key(tenants.store, role=ApiRole.admin, sites=(), label="t", now=datetime.now(UTC))
    api = {"Authorization": f"Bearer {key}"}
    tenants.http.put(f"{tenants.service.url}/api/v1/sites/NL-ABC-LOC-1/grid", headers=api,
                     json={"import_limit_w": 20000})
    sites = {s["site_id"]: s for s in tenants.http.get(f"{tenants.service.url}/api/v1/sites",
                                                       headers=api).raise_for_status().json()}
    assert sites["NL-ABC-LOC-1"]["address"] == "A street"
    assert sites["FR-HHH-LOC-H"]["address"] == "H lane"
    one = tenants.http.get(f"{tenants.service.url}/api/v1/sites/NL-ABC-LOC-1", headers=api).json()
    assert one["address"] == "A street"


def test_a_site_passes_on_only_when_its_owner_unregistered(tenants: Tenants) -> None:
    hub_token, hub = register_party(tenants.store, "NL", "HUB", role="HUB")
    a_token = tenants.token(tenants.a)
    assert tenants.ocpi("PUT", "locations/NL/ABC/LOC-2", a_token,
                        location("NL", "ABC", "LOC-2", "A street")).status_code == 201
    info = {"country_code": "NL", "party_id": "ABC", "role": "CPO", "status": "CONNECTED", "last_updated": NOW}
    tenants.ocpi("PUT", "hubclientinfo/NL/ABC", hub_token, info)
    later = {**location("NL", "ABC", "LOC-2", "Hub avenue"), "last_updated": "2026-12-03T13:00:00Z"}
    assert tenants.ocpi("PUT", "locations/NL/ABC/LOC-2", hub_token, later).json()["status_code"] == 2001
    # A leaves (credentials DELETE): now A's platform reaches us through the Hub.
    assert tenants.ocpi("DELETE", "credentials", a_token).json()["status_code"] == 1000
    assert tenants.ocpi("PUT", "locations/NL/ABC/LOC-2", hub_token, later).status_code == 201
    assert tenants.store.sessions.site_owner("NL-ABC-LOC-2") == hub.id


def test_another_cpos_location_with_the_same_ids_never_counts_at_this_site(tenants: Tenants) -> None:
    """Both simulators name their sites LOC-WORK with the same EVSE uids: B's EVSE reported AVAILABLE
    after A's session started must not end A's session on A's EVSE of that uid."""
    from scsp.planning.gather import gather
    from tests.e2e.test_smart_charging import wait_for

    wait_for(lambda: {f.country_code for f in tenants.store.sessions.evses(location_id="LOC-WORK")} == {"NL", "DE"},
             timeout=30, what="both simulators' LOC-WORK to be pulled")
    uid = next(f.uid for f in tenants.store.sessions.evses(location_id="LOC-WORK") if f.country_code == "NL")
    started = datetime.now(UTC).replace(microsecond=0)
    body = dict(session("NL", "ABC", "S-SAME", "LOC-WORK"), evse_uid=uid, start_date_time=started.isoformat(),
                last_updated=started.isoformat())
    assert tenants.ocpi("PUT", "sessions/NL/ABC/S-SAME", tenants.token(tenants.a), body).status_code == 201
    later = (started.replace(year=started.year + 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    patched = tenants.ocpi("PATCH", f"locations/DE/XYZ/LOC-WORK/{uid}", tenants.token(tenants.b),
                           {"status": "AVAILABLE", "last_updated": later})
    assert patched.json()["status_code"] == 1000
    sites = gather(tenants.store, tenants.service.config, datetime.now(UTC), only={"NL-ABC-LOC-WORK"})
    assert [s.key.session_id for site in sites for s in site.sessions] == ["S-SAME"]
