"""Strict readers over real HTTP: numbers are finite and in their domain, strings are never numbers or times.

One decoding policy for every OCPI receiver and `/api/v1`: a poisoned value is answered 2001 (OCPI,
HTTP 200 as the spec wants for valid JSON) or 422 (our API) naming the field, and nothing is stored.
"""

from __future__ import annotations

import copy
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.sessions import Session
from scsp.records.commands import ActiveProfileRecord, ProfileSource
from scsp.records.grid import SignalKind, SignalPoint, SiteSettings
from scsp.records.sessions import SessionKey
from tests.conftest import EXAMPLES, Running, register_party, token_header


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def session_doc(sid: str = "101") -> dict[str, Any]:
    doc = example("session_example_1_simple_start.json")
    doc.update(country_code="NL", party_id="STK", id=sid, status="ACTIVE")
    return doc


def put_raw(http: httpx.Client, url: str, body: str, auth: dict[str, str]) -> httpx.Response:
    return http.put(url, content=body.encode(), headers={**auth, "Content-Type": "application/json"})


def set_path(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target: Any = out
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return out


# (name, path into the Session, poisoned value, the field the answer must name)
POISONED_SESSIONS = [
    ("kwh NaN string", ("kwh",), "NaN", "kwh"),
    ("kwh Infinity string", ("kwh",), "Infinity", "kwh"),
    ("kwh -Infinity string", ("kwh",), "-Infinity", "kwh"),
    ("kwh number as string", ("kwh",), "5", "kwh"),
    ("kwh negative", ("kwh",), -1.0, "kwh"),
    ("volume NaN string", ("charging_periods", 0, "dimensions", 0, "volume"), "NaN", "volume"),
    ("total_cost NaN string", ("total_cost", "excl_vat"), "NaN", "excl_vat"),
    ("last_updated integer", ("last_updated",), 123, "last_updated"),
    ("start_date_time integer", ("start_date_time",), 0, "start_date_time"),
]


@pytest.mark.parametrize(("name", "path", "value", "field"), POISONED_SESSIONS, ids=[c[0] for c in POISONED_SESSIONS])
def test_a_poisoned_session_put_is_answered_2001_naming_the_field_and_not_stored(
        service: Running, http: httpx.Client, name: str, path: tuple[str | int, ...], value: Any, field: str) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    doc = session_doc()
    doc["charging_periods"] = [{"start_date_time": "2020-03-09T10:17:09Z",
                                "dimensions": [{"type": "ENERGY", "volume": 1.5}]}]
    doc["total_cost"] = {"excl_vat": 0.5, "incl_vat": 0.6}
    reply = http.put(f"{service.url}/ocpi/2.2.1/sessions/NL/STK/101", json=set_path(doc, path, value),
                     headers=token_header(token))
    assert reply.status_code == 200, name
    assert reply.json()["status_code"] == 2001 and field in reply.json()["status_message"]
    assert service.store.sessions.find()[1] == 0


@pytest.mark.parametrize("literal", ["1e999", "-1e999"])
def test_an_infinite_number_literal_is_refused(service: Running, http: httpx.Client, literal: str) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    body = json.dumps(session_doc()).replace('"kwh": 0.0', f'"kwh": {literal}')
    assert literal in body
    reply = put_raw(http, f"{service.url}/ocpi/2.2.1/sessions/NL/STK/101", body, token_header(token))
    assert reply.json()["status_code"] == 2001 and "kwh" in reply.json()["status_message"]
    assert service.store.sessions.find()[1] == 0


def test_a_nan_literal_is_not_json(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    body = json.dumps(session_doc()).replace('"kwh": 0.0', '"kwh": NaN')
    reply = put_raw(http, f"{service.url}/ocpi/2.2.1/sessions/NL/STK/101", body, token_header(token))
    assert reply.status_code == 400 and reply.json()["status_code"] == 2000
    assert service.store.sessions.find()[1] == 0


def test_a_negative_price_is_a_price(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    doc = dict(session_doc(), total_cost={"excl_vat": -0.25, "incl_vat": -0.3})
    reply = http.put(f"{service.url}/ocpi/2.2.1/sessions/NL/STK/101", json=doc, headers=token_header(token))
    assert reply.status_code == 201 and reply.json()["status_code"] == 1000


def test_a_poisoned_patch_leaves_the_session_readable_and_unchanged(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    url, auth = f"{service.url}/ocpi/2.2.1/sessions/NL/STK/101", token_header(token)
    assert http.put(url, json=session_doc(), headers=auth).status_code == 201
    for patch in ({"kwh": "NaN", "last_updated": "2030-01-01T00:00:00Z"},
                  {"kwh": "7", "last_updated": "2030-01-01T00:00:00Z"},
                  {"kwh": 7.0, "last_updated": 1893456000},
                  {"charging_periods": [{"start_date_time": "2030-01-01T00:00:00Z",
                                         "dimensions": [{"type": "ENERGY", "volume": "Infinity"}]}],
                   "last_updated": "2030-01-01T00:00:00Z"}):
        reply = http.patch(url, json=patch, headers=auth)
        assert reply.status_code == 200 and reply.json()["status_code"] == 2001, patch
    read = http.get(url, headers=auth)
    assert read.status_code == 200 and read.json()["data"]["kwh"] == 0


def location_url(service: Running, *parts: str) -> str:
    return "/".join([f"{service.url}/ocpi/2.2.1/locations/BE/BEC", *parts])


@pytest.mark.parametrize(("field", "value"), [("max_voltage", -230), ("max_voltage", 0), ("max_voltage", "230"),
                                              ("max_amperage", -16), ("max_amperage", "16"),
                                              ("last_updated", 123)])
def test_a_bad_connector_value_is_refused_at_every_level(service: Running, http: httpx.Client, field: str,
                                                         value: Any) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    location = example("location_example.json")
    bad = set_path(location, ("evses", 0, "connectors", 0, field), value)
    whole = http.put(location_url(service, "LOC1"), json=bad, headers=auth)
    assert whole.json()["status_code"] == 2001 and field in whole.json()["status_message"]
    assert http.get(location_url(service, "LOC1"), headers=auth).status_code == 404
    # The same body part is refused the same way where it is the whole body.
    assert http.put(location_url(service, "LOC1"), json=location, headers=auth).status_code == 201
    evse = bad["evses"][0]
    connector = evse["connectors"][0]
    for url, body in ((location_url(service, "LOC1", evse["uid"]), evse),
                      (location_url(service, "LOC1", evse["uid"], connector["id"]), connector)):
        reply = http.put(url, json=body, headers=auth)
        assert reply.json()["status_code"] == 2001 and field in reply.json()["status_message"], url
    stored = http.get(location_url(service, "LOC1"), headers=auth).json()["data"]
    assert stored["evses"][0]["connectors"][0] == location["evses"][0]["connectors"][0]


def test_a_connector_patch_with_a_negative_voltage_is_refused(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    location = example("location_example.json")
    http.put(location_url(service, "LOC1"), json=location, headers=auth).raise_for_status()
    evse = location["evses"][0]
    url = location_url(service, "LOC1", evse["uid"], evse["connectors"][0]["id"])
    reply = http.patch(url, json={"max_voltage": -400, "last_updated": "2030-01-01T00:00:00Z"}, headers=auth)
    assert reply.json()["status_code"] == 2001 and "max_voltage" in reply.json()["status_message"]
    assert http.get(url, headers=auth).json()["data"]["max_voltage"] == evse["connectors"][0]["max_voltage"]


def test_the_store_refuses_a_row_it_could_not_read_back(service: Running) -> None:
    assert service.store is not None
    _, party = register_party(service.store, "NL", "STK")
    good = msgspec.convert(session_doc(), Session)
    for poisoned in (msgspec.structs.replace(good, kwh=math.nan), msgspec.structs.replace(good, kwh=-1.0),
                     msgspec.structs.replace(good, kwh=math.inf)):
        with pytest.raises(msgspec.ValidationError, match="kwh"):
            service.store.sessions.put(party.id, poisoned, now=datetime.now(UTC))
    assert service.store.sessions.find()[1] == 0
    service.store.sessions.put(party.id, good, now=datetime.now(UTC))
    key = SessionKey(party=party.id, country_code="NL", party_id="STK", session_id="101")
    nan_profile = ActiveChargingProfile(
        start_date_time=datetime.now(UTC),
        charging_profile=ChargingProfile(charging_rate_unit=ChargingRateUnit.A,
                                         charging_profile_period=[ChargingProfilePeriod(start_period=0,
                                                                                        limit=math.nan)]))
    with pytest.raises(msgspec.ValidationError, match="limit"):
        service.store.commands.save_active_profile(ActiveProfileRecord(
            id=0, key=key, source=ProfileSource.PUSH, received_at=datetime.now(UTC), profile=nan_profile))
    assert service.store.commands.latest_active_profiles([key]) == {}


def test_the_grid_store_refuses_a_number_sqlite_would_keep_as_null(service: Running) -> None:
    assert service.store is not None
    now = datetime.now(UTC)
    with pytest.raises(msgspec.ValidationError, match="import_limit_w"):
        service.store.grid.put_settings(SiteSettings(site_id="NL-STK-L", import_limit_w=math.nan, updated_at=now))
    assert service.store.grid.settings("NL-STK-L") is None
    point = SignalPoint(kind=SignalKind.IMPORT_LIMIT, source="s", start=now, end=now + timedelta(hours=1),
                        value=math.inf, expires_at=now + timedelta(hours=2), submitted_at=now)
    with pytest.raises(msgspec.ValidationError, match=r"points\[0\]\.value"):
        service.store.grid.replace_signals("NL-STK-L", [point], now=now)
    assert service.store.grid.signals("NL-STK-L", SignalKind.IMPORT_LIMIT, start=now, end=now + timedelta(hours=1),
                                      now=now) == []
