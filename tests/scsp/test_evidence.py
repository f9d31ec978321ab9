"""Evidence, not memory (README "Evidence"): which sessions the planner counts, after real OCPI pushes.

A registered CPO pushes Locations and Sessions to the running service over HTTP; the planner's
view is then read with `gather` on the service's own SQLite file at a chosen `now`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec

from scsp.config import Config, PlanningConfig
from scsp.planning import gather
from scsp.planning.gather import SiteInput
from scsp.records.commands import NotSteered, SessionEnd
from scsp.records.sessions import SessionKey
from scsp.store import Store
from tests.conftest import EXAMPLES, Running, register_party, token_header

SITE = "NL-CPA-LOC1"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def evse(uid: str, *, status: str = "CHARGING", capable: bool = True, updated: datetime, amps: int = 16
         ) -> dict[str, Any]:
    return {"uid": uid, "status": status, "last_updated": iso(updated),
            "capabilities": ["CHARGING_PROFILE_CAPABLE"] if capable else [],
            "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                            "max_voltage": 230, "max_amperage": amps, "last_updated": iso(updated)}]}


def location_doc(evses: list[dict[str, Any]], updated: datetime) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / "location_example.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id="LOC1", evses=evses, last_updated=iso(updated))
    return doc


def session_doc(sid: str, evse_uid: str, *, start: datetime, updated: datetime, kwh: float = 1.0
                ) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id=sid, location_id="LOC1", evse_uid=evse_uid, connector_id="1",
               kwh=kwh, status="ACTIVE", start_date_time=iso(start), last_updated=iso(updated))
    return doc


class Cpo:
    """A registered CPO (NL-CPA) pushing over real HTTP."""

    def __init__(self, service: Running, http: httpx.Client, store: Store) -> None:
        self.token, self.party = register_party(store, "NL", "CPA")
        self.service, self.http = service, http

    def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        reply = self.http.put(f"{self.service.url}/ocpi/2.2.1/{path}", json=body, headers=token_header(self.token))
        assert reply.status_code in (200, 201), reply.text
        return reply

    def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        reply = self.http.patch(f"{self.service.url}/ocpi/2.2.1/{path}", json=body, headers=token_header(self.token))
        assert reply.status_code == 200, reply.text
        return reply

    def location(self, evses: list[dict[str, Any]], updated: datetime) -> None:
        self.put("locations/NL/CPA/LOC1", location_doc(evses, updated))

    def session(self, doc: dict[str, Any]) -> None:
        self.put(f"sessions/NL/CPA/{doc['id']}", doc)

    def key(self, sid: str) -> SessionKey:
        return SessionKey(party=self.party.id, country_code="NL", party_id="CPA", session_id=sid)


def config(**planning: Any) -> Config:
    return Config(planning=PlanningConfig(**{"horizon_h": 1.0, "slot_minutes": 15, **planning}))


def site(store: Store, now: datetime, **planning: Any) -> SiteInput:
    sites = gather.gather(store, config(**planning), now)
    return next(s for s in sites if s.site_id == SITE)


def planned(store: Store, now: datetime, **planning: Any) -> set[str]:
    return {p.key.session_id for p in site(store, now, **planning).sessions}


def store_of(service: Running) -> Store:
    assert service.store is not None
    return service.store


def test_a_newer_session_on_the_same_evse_ends_the_older_whatever_its_connection(
        service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    cpo = Cpo(service, http, store)
    cpo.location([evse("E1", updated=now - timedelta(hours=3)), evse("E2", updated=now - timedelta(hours=3))],
                 now - timedelta(hours=3))
    cpo.session(session_doc("OLD", "E1", start=now - timedelta(hours=2), updated=now - timedelta(minutes=5)))
    cpo.session(session_doc("OTHER", "E2", start=now - timedelta(hours=2), updated=now - timedelta(minutes=5)))
    assert planned(store, now) == {"OLD", "OTHER"}
    # The same CPO, registered again (new tokens, a new connection record), reports a new session on E1.
    again = Cpo(service, http, store)
    assert again.party.id != cpo.party.id
    again.session(session_doc("NEW", "E1", start=now - timedelta(minutes=10), updated=now - timedelta(minutes=1)))
    assert planned(store, now) == {"NEW", "OTHER"}
    # The old one was not deleted: it is only not counted (a later start on its EVSE wins).
    assert store.sessions.get(cpo.key("OLD")) is not None


def test_the_evse_status_ends_its_session_unless_it_says_it_is_in_use(service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    start = now - timedelta(hours=1)
    cpo = Cpo(service, http, store)
    cpo.location([evse(uid, updated=start - timedelta(hours=1)) for uid in ("E1", "E2", "E3", "E4")],
                 start - timedelta(hours=1))
    for n, uid in enumerate(("E1", "E2", "E3", "E4")):
        cpo.session(session_doc(f"S{n + 1}", uid, start=start, updated=now - timedelta(minutes=2)))
    assert planned(store, now) == {"S1", "S2", "S3", "S4"}
    # mod_locations "Status": after the session started, E1 became AVAILABLE, E2 OUTOFORDER;
    # E3 BLOCKED (in use by a parked vehicle) keeps its session; E4's AVAILABLE dates from before it started.
    at = now - timedelta(minutes=1)
    cpo.patch("locations/NL/CPA/LOC1/E1", {"status": "AVAILABLE", "last_updated": iso(at)})
    cpo.patch("locations/NL/CPA/LOC1/E2", {"status": "OUTOFORDER", "last_updated": iso(at)})
    cpo.patch("locations/NL/CPA/LOC1/E3", {"status": "BLOCKED", "last_updated": iso(at)})
    cpo.patch("locations/NL/CPA/LOC1/E4", {"status": "AVAILABLE",
                                           "last_updated": iso(start - timedelta(minutes=30))})
    assert planned(store, now) == {"S3", "S4"}
    # The EVSE charges again (a new status after that): its session counts again.
    cpo.patch("locations/NL/CPA/LOC1/E1", {"status": "CHARGING", "last_updated": iso(now)})
    assert planned(store, now) == {"S1", "S3", "S4"}


def test_unknown_session_from_the_cpo_ends_it_until_the_cpo_updates_it(service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    cpo = Cpo(service, http, store)
    cpo.location([evse("E1", updated=now - timedelta(hours=3)), evse("E2", updated=now - timedelta(hours=3))],
                 now - timedelta(hours=3))
    cpo.session(session_doc("S1", "E1", start=now - timedelta(hours=1), updated=now - timedelta(minutes=5)))
    cpo.session(session_doc("S2", "E2", start=now - timedelta(hours=1), updated=now - timedelta(minutes=5)))
    # What the dispatcher records on a sync UNKNOWN_SESSION answer, or the readback on such a result.
    store.commands.end(cpo.key("S1"), SessionEnd.UNKNOWN_SESSION, now - timedelta(minutes=1))
    assert planned(store, now) == {"S2"}
    # The CPO pushes the session again afterwards: its own newer word wins.
    cpo.session(session_doc("S1", "E1", start=now - timedelta(hours=1), updated=now, kwh=2.0))
    assert planned(store, now) == {"S1", "S2"}


def test_a_session_that_stopped_drawing_is_planned_at_what_it_draws(service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    cpo = Cpo(service, http, store)
    cpo.location([evse("E1", updated=now - timedelta(hours=3)),
                  evse("E2", capable=False, updated=now - timedelta(hours=3))], now - timedelta(hours=3))
    cpo.session(session_doc("STEERED", "E1", start=now - timedelta(hours=1), updated=now, kwh=3.0))
    cpo.session(session_doc("FIXED", "E2", start=now - timedelta(hours=1), updated=now, kwh=3.0))
    fresh = {p.key.session_id: p for p in site(store, now).sessions}
    assert fresh["FIXED"].reason == NotSteered.EVSE_NOT_CAPABLE
    assert fresh["FIXED"].fixed_w is not None and min(fresh["FIXED"].fixed_w) > 10_000
    assert fresh["STEERED"].max_w > 10_000
    # 31 minutes later nothing was reported: neither energy grew although both were allowed power.
    later = now + timedelta(minutes=31)
    idle = {p.key.session_id: p for p in site(store, later).sessions}
    assert idle["FIXED"].fixed_w is not None and set(idle["FIXED"].fixed_w) == {0.0}
    assert idle["STEERED"].max_w == idle["STEERED"].min_w  # held at its minimum rate, so a resume shows
    # The idle clock runs from the last change of energy as we received it: an update that repeats the
    # energy leaves it, one whose energy grew resets it.
    first = store.sessions.get(cpo.key("FIXED"))
    assert first is not None and first.kwh_changed_at is not None
    time.sleep(1.1)
    cpo.patch("sessions/NL/CPA/FIXED", {"kwh": 3.0, "last_updated": iso(datetime.now(UTC))})
    same = store.sessions.get(cpo.key("FIXED"))
    assert same is not None and same.kwh_changed_at == first.kwh_changed_at
    cpo.patch("sessions/NL/CPA/FIXED", {"kwh": 4.0, "last_updated": iso(datetime.now(UTC) + timedelta(seconds=1))})
    grew = store.sessions.get(cpo.key("FIXED"))
    assert grew is not None and grew.kwh_changed_at is not None and grew.kwh_changed_at > first.kwh_changed_at


def test_a_lost_connection_holds_its_sessions_for_a_bounded_time_and_a_re_registration_adopts_them(
        service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    cpo = Cpo(service, http, store)
    cpo.location([evse("E1", updated=now - timedelta(hours=3))], now - timedelta(hours=3))
    cpo.session(session_doc("S1", "E1", start=now - timedelta(hours=1), updated=now))
    # The CPO refuses the token we hold (401 on our resync): we can no longer learn what S1 does.
    store.sync.refused(cpo.party.id, since=now)
    held = site(store, now).sessions
    assert [(p.key.session_id, p.reason) for p in held] == [("S1", NotSteered.CPO_GONE)]
    assert held[0].fixed_w is not None and held[0].fixed_w[0] > 0
    # orphan_session_h after the loss it stops counting: what a charge point does without us is bounded.
    assert planned(store, now + timedelta(hours=1.9)) == {"S1"}
    assert SITE not in {s.site_id for s in gather.gather(store, config(), now + timedelta(hours=2.1))} or \
        planned(store, now + timedelta(hours=2.1)) == set()
    # The same identity registers again: the new connection adopts S1 and steers it.
    token, successor = register_party(store, "NL", "CPA")
    adopted = store.sessions.adopt(store.parties.predecessors(successor.id), successor.id)
    assert adopted == 1
    mine = site(store, now).sessions
    assert [(p.key.party, p.key.session_id, p.controllable) for p in mine] == [(successor.id, "S1", True)]
    assert http.get(f"{service.url}/ocpi/2.2.1/sessions/NL/CPA/S1", headers=token_header(token)).json()[
        "data"]["id"] == "S1"


def test_a_session_whose_cdr_token_lacks_its_owner_is_taken_from_the_session(
        service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    cpo = Cpo(service, http, store)
    cpo.location([evse("E1", updated=now - timedelta(hours=3))], now - timedelta(hours=3))
    doc = session_doc("S1", "E1", start=now - timedelta(hours=1), updated=now)
    for field in ("country_code", "party_id"):
        doc["cdr_token"].pop(field, None)
    cpo.session(doc)
    stored = store.sessions.get(cpo.key("S1"))
    assert stored is not None
    assert planned(store, now) == {"S1"}
    read = http.get(f"{service.url}/ocpi/2.2.1/sessions/NL/CPA/S1", headers=token_header(cpo.token)).json()
    assert read["data"]["cdr_token"]["uid"] == doc["cdr_token"]["uid"]
    assert msgspec.json.decode(msgspec.json.encode(stored.session))["cdr_token"]["uid"] == doc["cdr_token"]["uid"]


def test_an_arrival_reserve_keeps_the_largest_idle_evse_free(service: Running, http: httpx.Client) -> None:
    store = store_of(service)
    now = datetime.now(UTC)
    cpo = Cpo(service, http, store)
    old = now - timedelta(hours=3)
    cpo.location([evse("E1", updated=old), evse("E2", updated=old, amps=32), evse("E3", updated=old),
                  evse("E4", capable=False, updated=old, amps=63)], old)
    cpo.session(session_doc("S1", "E1", start=now - timedelta(hours=1), updated=now))
    assert site(store, now).reserve_w == 0.0  # none by default
    # E2 (32 A x 3 x 230 V) is the largest idle EVSE that takes profiles; E4 (not capable) is not ours to keep.
    assert site(store, now, arrival_reserve="largest_idle_evse").reserve_w == 32 * 3 * 230
    assert site(store, now, arrival_reserve="fixed", arrival_reserve_w=5000.0).reserve_w == 5000.0
    # A session on E2: the next largest idle one is kept instead.
    cpo.session(session_doc("S2", "E2", start=now - timedelta(minutes=5), updated=now))
    assert site(store, now, arrival_reserve="largest_idle_evse").reserve_w == 16 * 3 * 230
