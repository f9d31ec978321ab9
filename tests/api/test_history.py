"""A site's history per bucket and the fleet summary over real HTTP, from what the store keeps.

The figures are built so each bucket's expected mean is known: plans change at a bucket edge, the
session's reported energy grows by known amounts, the charge point reports a limit in W.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.sessions import Session
from profiles import ComplianceVerdict, ElectricalFacts
from scsp.records.commands import ActiveProfileRecord, ProfileSource
from scsp.records.plans import PlanDetail, PlanSession, StoredPlan
from scsp.records.sessions import SessionKey
from tests.api.conftest import EXAMPLES, Api

SITE = "NL-CPA-LOC1"
BUCKET = 300


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def put_session(api: Api, kwh: float, last_updated: float, *, session_id: str = "S1") -> SessionKey:
    """The CPO's report of session S1 at LOC1: `kwh` delivered so far, as of `last_updated`."""
    party = api.store.parties.registered("NL", "CPA")
    if party is None:
        api.session(session_id=session_id, location_id="LOC1")
        party = api.store.parties.registered("NL", "CPA")
    assert party is not None
    doc: dict[str, Any] = msgspec.json.decode((EXAMPLES / "session_example_1_simple_start.json").read_bytes())
    doc.update(country_code="NL", party_id="CPA", id=session_id, location_id="LOC1", status="ACTIVE", kwh=kwh,
               last_updated=at(last_updated).strftime("%Y-%m-%dT%H:%M:%SZ"), end_date_time=None)
    api.store.sessions.put(party.id, msgspec.convert(doc, Session), now=datetime.now(UTC))
    return SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id=session_id)


def save_plan(api: Api, created: float, limit_w: float, planned_w: float, fixed_w: float,
              key: SessionKey | None = None) -> StoredPlan:
    rows = [] if key is None else [PlanSession(
        key=key, controllable=True, facts=ElectricalFacts(), max_w=11040.0, evse_max_w=11040.0,
        power_w=[planned_w] * 24, energy_kwh=10.0, shortfall_kwh=0.0)]
    return api.store.plans.save(StoredPlan(
        id=0, site_id=SITE, created_at=at(created), start=at(created), slot_s=BUCKET, n_slots=24, status="OPTIMAL",
        path="lp", limit_w=[limit_w] * 24, site_power_w=[planned_w] * 24, fixed_load_w=[fixed_w] * 24,
        detail=PlanDetail(failsafe_w=0.0), sessions=rows))


@pytest.fixture
def past(api: Api) -> tuple[Api, float]:
    """Three buckets of a site's past, the last of them ending at the current bucket's start (edge)."""
    edge = math.floor(time.time() / BUCKET) * BUCKET
    e0 = edge - 3 * BUCKET
    key = put_session(api, 0.0, e0)
    put_session(api, 1.0, e0 + BUCKET)  # 1 kWh in 300 s: 12 kW
    put_session(api, 1.5, e0 + 2 * BUCKET)  # 0.5 kWh: 6 kW
    put_session(api, 1.5, e0 + 3 * BUCKET)  # nothing: 0 W
    save_plan(api, e0 - 600, 40_000, 30_000, 2_000, key)
    save_plan(api, e0 + BUCKET, 20_000, 15_000, 1_000, key)
    watts = ChargingProfile(charging_rate_unit=ChargingRateUnit.W, start_date_time=at(e0),
                            charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=7000.0)])
    api.store.commands.save_active_profile(ActiveProfileRecord(
        id=0, key=key, source=ProfileSource.GET, received_at=at(e0),
        profile=ActiveChargingProfile(start_date_time=at(e0), charging_profile=watts),
        verdict=ComplianceVerdict.UNDER_PLAN, worst_excess_w=0.0, compliance=0.5))
    return api, e0


def test_history_buckets_carry_limit_plan_applied_delivered_and_fixed_load(
        past: tuple[Api, float], client: httpx.Client) -> None:
    api, e0 = past
    reply = client.get(f"{api.url}/api/v1/sites/{SITE}/history", params={"hours": 1, "bucket_s": BUCKET},
                       headers=api.auth("dso"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["bucket_s"] == BUCKET and body["site_id"] == SITE
    buckets = {datetime.fromisoformat(b["start"]).timestamp(): b for b in body["buckets"]}
    # Every bucket starts at a multiple of its length; the window covers the hour up to now.
    assert all(ts % BUCKET == 0 for ts in buckets) and len(buckets) in (12, 13)
    fields = ("limit_w", "planned_w", "applied_w", "delivered_w", "fixed_load_w")
    assert {f: buckets[e0][f] for f in fields} == {
        "limit_w": 40000, "planned_w": 30000, "applied_w": 7000, "delivered_w": 12000, "fixed_load_w": 2000}
    assert {f: buckets[e0 + BUCKET][f] for f in fields} == {
        "limit_w": 20000, "planned_w": 15000, "applied_w": 7000, "delivered_w": 6000, "fixed_load_w": 1000}
    assert buckets[e0 + 2 * BUCKET]["delivered_w"] == 0
    # Before the first plan nothing was planned, and nothing reported: unknown, not zero.
    earliest = min(buckets)
    assert earliest < e0 - 600 and buckets[earliest]["limit_w"] is None and buckets[earliest]["applied_w"] is None
    # Each planning cycle in the window, with its values when it was made.
    assert [(c["limit_w"], c["planned_w"]) for c in body["cycles"]] == [(40000, 30000), (20000, 15000)]


def test_a_history_too_fine_for_its_window_names_bucket_s(past: tuple[Api, float], client: httpx.Client) -> None:
    api, _ = past
    for params, field in (({"hours": 168, "bucket_s": 60}, "bucket_s"), ({"bucket_s": 5}, "bucket_s"),
                          ({"hours": 0}, "hours"), ({"hours": "nan"}, "hours")):
        reply = client.get(f"{api.url}/api/v1/sites/{SITE}/history", params=params, headers=api.auth())
        assert reply.status_code in (400, 422), (params, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert field in reply.json()["detail"]


def test_fleet_summarises_every_site_in_scope_now(past: tuple[Api, float], client: httpx.Client) -> None:
    api, e0 = past
    reply = client.get(f"{api.url}/api/v1/fleet", params={"hours": 1}, headers=api.auth("dso"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    sites = {s["site_id"]: s for s in body["sites"]}
    assert set(sites) == {"NL-CPA-LOC1", "NL-CPA-LOC2", "NL-CPA-LOC3", "NL-CPA-LOC9"}
    site = sites[SITE]
    # The newest plan at its slot for now (made four buckets ago, so not its first slot).
    assert (site["limit_w_now"], site["planned_w_now"], site["fixed_load_w_now"]) == (20000, 15000, 1000)
    assert site["applied_w_now"] == 7000 and site["planned_peak_w"] == 16000
    assert (site["sessions"], site["managed_sessions"]) == (1, 1)
    assert site["compliance"] == {"UNDER_PLAN": 1}
    assert datetime.fromisoformat(site["planned_at"]).timestamp() == e0 + BUCKET
    # Buckets of 150 s over the hour: the two of the first 12 kW bucket show it.
    assert site["sparkline_bucket_s"] == 150 and len(site["sparkline_delivered_w"]) in (24, 25)
    assert site["sparkline_delivered_w"].count(12000) == 2
    assert body["under_plan"] == 1 and body["over_plan"] == 0 and body["limit_w_now"] == 20000
    empty = sites["NL-CPA-LOC2"]
    assert empty["plan_id"] is None and empty["limit_w_now"] is None and empty["compliance"] == {}
    # A key with sites sees those only.
    scoped = client.get(f"{api.url}/api/v1/fleet", headers=api.auth("aggregator", sites=["NL-CPA-LOC2"])).json()
    assert [s["site_id"] for s in scoped["sites"]] == ["NL-CPA-LOC2"]


def test_a_site_now_is_the_slot_of_this_moment_not_the_first_of_the_plan(
        past: tuple[Api, float], client: httpx.Client) -> None:
    api, e0 = past
    # A plan whose first slot is old: 50 kW then, 10 kW from the slot that covers now.
    edge = e0 + 3 * BUCKET
    api.store.plans.save(StoredPlan(
        id=0, site_id=SITE, created_at=at(time.time()), start=at(edge - BUCKET), slot_s=BUCKET, n_slots=4,
        status="OPTIMAL", path="lp", limit_w=[50_000, 10_000, 10_000, 10_000], site_power_w=[0.0] * 4,
        fixed_load_w=[0.0] * 4, detail=PlanDetail(failsafe_w=0.0)))
    site = client.get(f"{api.url}/api/v1/sites/{SITE}", headers=api.auth()).json()
    assert site["limit_w_now"] == 10000
