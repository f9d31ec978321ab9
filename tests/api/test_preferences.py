"""Session preferences over real HTTP, in the OCPI ChargingPreferences shape."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, iso


def prefs_url(api: Api, session_id: str = "S1", cc: str = "NL", pid: str = "CPA") -> str:
    return f"{api.url}/api/v1/sessions/{cc}/{pid}/{session_id}/preferences"


def test_preferences_in_the_ocpi_shape_are_stored_and_read_back(api: Api, client: httpx.Client) -> None:
    departure = iso(time.time() + 4 * 3600)
    # mod_sessions.asciidoc ChargingPreferences, field names verbatim.
    body = {
        "profile_type": "GREEN",
        "departure_time": departure,
        "energy_need": 32.5,
        "discharge_allowed": True,
    }
    reply = client.put(prefs_url(api), json=body, headers=api.auth("aggregator"))
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert {k: answer[k] for k in body} == body
    assert (answer["country_code"], answer["party_id"], answer["session_id"]) == ("NL", "CPA", "S1")
    assert client.get(prefs_url(api), headers=api.auth("dso")).json() == answer
    stored = api.store.grid.preferences("NL", "CPA", "S1")
    assert stored is not None
    assert (stored.profile_type, stored.energy_kwh, stored.discharge_allowed) == ("GREEN", 32.5, True)
    assert stored.departure is not None and iso(int(stored.departure.timestamp())) == departure


def test_only_profile_type_is_required_and_a_put_replaces_everything(api: Api, client: httpx.Client) -> None:
    headers = api.auth("aggregator")
    client.put(
        prefs_url(api),
        json={"profile_type": "FAST", "energy_need": 10, "discharge_allowed": True},
        headers=headers,
    ).raise_for_status()
    reply = client.put(prefs_url(api), json={"profile_type": "CHEAP"}, headers=headers)
    assert reply.json()["departure_time"] is None and reply.json()["energy_need"] is None
    stored = api.store.grid.preferences("nl", "cpa", "S1")  # country code and party id are case-insensitive
    assert stored is not None and (stored.profile_type, stored.energy_kwh, stored.discharge_allowed) == (
        "CHEAP",
        None,
        False,
    )


def test_preferences_of_an_unknown_session_are_kept_without_a_replan(api: Api, client: httpx.Client) -> None:
    client.put(
        prefs_url(api, "LATER"), json={"profile_type": "FAST"}, headers=api.auth("admin")
    ).raise_for_status()
    assert api.store.grid.preferences("NL", "CPA", "LATER") is not None
    assert api.events.calls == []


def test_preferences_of_a_known_session_replan_its_site(api: Api, client: httpx.Client) -> None:
    api.session(session_id="S7", location_id="LOC3")
    client.put(
        prefs_url(api, "S7"), json={"profile_type": "FAST"}, headers=api.auth("aggregator")
    ).raise_for_status()
    assert api.events.calls == ["NL-CPA-LOC3"]


def test_missing_preferences_are_a_404_problem(api: Api, client: httpx.Client) -> None:
    reply = client.get(prefs_url(api, "NOPE"), headers=api.auth("aggregator"))
    assert reply.status_code == 404 and reply.headers["content-type"].startswith("application/problem+json")


INVALID: list[tuple[dict[str, Any], str]] = [
    ({}, "profile_type"),
    ({"profile_type": "SLOW"}, "profile_type"),
    ({"profile_type": "fast"}, "profile_type"),
    ({"profile_type": "FAST", "energy_need": -1}, "energy_need"),
    ({"profile_type": "FAST", "energy_need": 1e6}, "energy_need"),
    ({"profile_type": "FAST", "energy_need": "lots"}, "energy_need"),
    ({"profile_type": "FAST", "departure_time": "2001-01-01T00:00:00Z"}, "departure_time"),
    ({"profile_type": "FAST", "departure_time": "0001-01-01T00:00:00+01:00"}, "departure_time"),
    ({"profile_type": "FAST", "departure_time": "soon"}, "departure_time"),
    ({"profile_type": "FAST", "discharge_allowed": "maybe"}, "discharge_allowed"),
]


@pytest.mark.parametrize(("body", "field"), INVALID, ids=[f"{f}={b.get(f)!r}" for b, f in INVALID])
def test_invalid_preferences_name_the_field_and_store_nothing(
    api: Api, client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    api.session(session_id="S1")
    reply = client.put(prefs_url(api), json=body, headers=api.auth("aggregator"))
    assert reply.status_code == 422, reply.text
    assert field in reply.json()["detail"]
    assert api.store.grid.preferences("NL", "CPA", "S1") is None
    assert api.events.calls == []


@pytest.mark.parametrize(("cc", "pid", "field"), [("NLD", "CPA", "country_code"), ("NL", "CP", "party_id")])
def test_an_invalid_session_path_is_a_422_naming_the_part(
    api: Api, client: httpx.Client, cc: str, pid: str, field: str
) -> None:
    reply = client.put(
        prefs_url(api, cc=cc, pid=pid), json={"profile_type": "FAST"}, headers=api.auth("admin")
    )
    assert reply.status_code == 422 and field in reply.json()["detail"]
