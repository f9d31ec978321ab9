"""Failure containment: one site's bad data (an old or corrupt row in the real SQLite file) never stops another.

The bad rows are written straight into the temp database file, as an older version or a damaged
file would leave them; the planner, the lists and the receivers must go on for everyone else.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from prometheus_client import generate_latest

from ocpi221.locations import Location
from ocpi221.sessions import Session
from scsp.config import Config, OptimizerConfig, PlanningConfig
from scsp.faults import PlanningStage
from scsp.metrics import registry_for
from scsp.records.grid import SiteSettings
from scsp.store import Store
from tests.conftest import EXAMPLES, Running, register_party, token_header
from tests.scsp.test_engine import EPOCH1, plan_once

SITE_A, SITE_B = "NL-CPA-LOC1", "DE-XYZ-LOC2"


def add_site(store: Store, cc: str, pid: str, location_id: str, n: int) -> None:
    """A CPO's location with `n` capable AC EVSEs, each with an active session, and a 30 kW limit."""
    found = store.parties.registered(cc, pid)
    party = found if found is not None else register_party(store, cc, pid)[1]
    evses = [{"uid": f"E{i}", "status": "CHARGING", "last_updated": "2026-11-25T10:00:00Z",
              "capabilities": ["CHARGING_PROFILE_CAPABLE"],
              "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                              "max_voltage": 230, "max_amperage": 16, "last_updated": "2026-11-25T10:00:00Z"}]}
             for i in range(n)]
    doc = json.loads((EXAMPLES / "location_example.json").read_text())
    doc.update(country_code=cc, party_id=pid, id=location_id, evses=evses)
    store.sessions.put_location(party.id, msgspec.convert(doc, Location))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(n):
        s = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
        s.update(country_code=cc, party_id=pid, id=f"{location_id}-S{i}", evse_uid=f"E{i}", location_id=location_id,
                 status="ACTIVE", kwh=0.0, start_date_time=stamp, last_updated=stamp)
        store.sessions.put(party.id, msgspec.convert(s, Session), now=datetime.now(UTC))
    store.grid.put_settings(SiteSettings(site_id=f"{cc}-{pid}-{location_id}", import_limit_w=30_000.0,
                                         failsafe_w=9_000.0, updated_at=EPOCH1))


def two_sites(tmp_path: Path) -> tuple[Store, Config]:
    store = Store(tmp_path / "scsp.db")
    store.migrate()
    add_site(store, "NL", "CPA", "LOC1", 3)
    add_site(store, "DE", "XYZ", "LOC2", 2)
    config = Config(db_path=str(tmp_path / "scsp.db"), planning=PlanningConfig(horizon_h=2.0, slot_minutes=15),
                    optimizer=OptimizerConfig(executor="thread", workers=1))  # type: ignore[arg-type]
    return store, config


def corrupt(path: Path, sql: str, *args: object) -> None:
    """Write into the SQLite file behind the service's back (an old or damaged row)."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute(sql, args).rowcount >= 1
        conn.commit()
    finally:
        conn.close()


def poisoned_doc(store: Store, session_id: str) -> str:
    """The stored JSON of a session with `kwh` null: what a NaN became before the store validated."""
    [row] = [r for r in store.sessions.find()[0] if r.session.id == session_id]
    doc = msgspec.json.decode(msgspec.json.encode(row.session))
    doc["kwh"] = None
    return json.dumps(doc)


def test_an_unreadable_session_row_is_skipped_and_every_site_is_planned(tmp_path: Path) -> None:
    store, config = two_sites(tmp_path)
    corrupt(store.path, "UPDATE sessions SET doc = ? WHERE id = 'LOC1-S0'", poisoned_doc(store, "LOC1-S0"))
    plans = {p.site_id: p for p in plan_once(store, config)}
    assert set(plans) == {SITE_A, SITE_B}
    assert {s.key.session_id for s in plans[SITE_B].sessions} == {"LOC2-S0", "LOC2-S1"}
    # A's readable sessions are planned too; the bad one is left out, logged and counted.
    assert {s.key.session_id for s in plans[SITE_A].sessions} == {"LOC1-S1", "LOC1-S2"}
    assert store.faults.unreadable_rows()["sessions"] >= 1
    assert store.sessions.find()[1] == 5 and len(store.sessions.find()[0]) == 4


def test_a_site_whose_gathering_fails_keeps_its_plan_and_the_others_are_planned(tmp_path: Path) -> None:
    store, config = two_sites(tmp_path)
    first = {p.site_id: p for p in plan_once(store, config)}
    assert set(first) == {SITE_A, SITE_B}
    corrupt(store.path, "UPDATE site_settings SET phase_assignment = '{not json' WHERE site_id = ?", SITE_A)
    add_site(store, "DE", "XYZ", "LOC2", 3)  # B gets a third EV meanwhile
    second = {p.site_id: p for p in plan_once(store, config)}
    assert set(second) == {SITE_B}
    assert {s.key.session_id for s in second[SITE_B].sessions} == {"LOC2-S0", "LOC2-S1", "LOC2-S2"}
    kept = store.plans.latest(SITE_A)
    assert kept is not None and kept.id == first[SITE_A].id  # A keeps its previous plan
    assert store.faults.site_failures() == {(SITE_A, PlanningStage.GATHER): 1}


def test_an_unreadable_session_never_answers_500_and_the_owner_can_repair_it(service: Running,
                                                                             http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "NL", "STK")
    auth = token_header(token)
    url = f"{service.url}/ocpi/2.2.1/sessions/NL/STK/101"
    session = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    assert http.put(url, json=session, headers=auth).status_code == 201
    corrupt(service.store.path, "UPDATE sessions SET doc = ? WHERE id = '101'", poisoned_doc(service.store, "101"))
    assert http.get(url, headers=auth).status_code == 404
    patch = {"kwh": 2.0, "last_updated": "2030-01-01T00:00:00Z"}
    assert http.patch(url, json=patch, headers=auth).status_code == 404
    assert http.put(url, json=dict(session, kwh=1.5), headers=auth).status_code in (200, 201)
    repaired = http.get(url, headers=auth)
    assert repaired.status_code == 200 and repaired.json()["data"]["kwh"] == 1.5
    metrics = http.get(f"{service.url}/metrics").text
    assert 'scsp_unreadable_rows_total{table="sessions"}' in metrics


def test_an_unreadable_control_row_costs_only_its_session_and_failures_reach_metrics(tmp_path: Path) -> None:
    store, config = two_sites(tmp_path)
    plan_once(store, config)
    corrupt(store.path, "INSERT INTO session_control (party, country_code, party_id, session_id, sent_profile) "
            "SELECT party, country_code, party_id, id, '{\"charging_rate_unit\": \"A\", \"charging_profile_period\": "
            "[{\"start_period\": 0, \"limit\": null}]}' FROM sessions WHERE id = 'LOC1-S0' "
            "ON CONFLICT DO UPDATE SET sent_profile = excluded.sent_profile")
    corrupt(store.path, "UPDATE site_settings SET phase_assignment = '[' WHERE site_id = ?", SITE_B)
    plans = {p.site_id: p for p in plan_once(store, config)}
    assert set(plans) == {SITE_A}  # B's gathering failed; A is planned with every session
    assert {s.key.session_id for s in plans[SITE_A].sessions} == {"LOC1-S0", "LOC1-S1", "LOC1-S2"}
    registry, _ = registry_for(store)
    text = generate_latest(registry).decode()
    assert 'scsp_unreadable_rows_total{table="session_control"} 1.0' in text
    assert f'scsp_site_planning_failures_total{{site="{SITE_B}",stage="gather"}} 1.0' in text


def test_an_unreadable_location_is_absent_for_lookups_and_repaired_by_its_owner(service: Running,
                                                                                http: httpx.Client) -> None:
    assert service.store is not None
    token, _ = register_party(service.store, "BE", "BEC")
    auth = token_header(token)
    location = json.loads((EXAMPLES / "location_example.json").read_text())
    url = f"{service.url}/ocpi/2.2.1/locations/BE/BEC/LOC1"
    assert http.put(url, json=location, headers=auth).status_code == 201
    corrupt(service.store.path, "UPDATE locations SET doc = '{\"id\": null}' WHERE id = 'LOC1'")
    assert service.store.sessions.locations() == []
    assert http.get(url, headers=auth).status_code == 404
    evse = location["evses"][0]
    assert http.get(f"{url}/{evse['uid']}", headers=auth).status_code == 404
    assert http.put(url, json=location, headers=auth).status_code in (200, 201)
    assert http.get(f"{url}/{evse['uid']}", headers=auth).json()["data"]["uid"] == evse["uid"]
    assert service.store.faults.unreadable_rows()["locations"] >= 1
