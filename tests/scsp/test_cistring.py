"""CiString ids (types.asciidoc: "case-insensitive") are one object whatever their case, over real HTTP.

Sessions, locations, EVSE uids and connector ids are keys; `…/case-1` and `…/CASE-1` address one
object, which keeps the spelling it was first received with.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, Running, register_party, token_header


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def session(sid: str, last_updated: str, kwh: float, **changes: Any) -> dict[str, Any]:
    doc = example("session_example_1_simple_start.json")
    doc.update(country_code="NL", party_id="STK", id=sid, last_updated=last_updated, kwh=kwh, **changes)
    return doc


def test_case_variants_of_a_session_id_are_one_session(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    auth, base = token_header(token), f"{service.url}/ocpi/2.2.1/sessions/NL/STK"
    assert http.put(f"{base}/case-1", json=session("case-1", "2030-01-01T00:00:00Z", 1.0),
                    headers=auth).status_code == 201
    again = http.put(f"{base}/CASE-1", json=session("CASE-1", "2030-01-01T00:01:00Z", 2.0), headers=auth)
    assert again.status_code == 200 and again.json()["status_code"] == 1000  # updated, not created
    assert service.store.sessions.find()[1] == 1
    read = http.get(f"{base}/Case-1", headers=auth)
    assert read.status_code == 200 and read.json()["data"]["kwh"] == 2.0
    assert read.json()["data"]["id"] == "case-1"  # the spelling first received
    patched = http.patch(f"{base}/CASE-1", json={"kwh": 3.0, "last_updated": "2030-01-01T00:02:00Z"}, headers=auth)
    assert patched.json()["status_code"] == 1000
    assert http.get(f"{base}/case-1", headers=auth).json()["data"]["kwh"] == 3.0
    # The body's id may differ from the URL's in case only.
    mixed = http.put(f"{base}/case-1", json=session("CaSe-1", "2030-01-01T00:03:00Z", 4.0), headers=auth)
    assert mixed.status_code == 200 and mixed.json()["status_code"] == 1000
    assert service.store.sessions.find()[1] == 1


def test_a_session_at_a_location_spelled_otherwise_is_planned_in_that_locations_site(
        service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    auth = token_header(token)
    location = example("location_example.json")
    location.update(country_code="NL", party_id="STK", id="Loc-A")
    assert http.put(f"{service.url}/ocpi/2.2.1/locations/NL/STK/Loc-A", json=location,
                    headers=auth).status_code == 201
    again = http.put(f"{service.url}/ocpi/2.2.1/locations/NL/STK/LOC-A", json=dict(location, id="LOC-A"),
                     headers=auth)
    assert again.status_code == 200
    assert [s.location.id for s in service.store.sessions.locations()] == ["Loc-A"]
    uid = location["evses"][0]["uid"]
    doc = session("S-1", "2030-01-01T00:00:00Z", 0.0, location_id="loc-a", evse_uid=uid.lower(), status="ACTIVE")
    assert http.put(f"{service.url}/ocpi/2.2.1/sessions/NL/STK/S-1", json=doc, headers=auth).status_code == 201
    [stored] = service.store.sessions.find()[0]
    assert stored.site == "NL-STK-Loc-A" and stored.session.evse_uid == uid
    connector = location["evses"][0]["connectors"][0]
    path = f"{service.url}/ocpi/2.2.1/locations/NL/STK/LOC-A/{uid.lower()}/{connector['id'].lower()}"
    assert http.get(path, headers=auth).status_code == 200


def test_an_active_profile_finds_its_session_whatever_the_case(service: Running, http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    auth = token_header(token)
    http.put(f"{service.url}/ocpi/2.2.1/sessions/NL/STK/abc-1",
             json=session("abc-1", "2030-01-01T00:00:00Z", 0.0, status="ACTIVE"), headers=auth).raise_for_status()
    active = {"start_date_time": "2030-01-01T00:00:00Z",
              "charging_profile": {"charging_rate_unit": "A",
                                   "charging_profile_period": [{"start_period": 0, "limit": 16.0}]}}
    reply = http.put(f"{service.url}/ocpi/2.2.1/chargingprofiles/ABC-1", json=active, headers=auth)
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000


def test_the_database_itself_refuses_a_second_spelling_of_a_key(service: Running) -> None:
    assert service.store is not None
    _, party = register_party(service.store, "NL", "STK")
    conn = sqlite3.connect(service.store.path)
    try:
        row = [party.id, "NL", "STK", "x-1", "{}", "ACTIVE", "L", "E", "1", 0.0, 0, 0, 0]
        sql = ("INSERT INTO sessions (party, country_code, party_id, id, doc, status, location_id, evse_uid, "
               "connector_id, kwh, start_ts, last_updated, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        conn.execute(sql, row)
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute(sql, [*row[:3], "X-1", *row[4:]])
    finally:
        conn.rollback()
        conn.close()


def test_the_migration_merges_rows_that_differed_only_in_case(tmp_path: Path) -> None:
    from scsp.store import Store
    from scsp.store.migrations import migrations

    store = Store(tmp_path / "old.db")
    conn = store.db.connect()
    migrations.apply(conn, stop_before="m007_cistring_nocase_keys")
    conn.close()
    raw = sqlite3.connect(store.path)
    # What the code of that version stored: the columns of m001 (later ones may not exist yet).
    party_id = raw.execute("INSERT INTO parties (role, country_code, party_id, status, roles, created_at, "
                           "updated_at) VALUES ('CPO', 'NL', 'STK', 'REGISTERED', '[]', 1, 1)").lastrowid
    sql = ("INSERT INTO sessions (party, country_code, party_id, id, doc, status, location_id, evse_uid, "
           "connector_id, kwh, start_ts, last_updated, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for sid in ("dup-1", "DUP-1"):
        raw.execute(sql, [party_id, "NL", "STK", sid, "{}", "ACTIVE", "L", "E", "1", 0.0, 0, 0, 0])
    raw.commit()
    raw.close()
    assert store.migrate()[0] == "m007_cistring_nocase_keys"
    raw = sqlite3.connect(store.path)
    try:
        assert raw.execute("SELECT id FROM sessions").fetchall() == [("DUP-1",)]  # the newest stays
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        raw.close()
