"""The simulator as an OCPI CPO over HTTP: version details, Locations/Sessions pushed and served, metering."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.cposim.conftest import World, wait_for


def routed_to_us(headers: dict[str, str]) -> bool:
    """Routing headers of a push: FROM the simulator (NL/SIM), TO the SCSP (NL/SCP), with a request id."""
    return (
        (
            headers.get("ocpi-from-country-code"),
            headers.get("ocpi-from-party-id"),
            headers.get("ocpi-to-country-code"),
            headers.get("ocpi-to-party-id"),
        )
        == ("NL", "SIM", "NL", "SCP")
        and bool(headers.get("x-request-id"))
        and bool(headers.get("x-correlation-id"))
        and headers.get("authorization", "").startswith("Token ")
    )


def test_version_details_list_exactly_what_the_simulator_implements(world: World) -> None:
    details = world.ocpi("GET", "").json()["data"]
    assert {(e["identifier"], e["role"]) for e in details["endpoints"]} == {
        ("credentials", "SENDER"),
        ("locations", "SENDER"),
        ("sessions", "SENDER"),
        ("chargingprofiles", "RECEIVER"),
    }
    assert {e["url"] for e in details["endpoints"]} == {
        f"{world.sim_url}/ocpi/2.2.1/{m}"
        for m in ("credentials", "locations", "sessions", "chargingprofiles")
    }
    # Functional modules need a registered party's token.
    assert world.http.get(f"{world.sim_url}/ocpi/2.2.1/sessions").status_code == 401


def test_locations_are_pushed_after_registration_with_routing_headers(world: World) -> None:
    pushes = {r.path: r for r in world.recorder.all("PUT", "locations/")}
    assert set(pushes) == {"/ocpi/2.2.1/locations/NL/SIM/LOC-A", "/ocpi/2.2.1/locations/NL/SIM/LOC-B"}
    for push in pushes.values():
        assert routed_to_us(push.headers)
    loc_a = pushes["/ocpi/2.2.1/locations/NL/SIM/LOC-A"].body
    assert (loc_a["country_code"], loc_a["party_id"], loc_a["id"]) == ("NL", "SIM", "LOC-A")
    evses = {e["uid"]: e for e in loc_a["evses"]}
    assert set(evses) == {"A-AC3", "A-AC1", "A-DC", "A-OLD"}
    assert evses["A-AC3"]["connectors"][0] | {"last_updated": None} == {
        "id": "1",
        "standard": "IEC_62196_T2",
        "format": "SOCKET",
        "power_type": "AC_3_PHASE",
        "max_voltage": 230,
        "max_amperage": 16,
        "last_updated": None,
    }
    assert evses["A-DC"]["connectors"][0]["max_electric_power"] == 50000
    assert "CHARGING_PROFILE_CAPABLE" in evses["A-AC3"]["capabilities"]
    assert "CHARGING_PROFILE_CAPABLE" not in evses["A-OLD"]["capabilities"]
    assert loc_a["last_updated"].endswith("Z") and all(e["status"] == "AVAILABLE" for e in evses.values())


def test_a_session_is_pushed_from_plug_in_through_updates_to_completion(world: World) -> None:
    sid = world.plug("A-AC3")
    base = f"/ocpi/2.2.1/sessions/NL/SIM/{sid}"
    put = wait_for(
        lambda: [r for r in world.recorder.all("PUT", "sessions/") if r.path == base], "the Session PUT"
    )
    assert put[0].body["status"] == "ACTIVE" and put[0].body["id"] == sid and put[0].body["kwh"] == 0.0
    assert (put[0].body["location_id"], put[0].body["evse_uid"], put[0].body["connector_id"]) == (
        "LOC-A",
        "A-AC3",
        "1",
    )
    assert routed_to_us(put[0].headers)
    status = [r for r in world.recorder.all("PATCH", "locations/") if r.path.endswith("/LOC-A/A-AC3")]
    assert status and status[0].path == "/ocpi/2.2.1/locations/NL/SIM/LOC-A/A-AC3"
    assert status[0].body["status"] == "CHARGING" and "last_updated" in status[0].body
    patches = wait_for(
        lambda: (
            [r for r in world.recorder.all("PATCH", "sessions/") if r.path == base][:2] or None
            if len([r for r in world.recorder.all("PATCH", "sessions/") if r.path == base]) >= 2
            else None
        ),
        "two Session PATCHes",
    )
    for patch in patches:
        assert set(patch.body) == {"last_updated", "kwh", "charging_periods"} and routed_to_us(patch.headers)
        (period,) = patch.body["charging_periods"]
        assert {d["type"] for d in period["dimensions"]} == {"ENERGY", "POWER"}
    assert patches[1].body["kwh"] > patches[0].body["kwh"] > 0
    assert (
        patches[1].body["charging_periods"][0]["start_date_time"]
        >= patches[0].body["charging_periods"][0]["start_date_time"]
    )

    final = world.sim("DELETE", f"evs/{sid}")
    assert final["status"] == "COMPLETED" and final["end_date_time"]
    done = wait_for(
        lambda: [
            r
            for r in world.recorder.all("PATCH", "sessions/")
            if r.path == base and r.body.get("status") == "COMPLETED"
        ],
        "the COMPLETED PATCH",
    )
    assert done[0].body["end_date_time"] == final["end_date_time"] and done[0].body["kwh"] == final["kwh"]
    wait_for(
        lambda: [
            r
            for r in world.recorder.all("PATCH", "locations/")
            if r.path.endswith("/A-AC3") and r.body["status"] == "AVAILABLE"
        ],
        "the EVSE AVAILABLE PATCH",
    )
    # A Session PUT always precedes its PATCHes (one ordered sender).
    session_pushes = [r for r in world.recorder.all(prefix="sessions/") if r.path == base]
    assert session_pushes[0].method == "PUT"


def test_a_refused_session_patch_is_followed_by_a_put_of_the_whole_session(world: World) -> None:
    world.recorder.refuse_session_patches = True
    sid = world.plug("A-AC1")
    base = f"/ocpi/2.2.1/sessions/NL/SIM/{sid}"
    puts = wait_for(
        lambda: (
            [r for r in world.recorder.all("PUT", "sessions/") if r.path == base]
            if len([r for r in world.recorder.all("PUT", "sessions/") if r.path == base]) >= 2
            else None
        ),
        "a PUT after the refused PATCH",
    )
    assert puts[-1].body["charging_periods"] and puts[-1].body["kwh"] > 0


def test_sessions_are_served_for_pull_with_pagination_and_date_filter(world: World) -> None:
    ids = [world.plug(uid, "LOC-B") for uid in ("B-AC3-1", "B-AC3-2", "B-AC3-3")]
    first = world.ocpi("GET", "sessions", params={"limit": 2, "date_from": "2000-01-01T00:00:00Z"})
    assert first.status_code == 200 and first.json()["status_code"] == 1000
    assert first.headers["x-total-count"] == "3" and first.headers["x-limit"] == "50"
    assert [s["id"] for s in first.json()["data"]] == ids[:2]  # oldest first
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    next_url = link[1 : link.index(">")]
    query = parse_qs(urlsplit(next_url).query)
    assert (
        query["offset"] == ["2"]
        and query["limit"] == ["2"]
        and query["date_from"] == ["2000-01-01T00:00:00Z"]
    )
    second = world.http.get(
        next_url, headers={"Authorization": world.ocpi("GET", "").request.headers["authorization"]}
    )
    assert [s["id"] for s in second.json()["data"]] == ids[2:] and "link" not in second.headers
    future = world.ocpi("GET", "sessions", params={"date_from": "2999-01-01T00:00:00Z"})
    assert future.json()["data"] == [] and future.headers["x-total-count"] == "0"
    past = world.ocpi("GET", "sessions", params={"date_to": "2000-01-01T00:00:00"})
    assert past.json()["data"] == []
    assert world.ocpi("GET", "sessions", params={"limit": 1000}).headers["x-limit"] == "50"


def test_locations_are_served_as_a_paginated_list_and_one_by_one(world: World) -> None:
    page = world.ocpi("GET", "locations", params={"limit": 1})
    assert [loc["id"] for loc in page.json()["data"]] == ["LOC-A"] and page.headers["x-total-count"] == "2"
    assert "offset=1" in page.headers["link"]
    assert world.ocpi("GET", "locations", params={"offset": 1}).json()["data"][0]["id"] == "LOC-B"
    assert world.ocpi("GET", "locations/LOC-B").json()["data"]["evses"][2]["uid"] == "B-AC3-3"
    evse = world.ocpi("GET", "locations/LOC-A/A-DC").json()["data"]
    assert evse["uid"] == "A-DC" and evse["connectors"][0]["power_type"] == "DC"
    assert world.ocpi("GET", "locations/LOC-A/A-DC/1").json()["data"]["max_electric_power"] == 50000
    unknown = world.ocpi("GET", "locations/NOPE")
    assert unknown.status_code == 404 and unknown.json()["status_code"] == 2003
    assert world.ocpi("GET", "locations/LOC-A/NOPE").status_code == 404
    assert world.ocpi("GET", "locations/LOC-A/A-DC/2").status_code == 404
    # A status change is visible on pull, with the parent's last_updated following the child's.
    world.plug("A-DC")
    loc = world.ocpi("GET", "locations/LOC-A").json()["data"]
    dc = next(e for e in loc["evses"] if e["uid"] == "A-DC")
    assert dc["status"] == "CHARGING" and loc["last_updated"] == dc["last_updated"]


def test_bad_paging_parameters_get_an_ocpi_error_not_a_server_error(world: World) -> None:
    for query in ("offset=-1", "limit=x", "date_from=yesterday", "limit=-5"):
        reply = world.ocpi("GET", f"sessions?{query}")
        assert reply.status_code < 500 and reply.json()["status_code"] == 2001, query


def test_the_meter_sums_the_power_of_every_ev_on_the_site(world: World) -> None:
    world.plug("A-AC3", max_kw=5.0)
    world.plug("A-AC1")
    world.plug("B-AC3-1", "LOC-B", max_kw=11.0)

    def settled() -> dict[str, dict[str, float]] | None:
        state = world.sim("GET", "state")
        meter = world.sim("GET", "meter")
        sums = {"LOC-A": 0.0, "LOC-B": 0.0}
        for ev in state["evs"]:
            sums[ev["location_id"]] += ev["power_w"]
        loads = {s["location_id"]: s for s in meter["sites"]}
        ok = all(loads[k]["load_w"] == pytest.approx(v) for k, v in sums.items())
        return {k: loads[k] for k in sums} if ok and sums["LOC-A"] == 5000 + 7360 else None

    sites = wait_for(settled, "the meter to show the plugged EVs")
    assert sites["LOC-B"]["load_w"] == 11_000
    assert sites["LOC-A"]["peak_w"] >= 12_360
    wait_for(
        lambda: all(s["energy_kwh"] > 0 for s in world.sim("GET", "meter")["sites"]), "energy to be metered"
    )
    meter = world.sim("GET", "meter")
    samples = meter["sites"][0]["samples"]
    assert samples and set(samples[0]) == {"t", "load_w"}
    later = world.sim("GET", "meter", params={"since": samples[-1]["t"]})
    assert len(later["sites"][0]["samples"]) < len(samples) or len(samples) == 1


def test_the_control_api_refuses_a_busy_or_unknown_evse(world: World) -> None:
    world.plug("A-AC3")
    body = {"location_id": "LOC-A", "evse_uid": "A-AC3", "energy_kwh": 5, "max_kw": 7, "departure_s": 60}
    assert world.http.post(f"{world.sim_url}/sim/evs", json=body).status_code == 409
    assert world.http.post(f"{world.sim_url}/sim/evs", json=body | {"evse_uid": "X"}).status_code == 404
    assert world.http.post(f"{world.sim_url}/sim/evs", json=body | {"energy_kwh": -1}).status_code in (
        400,
        422,
    )
    assert world.http.delete(f"{world.sim_url}/sim/evs/unknown").status_code == 404
    too_long = body | {"evse_uid": "A-AC1", "departure_s": 10**12}
    assert world.http.post(f"{world.sim_url}/sim/evs", json=too_long).status_code in (400, 422)
