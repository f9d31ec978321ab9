"""Sessions and Locations receivers over real HTTP, fed with the spec's own examples."""

from __future__ import annotations

import json
from typing import Any

import httpx

from scsp.records.sessions import SessionKey
from tests.conftest import EXAMPLES, Running, register_party, token_header


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def session_url(service: Running, cc: str = "NL", pid: str = "STK", sid: str = "101") -> str:
    return f"{service.url}/ocpi/2.2.1/sessions/{cc}/{pid}/{sid}"


def test_a_pushed_session_is_created_then_replaced_and_read_back(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, party = register_party(service.store, "NL", "STK")
    auth = token_header(token)
    session = example("session_example_1_simple_start.json")
    created = http.put(session_url(service), json=session, headers=auth)
    assert created.status_code == 201 and created.json()["status_code"] == 1000
    assert "data" not in created.json()  # d2: leave data unset when the spec defines none
    assert created.headers["ocpi-from-party-id"] == "SCP" and created.headers["ocpi-to-party-id"] == "STK"
    session["kwh"] = 3.5
    session["last_updated"] = "2020-03-09T10:30:00Z"
    assert http.put(session_url(service), json=session, headers=auth).status_code == 200
    read = http.get(session_url(service), headers=auth).json()
    assert read["data"]["kwh"] == 3.5 and read["data"]["last_updated"] == "2020-03-09T10:30:00Z"
    stored = service.store.sessions.get(SessionKey(party=party.id, country_code="NL", party_id="STK", session_id="101"))
    assert stored is not None and stored.session.kwh == 3.5


def test_an_older_session_never_overwrites_a_newer_one(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    session = example("session_example_1_simple_start.json")
    session["last_updated"] = "2020-03-09T12:00:00Z"
    session["kwh"] = 9.0
    http.put(session_url(service), json=session, headers=token_header(token)).raise_for_status()
    session["last_updated"] = "2020-03-09T11:00:00Z"
    session["kwh"] = 1.0
    assert http.put(session_url(service), json=session, headers=token_header(token)).json()["status_code"] == 1000
    assert http.get(session_url(service), headers=token_header(token)).json()["data"]["kwh"] == 9.0


def test_a_patch_appends_charging_periods_and_needs_last_updated(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    auth = token_header(token)
    http.put(session_url(service), json=example("session_example_1_simple_start.json"), headers=auth)
    patch = example("session_patch_example_charging_period.json")
    patch["last_updated"] = "2020-03-09T11:00:00Z"
    assert http.patch(session_url(service), json=patch, headers=auth).json()["status_code"] == 1000
    patch["charging_periods"][0]["start_date_time"] = "2020-03-09T11:15:00Z"
    patch["last_updated"] = "2020-03-09T11:15:00Z"
    http.patch(session_url(service), json=patch, headers=auth).raise_for_status()
    data = http.get(session_url(service), headers=auth).json()["data"]
    assert [p["start_date_time"] for p in data["charging_periods"]] == ["2019-06-23T08:16:02Z",
                                                                        "2020-03-09T11:15:00Z"]
    assert data["kwh"] == 15.0 and data["total_cost"] == {"excl_vat": 0.8, "incl_vat": 0.88}
    missing = http.patch(session_url(service), json={"kwh": 1.0}, headers=auth)
    assert missing.json()["status_code"] == 2001 and "last_updated" in missing.json()["status_message"]
    unknown = http.patch(session_url(service, sid="nope"), json=patch, headers=auth)
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 2000


def test_session_urls_must_match_the_body_and_the_callers_roles(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    auth = token_header(token)
    session = example("session_example_1_simple_start.json")
    wrong_id = http.put(session_url(service, sid="999"), json=session, headers=auth)
    assert wrong_id.status_code == 200 and wrong_id.json()["status_code"] == 2001
    assert "id" in wrong_id.json()["status_message"]
    not_mine = http.put(session_url(service, pid="XXX"), json={**session, "party_id": "XXX"}, headers=auth)
    assert not_mine.status_code == 404 and not_mine.json()["status_code"] == 2000
    assert http.get(session_url(service), headers=auth).status_code == 404


def test_a_session_missing_a_required_field_is_refused_and_not_stored(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    session = example("session_example_1_simple_start.json")
    del session["status"]
    reply = http.put(session_url(service), json=session, headers=token_header(token))
    assert reply.json()["status_code"] == 2001 and "status" in reply.json()["status_message"]
    assert service.store.sessions.find()[1] == 0


def location_url(service: Running, *parts: str) -> str:
    return "/".join([f"{service.url}/ocpi/2.2.1/locations/BE/BEC", *parts])


def test_locations_evses_and_connectors_are_pushed_patched_and_read(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, party = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    location = example("location_example.json")
    assert http.put(location_url(service, "LOC1"), json=location, headers=auth).status_code == 201
    facts = {f.uid: f for f in service.store.sessions.evses(location_id="LOC1")}
    assert set(facts) == {e["uid"] for e in location["evses"]}
    first = location["evses"][0]
    assert facts[first["uid"]].phases == 3 and facts[first["uid"]].capable is False

    status = example("location_patch_example_status.json")
    status["last_updated"] = "2030-01-01T00:00:00Z"
    assert http.patch(location_url(service, "LOC1", first["uid"]), json=status, headers=auth).status_code == 200
    evse = http.get(location_url(service, "LOC1", first["uid"]), headers=auth).json()["data"]
    assert evse["status"] == "CHARGING"
    loc = http.get(location_url(service, "LOC1"), headers=auth).json()["data"]
    assert loc["last_updated"] == "2030-01-01T00:00:00Z"  # the parent follows its child

    connector = dict(first["connectors"][0], max_amperage=32, last_updated="2030-01-02T00:00:00Z")
    reply = http.put(location_url(service, "LOC1", first["uid"], connector["id"]), json=connector, headers=auth)
    assert reply.status_code == 200
    assert {f.uid: f for f in service.store.sessions.evses(location_id="LOC1")}[first["uid"]].max_amperage_a == 32
    assert http.get(location_url(service, "LOC1"), headers=auth).json()["data"]["last_updated"] == \
        "2030-01-02T00:00:00Z"

    capable = dict(first, uid="NEW-1", capabilities=["CHARGING_PROFILE_CAPABLE"], last_updated="2030-01-03T00:00:00Z")
    assert http.put(location_url(service, "LOC1", "NEW-1"), json=capable, headers=auth).status_code == 201
    assert {f.uid: f for f in service.store.sessions.evses(location_id="LOC1")}["NEW-1"].capable is True


def test_bad_location_updates_are_refused_whole(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    location = example("location_example.json")
    http.put(location_url(service, "LOC1"), json=location, headers=auth).raise_for_status()
    uid = location["evses"][0]["uid"]
    no_stamp = http.patch(location_url(service, "LOC1", uid), json={"status": "REMOVED"}, headers=auth)
    assert no_stamp.json()["status_code"] == 2001
    bad_value = http.patch(location_url(service, "LOC1", uid),
                           json={"status": "EXPLODED", "last_updated": "2030-01-01T00:00:00Z"}, headers=auth)
    assert bad_value.json()["status_code"] == 2001
    assert http.get(location_url(service, "LOC1", uid), headers=auth).json()["data"]["status"] == "AVAILABLE"
    unknown = http.put(location_url(service, "NOPE", uid), json=location["evses"][0], headers=auth)
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 2003
    # The spec's own "add EVSE" example lacks the connectors' required power fields: refused, not stored.
    add = dict(example("location_put_example_add_evse.json"), uid="9999")
    incomplete = http.put(location_url(service, "LOC1", "9999"), json=add, headers=auth)
    assert incomplete.json()["status_code"] == 2001
    assert http.get(location_url(service, "LOC1", "9999"), headers=auth).status_code == 404


def test_unknown_fields_are_ignored_and_a_missing_z_means_utc(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    session = example("session_example_1_simple_start.json")
    session.update({"a_field_from_ocpi_2_3": {"nested": [1, 2]}, "last_updated": "2020-03-09T10:17:09"})
    session["cdr_token"]["extra"] = "ignored"
    assert http.put(session_url(service), json=session, headers=token_header(token)).status_code == 201
    read = http.get(session_url(service), headers=token_header(token)).json()["data"]
    assert "a_field_from_ocpi_2_3" not in read and "extra" not in read["cdr_token"]
    assert read["last_updated"] == "2020-03-09T10:17:09Z"  # strict writer: UTC with Z


def test_a_location_patch_cannot_move_the_location_to_another_owner(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, party = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    http.put(location_url(service, "LOC1"), json=example("location_example.json"), headers=auth).raise_for_status()
    for field, value in (("party_id", "XYZ"), ("country_code", "DE")):
        reply = http.patch(location_url(service, "LOC1"), json={field: value, "last_updated": "2030-01-01T00:00:00Z"},
                           headers=auth)
        assert reply.status_code == 200 and reply.json()["status_code"] == 2001, field
        assert field in reply.json()["status_message"]
    # Nothing stored half-way: one location, still BE/BEC.
    stored = service.store.sessions.locations(party=party.id)
    assert [(s.location.country_code, s.location.party_id) for s in stored] == \
        [("BE", "BEC")]


def test_older_evse_and_connector_news_never_overwrites_newer(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    location = example("location_example.json")
    http.put(location_url(service, "LOC1"), json=location, headers=auth).raise_for_status()
    first = location["evses"][0]
    uid, connector = first["uid"], first["connectors"][0]
    newer = {"status": "CHARGING", "last_updated": "2031-01-01T00:00:00Z"}
    assert http.patch(location_url(service, "LOC1", uid), json=newer, headers=auth).json()["status_code"] == 1000
    # A PATCH and a PUT of the EVSE stamped earlier are taken (1000) but change nothing.
    older = {"status": "AVAILABLE", "last_updated": "2025-01-01T00:00:00Z"}
    assert http.patch(location_url(service, "LOC1", uid), json=older, headers=auth).json()["status_code"] == 1000
    stale_put = dict(first, status="OUTOFORDER", last_updated="2025-01-02T00:00:00Z")
    assert http.put(location_url(service, "LOC1", uid), json=stale_put, headers=auth).json()["status_code"] == 1000
    evse = http.get(location_url(service, "LOC1", uid), headers=auth).json()["data"]
    assert (evse["status"], evse["last_updated"]) == ("CHARGING", "2031-01-01T00:00:00Z")
    # The same for a connector: a newer PUT wins, an older PATCH does not.
    url = location_url(service, "LOC1", uid, connector["id"])
    http.put(url, json=dict(connector, max_amperage=32, last_updated="2031-02-01T00:00:00Z"),
             headers=auth).raise_for_status()
    http.patch(url, json={"max_amperage": 8, "last_updated": "2025-01-01T00:00:00Z"}, headers=auth).raise_for_status()
    assert http.get(url, headers=auth).json()["data"]["max_amperage"] == 32
    # And for the location itself.
    http.patch(location_url(service, "LOC1"), json={"name": "Old name", "last_updated": "2020-01-01T00:00:00Z"},
               headers=auth).raise_for_status()
    loc = http.get(location_url(service, "LOC1"), headers=auth).json()["data"]
    assert loc.get("name") != "Old name" and loc["last_updated"] == "2031-02-01T00:00:00Z"


def test_a_hub_forwards_the_sessions_of_the_parties_behind_it(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    hub_token, hub = register_party(service.store, "NL", "HUB", role="HUB")
    session = dict(example("session_example_1_simple_start.json"), country_code="NL", party_id="XYZ", id="H1")
    # Only for a party its ClientInfo lists (mod_hub_client_info): not before the Hub reported NL-XYZ.
    reply = http.put(session_url(service, "NL", "XYZ", "H1"), json=session, headers=token_header(hub_token))
    assert reply.status_code == 404
    info = {"country_code": "NL", "party_id": "XYZ", "role": "CPO", "status": "CONNECTED",
            "last_updated": "2026-01-01T00:00:00Z"}
    assert http.put(f"{service.url}/ocpi/2.2.1/hubclientinfo/NL/XYZ", json=info,
                    headers=token_header(hub_token)).status_code == 201
    reply = http.put(session_url(service, "NL", "XYZ", "H1"), json=session, headers=token_header(hub_token))
    assert reply.status_code == 201 and reply.json()["status_code"] == 1000
    key = SessionKey(party=hub.id, country_code="NL", party_id="XYZ", session_id="H1")
    assert service.store.sessions.get(key) is not None
    # A CPO still pushes only its own.
    cpo_token, _ = register_party(service.store, "NL", "CPA")
    foreign = http.put(session_url(service, "NL", "XYZ", "H2"), json=dict(session, id="H2"),
                       headers=token_header(cpo_token))
    assert foreign.status_code == 404 and foreign.json()["status_code"] == 2000
