"""Two tenants: CPO A (NL-ABC) floods its site and then never posts a result; CPO B (DE-XYZ) is
planned and dispatched meanwhile as if A did not exist. Real servers: the service and two CPO
simulators over loopback HTTP.

No timed assertions: the proof is the order of events. Once A's plan has sent a decrease whose result
never comes, A's increases wait (DECREASE_WAIT_S) for it; B's new sessions get their profiles before
A's increases are released. With one lock over all planning and dispatch, B's plan would wait for
A's dispatch and B's profiles would come after A's increases.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from scsp.api.auth import issue_api_key
from scsp.config import PlanningConfig, ReadbackConfig
from scsp.records.grid import ApiRole
from scsp.store import Store
from tests.conftest import Running, start_service, start_simulator
from tests.e2e.test_registration import invite
from tests.e2e.test_smart_charging import wait_for

SIM = {"arrivals": False, "tick_s": 0.25, "session_update_s": 60.0, "callback_delay_s": 0.2,
       # Longer than the dispatcher's wait for decreases: that wait, not the timeout, ends it.
       "profile_timeout_s": 300, "active_profile_duration_s": 600}


class TwoTenants:
    def __init__(self, tmp_path: Path) -> None:
        self.http = httpx.Client(timeout=30)
        planning = PlanningConfig(interval_s=3600, debounce_s=2.0, horizon_h=1.0, slot_minutes=1,
                                  pull_interval_s=3600, pull_splay_s=0)
        self.service = start_service(tmp_path, planning=planning,
                                     readback=ReadbackConfig(interval_s=3600, duration_s=600))
        self.a = start_simulator(tmp_path, "ABC", country_code="NL", **SIM)
        self.b = start_simulator(tmp_path, "XYZ", country_code="DE", **SIM)
        for sim, cc, pid in ((self.a, "NL", "ABC"), (self.b, "DE", "XYZ")):
            token_a = invite(self.service, cc=cc, pid=pid)
            self.http.post(f"{sim.url}/sim/register", json={"versions_url": self.service.versions_url,
                                                            "token_a": token_a}).raise_for_status()
        key, _ = issue_api_key(self.store, role=ApiRole.admin, sites=(), label="t", now=datetime.now(UTC))
        self.api = {"Authorization": f"Bearer {key}"}
        wait_for(lambda: len({(f.country_code, f.location_id) for f in self.store.sessions.evses()}) >= 4,
                 timeout=30, what="both simulators' locations to be pulled")

    @property
    def store(self) -> Store:
        assert self.service.store is not None
        return self.service.store

    def grid(self, site: str, limit_w: float) -> None:
        self.http.put(f"{self.service.url}/api/v1/sites/{site}/grid", headers=self.api,
                      json={"import_limit_w": limit_w}).raise_for_status()

    def ac_evses(self, sim: Running, location: str) -> list[str]:
        state = self.http.get(f"{sim.url}/sim/state").raise_for_status().json()
        return [e["uid"] for e in state["evses"] if e["location_id"] == location and e["charging_profile_capable"]
                and e["power_type"].startswith("AC") and e["session_id"] is None]

    def plug(self, sim: Running, location: str, evse: str) -> str:
        reply = self.http.post(f"{sim.url}/sim/evs", json={
            "location_id": location, "evse_uid": evse, "energy_kwh": 30.0, "max_kw": 11.0,
            "departure_s": 7200}).raise_for_status().json()
        session_id: str = reply["id"]
        return session_id

    def puts(self, sim: Running, session_id: str) -> list[dict[str, Any]]:
        commands = self.http.get(f"{sim.url}/sim/commands").raise_for_status().json()
        return [c for c in commands if c["session_id"] == session_id and c["method"] == "PUT"]

    def applied(self, sim: Running, session_id: str) -> bool:
        state = self.http.get(f"{sim.url}/sim/state").raise_for_status().json()
        return any(ev["session_id"] == session_id and ev["profile_source"] != "none" for ev in state["evs"])

    def close(self) -> None:
        self.http.close()
        for running in (self.service, self.a, self.b):
            running.thread.stop()


@pytest.fixture
def tenants(tmp_path: Path) -> Iterator[TwoTenants]:
    t = TwoTenants(tmp_path)
    yield t
    t.close()


def test_a_cpo_that_never_posts_results_does_not_delay_another_cpos_sites(tenants: TwoTenants) -> None:
    a_site, b_site = "NL-ABC-LOC-WORK", "DE-XYZ-LOC-WORK"
    tenants.grid(a_site, 11_000)
    tenants.grid(b_site, 40_000)
    a_evses = tenants.ac_evses(tenants.a, "LOC-WORK")
    b_evses = tenants.ac_evses(tenants.b, "LOC-WORK")
    assert len(a_evses) >= 3 and len(b_evses) >= 3
    # A's first two EVs share 11 kW; their profiles are accepted and their results posted.
    first = [tenants.plug(tenants.a, "LOC-WORK", evse) for evse in a_evses[:2]]
    for session_id in first:
        wait_for(lambda s=session_id: tenants.applied(tenants.a, s), what=f"A's {session_id} to apply a profile")
    wait_for(lambda: all(c.result is not None for s in first for c in tenants.store.commands.find(
        key=next(r.key for r in tenants.store.sessions.find()[0] if r.session.id == s))), what="A's results")
    # A goes silent: it accepts every request and never posts a result. Then it floods: more room for
    # its first EVs (increases) and new EVs at once (first profiles: decreases, sent first, whose
    # results the increases wait for). The arrivals are planned at once, with the new limit (its own
    # re-plan would come only after the debounce).
    before = [len(tenants.puts(tenants.a, s)) for s in first]
    tenants.http.put(f"{tenants.a.url}/sim/faults", json=[{"kind": "NO_CALLBACK"}]).raise_for_status()
    tenants.grid(a_site, 200_000)
    flood = [tenants.plug(tenants.a, "LOC-WORK", evse) for evse in a_evses[2:]]
    # The first of them is planned at once (an arrival); the rest wait for A's site, busy meanwhile.
    wait_for(lambda: any(tenants.puts(tenants.a, s) for s in flood), what="A's new EVs' first profiles")
    # A's dispatch now waits for results that never come. B's new sessions are planned and sent
    # meanwhile, one after another.
    for evse in b_evses[:3]:
        session_id = tenants.plug(tenants.b, "LOC-WORK", evse)
        wait_for(lambda s=session_id: tenants.puts(tenants.b, s), timeout=25,
                 what=f"B's {session_id} to get its profile")
        assert wait_for(lambda s=session_id: tenants.applied(tenants.b, s), what="B's profile applied")
        # ... while A's increases are still held back behind A's unanswered decreases.
        assert [len(tenants.puts(tenants.a, s)) for s in first] == before, "B waited for A's dispatch"
        time.sleep(0.5)
    # A's increases go once the wait for its results is over (they are not lost, only A's own).
    wait_for(lambda: [len(tenants.puts(tenants.a, s)) for s in first] == [n + 1 for n in before], timeout=60,
             what="A's increases after the wait for its results")
