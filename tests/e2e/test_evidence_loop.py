"""Evidence over the whole loop: the service and the simulated CPO as real servers on 127.0.0.1.

What the CPO answers or does (UNKNOWN_SESSION, unregistering, registering again, a new arrival)
changes what the planner counts, as the README's "Evidence" table says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scsp.planning import gather
from scsp.records.commands import CommandKind, NotSteered
from tests.e2e.test_smart_charging import WORK, Loop, wait_for

SITE = f"NL-SIM-{WORK}"


def plan_sessions(running: Loop) -> dict[str, dict[str, Any]]:
    reply = running.http.get(f"{running.service.url}/api/v1/sites/{SITE}/plan", headers=running.api)
    if reply.status_code == 404:
        return {}
    return {s["session_id"]: s for s in reply.raise_for_status().json()["sessions"]}


@pytest.fixture
def connected(tmp_path: Path) -> Iterator[Loop]:
    running = Loop(tmp_path)
    yield running
    running.close()


@pytest.fixture
def quiet(tmp_path: Path) -> Iterator[Loop]:
    """A loop whose CPO pushes a session only when it starts (no periodic updates)."""
    running = Loop(tmp_path, sim={"session_update_s": 3600.0})
    yield running
    running.close()


def test_an_unknown_session_answer_ends_the_session_for_planning(quiet: Loop) -> None:
    loop = quiet
    loop.grid(WORK, 30_000, failsafe_w=9_000)
    first, second = (e["uid"] for e in loop.evses(WORK)[:2])
    loop.faults([{"kind": "UNKNOWN_SESSION", "evse_uid": first}])
    gone = loop.plug(WORK, first)
    kept = loop.plug(WORK, second)
    wait_for(lambda: any(c.kind == CommandKind.SET and c.response == "UNKNOWN_SESSION"
                         for c in loop.store.commands.find(key=loop.key(gone))),
             what="the CPO's UNKNOWN_SESSION answer")
    # mod_sessions: the CPO does not know the session; it holds no capacity, the other gets it.
    wait_for(lambda: set(plan_sessions(loop)) == {kept}, what="a plan without the unknown session")
    assert loop.store.commands.control(loop.key(gone)).ended_at is not None
    wait_for(lambda: all(ev["profile_source"] != "none" for ev in loop.evs(WORK) if ev["session_id"] == kept),
             what="the remaining session's profile")


def test_an_unregistered_cpo_leaves_bounded_fixed_load_and_its_return_adopts_its_sessions(connected: Loop) -> None:
    loop = connected
    loop.grid(WORK, 30_000, failsafe_w=9_000)
    sessions = {loop.plug(WORK, e["uid"]) for e in loop.evses(WORK)[:3]}
    wait_for(lambda: loop.all_applied(WORK), what="first profiles")
    sim_party = next(p for p in loop.http.get(f"{loop.sim}/sim/parties").json() if p["status"] == "REGISTERED")
    loop.http.post(f"{loop.sim}/sim/parties/{sim_party['id']}/unregister").raise_for_status()
    # Its sessions are not ours to steer any more: fixed load at what their last profile allows...
    gone = NotSteered.CPO_GONE.value
    wait_for(lambda: {s: p["reason"] for s, p in plan_sessions(loop).items()} == dict.fromkeys(sessions, gone),
             what="the sessions of the unregistered CPO as fixed load")
    fixed = loop.store.plans.latest(SITE)
    assert fixed is not None and 0 < fixed.fixed_load_w[0] <= 30_000 + 1
    # ... for at most orphan_session_h (2 h by default): then they no longer hold the site.
    later = datetime.now(UTC) + timedelta(hours=loop.service.config.planning.orphan_session_h, minutes=5)
    assert not [s for site in gather.gather(loop.store, loop.service.config, later) for s in site.sessions]
    # The same CPO registers again: its running sessions are adopted and steered again.
    invitation = loop.http.post(f"{loop.sim}/sim/invite",
                                json={"country_code": "NL", "party_id": "SCP"}).raise_for_status().json()
    successor = asyncio.run(loop._register(invitation))
    assert successor.id != loop.party.id
    wait_for(lambda: {s: (p["controllable"], p["reason"]) for s, p in plan_sessions(loop).items()}
             == dict.fromkeys(sessions, (True, None)), timeout=60, what="the adopted sessions steered again")
    # Its resync moves what the earlier registration held to the new one: no row is left behind.
    wait_for(lambda: {(row.party, row.session.id) for row in loop.store.sessions.find()[0]}
             == {(successor.id, s) for s in sessions}, what="the earlier registration's sessions adopted")


@pytest.fixture
def slow_replans(tmp_path: Path) -> Iterator[Loop]:
    """A loop whose debounce and cycle are far longer than the test: only an arrival plans at once."""
    running = Loop(tmp_path, interval_s=3600, debounce_s=600)
    yield running
    running.close()


def test_an_arrival_is_planned_and_profiled_at_once_within_the_arrival_reserve(slow_replans: Loop) -> None:
    loop = slow_replans
    evses = [e for e in loop.evses(WORK) if e["charging_profile_capable"]]
    loop.http.put(f"{loop.service.url}/api/v1/sites/{SITE}/grid", headers=loop.api, json={
        "import_limit_w": 40_000, "failsafe_w": 9_000, "arrival_reserve": "largest_idle_evse"}).raise_for_status()
    wait_for(lambda: (lambda st: st.sessions_pulled_at is not None and not st.needs_resync)(
        loop.store.sync.state(loop.party.id)), what="the registration's resync")
    session = loop.plug(WORK, evses[0]["uid"])
    # No debounce for an arrival: its first profile is sent without waiting the 600 s debounce
    # or the hourly cycle.
    wait_for(lambda: any(c["method"] == "PUT" for c in loop.commands(session)), timeout=60,
             what="the arriving session's first profile")
    plan = loop.http.get(f"{loop.service.url}/api/v1/sites/{SITE}/plan", headers=loop.api).raise_for_status().json()
    assert plan["arrival_reserve_w"] == pytest.approx(max(e["max_w"] for e in evses[1:]), rel=1e-6)
    for k, power in enumerate(plan["site_power_w"]):
        assert power <= plan["limit_w"][k] - plan["arrival_reserve_w"] + 1.0
