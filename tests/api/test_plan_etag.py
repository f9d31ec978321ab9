"""`GET /api/v1/sites/{site_id}/plan` and its ETag, over real HTTP, on a plan the service's engine made.

The ETag is strong and changes whenever a byte of the body does, the per-session compliance
included (a CPO's ActiveChargingProfile changes the body under the same plan id). `If-None-Match`
is compared as RFC 9110 §13.1.2 asks: "A recipient MUST use the weak comparison function when
comparing entity tags for If-None-Match", it may be a list, and `*` matches any current
representation (and none when there is none).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ocpi221.locations import Location
from ocpi221.sessions import Session
from scsp.api import ApiRole, issue_api_key
from scsp.api.plans import entity_tag
from scsp.app import create_app, edge, scsp_platform
from scsp.config import OptimizerConfig, PlanningConfig
from scsp.dispatch.sender import Dispatcher
from scsp.events import SiteEvents
from scsp.planning.engine import Engine
from scsp.platform.client import OcpiClient
from scsp.platform.serving import ServerThread, bind
from scsp.records.grid import SiteSettings
from scsp.records.plans import StoredPlan
from scsp.store import Store
from tests.conftest import EXAMPLES, Running, register_party, service_config, token_header

SITE = "NL-CPA-LOC1"
EPOCH1 = datetime.fromtimestamp(1, UTC)
STRONG_TAG = re.compile(r'^"[\x21\x23-\x7e]+"$')  # RFC 9110 §8.8.3: DQUOTE *etagc DQUOTE, no W/


class Site:
    """The running service with one planned site: four AC sessions of CPO NL-CPA on a 22 kW connection."""

    def __init__(self, running: Running, token: str, plan: StoredPlan) -> None:
        self.running = running
        self.url = running.url
        assert running.store is not None
        self.store: Store = running.store
        self.token = token  # what the CPO calls us with
        self.first_plan = plan

    def auth(self, role: str = "aggregator", sites: tuple[str, ...] = ()) -> dict[str, str]:
        key, _ = issue_api_key(self.store, role=ApiRole(role), sites=sites, label="etag", now=datetime.now(UTC))
        return {"Authorization": f"Bearer {key}"}

    @property
    def plan_url(self) -> str:
        return f"{self.url}/api/v1/sites/{SITE}/plan"


def fill(store: Store) -> str:
    """A CPO, its Location with four charge-profile-capable AC EVSEs, four sessions charging now, a grid limit."""
    token, party = register_party(store, "NL", "CPA")
    evses = [{"uid": f"E{i}", "status": "CHARGING", "last_updated": "2026-11-25T10:00:00Z",
              "capabilities": ["CHARGING_PROFILE_CAPABLE"],
              "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET", "power_type": "AC_3_PHASE",
                              "max_voltage": 230, "max_amperage": 16, "last_updated": "2026-11-25T10:00:00Z"}]}
             for i in range(4)]
    doc = json.loads((EXAMPLES / "location_example.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id="LOC1", evses=evses)
    store.sessions.put_location(party.id, msgspec.convert(doc, Location))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # charging now: planned by a real clock
    for i in range(4):
        s = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
        s.update(country_code="NL", party_id="CPA", id=f"S{i}", evse_uid=f"E{i}", location_id="LOC1",
                 status="ACTIVE", kwh=0.0, start_date_time=stamp, last_updated=stamp)
        store.sessions.put(party.id, msgspec.convert(s, Session), now=datetime.now(UTC))
    store.grid.put_settings(SiteSettings(site_id=SITE, import_limit_w=22_000.0, failsafe_w=8_000.0,
                                         updated_at=EPOCH1))
    return token


# The service plans once at start-up and then not again while a test runs (interval and debounce far
# beyond a test's length): the plan under test changes only when a test makes it. The CPO advertises
# no chargingprofiles endpoint, so nothing is sent, but its sessions are ours to steer.
PLANNING = PlanningConfig(interval_s=86_400, debounce_s=3_600.0, horizon_h=2.0, slot_minutes=15)
OPTIMIZER = OptimizerConfig(executor="thread", workers=1)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    sock = bind("127.0.0.1", 0)
    config = service_config(tmp_path, sock.getsockname()[1], planning=PLANNING, optimizer=OPTIMIZER)
    app = create_app(config)
    store: Store = app.state.store
    token = fill(store)
    thread = ServerThread(edge(app), sock).start()
    running = Running(thread, config, store, app)
    try:
        deadline = time.monotonic() + 120
        plan = store.plans.latest(SITE)
        while plan is None and time.monotonic() < deadline:  # the engine's start-up pass
            time.sleep(0.05)
            plan = store.plans.latest(SITE)
        assert plan is not None, "the service did not plan its site at start-up"
        yield Site(running, token, plan)
    finally:
        thread.stop()


def replan(site: Site) -> StoredPlan:
    """One pass of a real planning engine over the service's database (as the scheduler would run it)."""
    config = site.running.config

    async def run() -> list[StoredPlan]:
        store = Store(config.db_path)
        client = OcpiClient(country_code="NL", party_id="SCP")
        events = SiteEvents()
        dispatcher = Dispatcher(store=store, client=client, platform=scsp_platform(config), config=config,
                                events=events)
        engine = Engine(store=store, client=client, dispatcher=dispatcher, config=config, events=events)
        try:
            return await engine.plan()
        finally:
            engine.executor.shutdown(wait=True, cancel_futures=True)
            await client.aclose()

    [plan] = asyncio.run(run())
    return plan


def push_active(site: Site, session_id: str, profile: dict[str, Any]) -> None:
    """The CPO PUTs a session's ActiveChargingProfile to our Sender interface."""
    body = {"start_date_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "charging_profile": profile}
    reply = httpx.put(f"{site.url}/ocpi/2.2.1/chargingprofiles/{session_id}", json=body,
                      headers=token_header(site.token), timeout=30)
    assert reply.status_code == 200 and reply.json()["status_code"] == 1000, reply.text


def get_plan(client: httpx.Client, site: Site, headers: dict[str, str], if_none_match: str | None = None
             ) -> httpx.Response:
    sent = dict(headers) if if_none_match is None else {**headers, "If-None-Match": if_none_match}
    return client.get(site.plan_url, headers=sent)


def assert_not_modified(reply: httpx.Response, etag: str) -> None:
    assert reply.status_code == 304, reply.text
    assert reply.content == b""
    assert reply.headers["etag"] == etag  # RFC 9110 §15.4.5: a 304 carries the ETag a 200 would


def test_the_plan_carries_a_strong_etag_of_its_body(site: Site, client: httpx.Client) -> None:
    headers = site.auth()
    reply = get_plan(client, site, headers)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    etag = reply.headers["etag"]
    assert STRONG_TAG.match(etag), etag
    assert etag == entity_tag(reply.content)
    assert reply.headers["cache-control"] == "no-cache"  # caches revalidate, they never serve it stale
    body = reply.json()
    assert body["id"] == site.first_plan.id and body["site_id"] == SITE
    assert len(body["sessions"]) == 4 and all(s["compliance"] is None for s in body["sessions"])
    # The same body, the same tag: a poller is not woken for nothing.
    again = get_plan(client, site, headers)
    assert again.content == reply.content and again.headers["etag"] == etag


def test_if_none_match_by_rfc_9110(site: Site, client: httpx.Client) -> None:
    headers = site.auth()
    full = get_plan(client, site, headers)
    etag = full.headers["etag"]
    for header in (etag, f"W/{etag}", "*", f'"x", {etag}', f'"x",{etag}', f'W/"x" , W/{etag}, "y"'):
        assert_not_modified(get_plan(client, site, headers, header), etag)
    for header in ('"x"', f'W/"{etag.strip(chr(34))}x"', etag.strip('"'), '"x", "y"', ""):
        other = get_plan(client, site, headers, header)
        assert other.status_code == 200, header
        assert other.content == full.content and other.headers["etag"] == etag


def test_a_matching_tag_does_not_get_past_the_key_or_the_site(site: Site, client: httpx.Client) -> None:
    etag = get_plan(client, site, site.auth()).headers["etag"]
    # Out of scope: a 403, not a 304 that would confirm the plan is unchanged.
    reply = get_plan(client, site, site.auth("dso", ("NL-CPA-LOC2",)), etag)
    assert reply.status_code == 403, reply.text
    assert client.get(site.plan_url, headers={"If-None-Match": "*"}).status_code == 401
    # `*` matches a current representation only: an unknown site, or one without a plan, has none.
    unknown = client.get(f"{site.url}/api/v1/sites/NL-CPA-NOWHERE/plan", headers={**site.auth(), "If-None-Match": "*"})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    site.store.plans.declare_site("NL-DSO-NEW", now=datetime.now(UTC))
    unplanned = client.get(f"{site.url}/api/v1/sites/NL-DSO-NEW/plan", headers={**site.auth(), "If-None-Match": "*"})
    assert unplanned.status_code == 404 and "no plan" in unplanned.json()["detail"]


def test_a_compliance_report_changes_the_etag_under_the_same_plan(site: Site, client: httpx.Client) -> None:
    headers = site.auth()
    first = get_plan(client, site, headers)
    old = first.headers["etag"]
    row = next(s for s in first.json()["sessions"] if s["session_id"] == "S0")
    assert row["controllable"] and row["profile"] is not None, row

    # The charge point applies exactly what we planned.
    push_active(site, "S0", row["profile"])
    reply = get_plan(client, site, headers, old)
    assert reply.status_code == 200, "a client holding the old tag must get the new body, not a 304"
    body = reply.json()
    assert body["id"] == first.json()["id"] == site.first_plan.id  # the same plan...
    compliance = next(s for s in body["sessions"] if s["session_id"] == "S0")["compliance"]
    assert compliance is not None and compliance["source"] == "push"  # ...with a verdict it lacked
    assert compliance["verdict"] == "COMPLIANT" and compliance["plan_id"] == site.first_plan.id
    new = reply.headers["etag"]
    assert new != old and new == entity_tag(reply.content)
    assert_not_modified(get_plan(client, site, headers, new), new)

    # Then it lets the EV draw far more than planned: the verdict changes, and with it the tag.
    push_active(site, "S0", {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0,
                                                                                       "limit": 1_000_000}]})
    later = get_plan(client, site, headers, new)
    assert later.status_code == 200
    assert later.json()["id"] == site.first_plan.id
    verdict = next(s for s in later.json()["sessions"] if s["session_id"] == "S0")["compliance"]["verdict"]
    assert verdict == "OVER_PLAN"
    assert later.headers["etag"] not in (old, new)
    # A tag list holding both earlier tags matches neither: both bodies are gone.
    assert get_plan(client, site, headers, f"{old}, {new}").status_code == 200


def test_a_new_plan_changes_the_etag(site: Site, client: httpx.Client) -> None:
    headers = site.auth()
    before = get_plan(client, site, headers)
    old = before.headers["etag"]
    plan = replan(site)
    assert plan.id != site.first_plan.id
    reply = get_plan(client, site, headers, old)
    assert reply.status_code == 200
    assert reply.json()["id"] == plan.id
    assert reply.headers["etag"] != old
    assert_not_modified(get_plan(client, site, headers, reply.headers["etag"]), reply.headers["etag"])


def test_the_site_compliance_counts_each_session_once(site: Site, client: httpx.Client) -> None:
    # The same reports seen from the site: the reporting session by what its charge point applies,
    # every other one by its plan, never both.
    headers = site.auth()
    plan = get_plan(client, site, headers).json()
    planned = {s["session_id"]: s["power_w"] for s in plan["sessions"]}
    url = f"{site.url}/api/v1/sites/{SITE}/compliance"
    silent = client.get(url, headers=headers).json()
    assert silent["plan_id"] == plan["id"] and silent["sessions"] == []
    assert silent["applied_w"] == [None] * plan["n_slots"]
    assert silent["total_w"] == pytest.approx([sum(p[k] for p in planned.values()) for k in range(plan["n_slots"])])

    # S0 reports it lets the EV take far more than planned: capped at what its EVSE can give (16 A x 3 x 230 V).
    push_active(site, "S0", {"charging_rate_unit": "W", "charging_profile_period": [{"start_period": 0,
                                                                                       "limit": 1_000_000}]})
    report = client.get(url, headers=headers).json()
    others = [sum(p[k] for sid, p in planned.items() if sid != "S0") for k in range(plan["n_slots"])]
    applied = report["applied_w"]
    # Read at slot midpoints: the current slot's midpoint may lie before the report was calculated.
    assert applied[1:] == pytest.approx([11040.0] * (plan["n_slots"] - 1))
    assert applied[0] in (None, pytest.approx(11040.0))
    mine = [planned["S0"][k] if a is None else 0.0 for k, a in enumerate(applied)]
    assert report["unreported_w"] == pytest.approx([o + m for o, m in zip(others, mine, strict=True)])
    assert report["total_w"] == pytest.approx([(a or 0.0) + o + m for a, o, m in zip(applied, others, mine,
                                                                                     strict=True)])
    excess = max(t - lim for t, lim in zip(report["total_w"], report["limit_w"], strict=True))
    assert report["over_limit_w"] == pytest.approx(max(0.0, excess))
    [judged] = report["sessions"]
    assert (judged["session_id"], judged["verdict"], judged["source"]) == ("S0", "OVER_PLAN", "push")
