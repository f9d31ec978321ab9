"""The smart charging loop end to end: the service and the living CPO simulator as real servers.

Tolerance of the site-limit checks: meter samples taken after every EV got its first profile
applied, compared with the limit plus 1 W (float rounding). Before its first profile an EV draws
its maximum: a charge point has no limit from us until we sent one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec
import pytest

from cposim.app import create_simulator_asgi
from scsp.api.auth import issue_api_key
from scsp.app import create_app, edge, scsp_platform
from scsp.config import Config, PlanningConfig, ReadbackConfig, SimulatorConfig
from scsp.platform import registration
from scsp.platform.client import OcpiClient
from scsp.platform.serving import ServerThread, bind
from scsp.records.grid import ApiRole
from scsp.records.parties import Party
from scsp.records.sessions import SessionKey
from scsp.store import Store
from tests.conftest import Running, service_config

T = TypeVar("T")
TOLERANCE_W = 1.0
WORK, CITY = "LOC-WORK", "LOC-CITY"


def allowed_w(evs: list[dict[str, Any]]) -> float:
    """What the charge points allow in total now: the applied limit, or the maximum where none applies."""
    return sum(min(ev["limit_w"], ev["evse_max_w"]) if ev["limit_w"] is not None else ev["evse_max_w"] for ev in evs)


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll until `check()` is truthy; fail with `what` after `timeout` seconds (a deadline, not a speed test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Loop:
    """A registered service + simulator pair and helpers to drive them."""

    def __init__(self, tmp_path: Path, *, sim: dict[str, Any] | None = None, **planning: Any) -> None:
        self.tmp_path = tmp_path
        sim_sock = bind("127.0.0.1", 0)
        port = sim_sock.getsockname()[1]
        self.sim_settings = SimulatorConfig(**{
            "host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}",
            "db_path": str(tmp_path / "sim.db"), "arrivals": False, "tick_s": 0.25, "session_update_s": 1.0,
            "callback_delay_s": 0.2, "profile_timeout_s": 3, "active_profile_duration_s": 600, **(sim or {})})
        self.sim_thread = ServerThread(create_simulator_asgi(self.sim_settings), sim_sock).start()
        self.sim = f"http://127.0.0.1:{port}"
        self.planning = PlanningConfig(**{"interval_s": 2, "debounce_s": 0.3, "horizon_h": 1.0, "slot_minutes": 1,
                                          "pull_interval_s": 3600, "pull_splay_s": 0, **planning})
        self.http = httpx.Client(timeout=30)
        self.service = self._start_service(port=0)
        invitation = self.http.post(f"{self.sim}/sim/invite",
                                    json={"country_code": "NL", "party_id": "SCP"}).raise_for_status().json()
        self.party = asyncio.run(self._register(invitation))
        key, _ = issue_api_key(self.store, role=ApiRole.admin, sites=(), label="e2e", now=datetime.now(UTC))
        self.api = {"Authorization": f"Bearer {key}"}
        wait_for(lambda: len(self.store.sessions.evses()) >= 24, timeout=30,
                 what="the simulator's locations to be pulled")

    def _start_service(self, port: int) -> Running:
        sock = bind("127.0.0.1", port)
        config: Config = msgspec.structs.replace(
            service_config(self.tmp_path, sock.getsockname()[1]), planning=self.planning,
            readback=ReadbackConfig(interval_s=3, duration_s=600))
        app = create_app(config)
        return Running(ServerThread(edge(app), sock).start(), config, app.state.store, app)

    async def _register(self, invitation: dict[str, str]) -> Party:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            return await registration.register_with(self.store.parties, client, scsp_platform(self.service.config),
                                                    invitation["versions_url"], invitation["token_a"],
                                                    now=datetime.now(UTC))
        finally:
            await client.aclose()

    @property
    def store(self) -> Store:
        assert self.service.store is not None
        return self.service.store

    def restart_service(self) -> tuple[float, float]:
        """Stop the service and start a new one on the same port and database; (stopped, started) times."""
        port = self.service.thread.port
        self.service.thread.stop()
        stopped = time.time()
        self.service = self._start_service(port=port)
        return stopped, time.time()

    def close(self) -> None:
        self.http.close()
        self.service.thread.stop()
        self.sim_thread.stop()

    # -- driving --------------------------------------------------------------------------------
    def grid(self, location: str, limit_w: float, failsafe_w: float | None = None) -> None:
        body: dict[str, Any] = {"import_limit_w": limit_w}
        if failsafe_w is not None:
            body["failsafe_w"] = failsafe_w
        self.http.put(f"{self.service.url}/api/v1/sites/NL-SIM-{location}/grid", json=body,
                      headers=self.api).raise_for_status()

    def plug(self, location: str, evse: str, *, kwh: float = 20.0, max_kw: float = 11.0,
             departure_s: float = 7200) -> str:
        reply = self.http.post(f"{self.sim}/sim/evs", json={
            "location_id": location, "evse_uid": evse, "energy_kwh": kwh, "max_kw": max_kw,
            "departure_s": departure_s}).raise_for_status().json()
        session_id: str = reply["id"]
        # The driver's preferences, as an aggregator would submit them.
        self.http.put(f"{self.service.url}/api/v1/sessions/NL/SIM/{session_id}/preferences", headers=self.api,
                      json={"profile_type": "REGULAR", "energy_need": kwh,
                            "departure_time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                            time.gmtime(time.time() + departure_s))}
                      ).raise_for_status()
        return session_id

    def evses(self, location: str) -> list[dict[str, Any]]:
        return [e for e in self.state()["evses"] if e["location_id"] == location]

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get(f"{self.sim}/sim/state").raise_for_status().json()
        return data

    def evs(self, location: str | None = None) -> list[dict[str, Any]]:
        return [ev for ev in self.state()["evs"] if location is None or ev["location_id"] == location]

    def commands(self, session_id: str | None = None) -> list[dict[str, Any]]:
        data = self.http.get(f"{self.sim}/sim/commands").raise_for_status().json()
        return [c for c in data if session_id is None or c["session_id"] == session_id]

    def faults(self, faults: list[dict[str, Any]]) -> None:
        self.http.put(f"{self.sim}/sim/faults", json=faults).raise_for_status()

    def samples(self, location: str, since: float) -> list[dict[str, float]]:
        meter = self.http.get(f"{self.sim}/sim/meter", params={"since": since}).raise_for_status().json()
        site = next(s for s in meter["sites"] if s["location_id"] == location)
        samples: list[dict[str, float]] = site["samples"]
        return samples

    def planned_at(self, received: dict[str, Any]) -> float:
        """When the plan behind a request the simulator received was made (from our response_url's id)."""
        command = self.store.commands.get(received["response_url"].rstrip("/").rsplit("/", 1)[-1])
        assert command is not None and command.plan is not None
        plan = self.store.plans.get(command.plan)
        assert plan is not None
        return plan.created_at.timestamp()

    def key(self, session_id: str) -> SessionKey:
        return SessionKey(party=self.party.id, country_code="NL", party_id="SIM", session_id=session_id)

    def all_applied(self, location: str | None = None) -> bool:
        evs = self.evs(location)
        return bool(evs) and all(ev["profile_source"] != "none" for ev in evs)


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    running = Loop(tmp_path)
    yield running
    running.close()


def test_two_sites_stay_within_their_limits_and_every_ev_gets_a_profile(loop: Loop) -> None:
    loop.grid(WORK, 40_000, failsafe_w=12_000)
    loop.grid(CITY, 80_000, failsafe_w=24_000)
    sessions = [loop.plug(e["location_id"], e["uid"], max_kw=min(e["max_w"], 50_000) / 1000)
                for e in loop.state()["evses"] if e["charging_profile_capable"]]
    assert len(sessions) >= 20
    wait_for(loop.all_applied, what="every EV to have a profile applied")
    since = time.time()
    time.sleep(3.0)
    for location, limit in ((WORK, 40_000), (CITY, 80_000)):
        samples = loop.samples(location, since)
        # On failure, say which charge points allowed what (the meter only has the site's sum).
        assert samples and max(s["load_w"] for s in samples) <= limit + TOLERANCE_W, (
            location, [(ev["evse_uid"], ev["power_w"], ev["limit_w"]) for ev in loop.evs(location)])
    # Each EV got a profile, accepted by the CPO; the site is not left idle below its limit.
    for session_id in sessions:
        puts = [c for c in loop.commands(session_id) if c["method"] == "PUT"]
        assert puts and puts[0]["response"]["result"] == "ACCEPTED"
    assert sum(ev["power_w"] for ev in loop.evs(WORK)) > 0.8 * 40_000
    plan = loop.http.get(f"{loop.service.url}/api/v1/sites/NL-SIM-{WORK}/plan", headers=loop.api).json()
    # Within the optimizer's checked tolerance (optimizer.check.TOLERANCE, relative: 40 mW here);
    # the profiles sent are rounded down, so what the charge points allow stays within the limit.
    assert plan["status"] in ("OPTIMAL", "FEASIBLE") and max(plan["site_power_w"]) <= 40_000 * (1 + 1e-6)


@pytest.fixture
def event_driven(tmp_path: Path) -> Iterator[Loop]:
    """A loop whose periodic cycle never comes round in a test: only events (debounced) re-plan."""
    running = Loop(tmp_path, interval_s=3600)
    yield running
    running.close()


def test_a_limit_decrease_reaches_the_charge_points_by_the_debounced_re_plan(event_driven: Loop) -> None:
    loop = event_driven
    loop.grid(WORK, 60_000, failsafe_w=12_000)
    for evse in loop.evses(WORK)[:8]:
        loop.plug(WORK, evse["uid"])
    wait_for(lambda: loop.all_applied(WORK), what="first profiles")
    wait_for(lambda: sum(ev["power_w"] for ev in loop.evs(WORK)) > 40_000, what="the EVs to charge")
    loop.grid(WORK, 20_000, failsafe_w=6_000)
    wait_for(lambda: allowed_w(loop.evs(WORK)) <= 20_000 + TOLERANCE_W,
             timeout=30, what="the lower limits to be applied")
    since = time.time()
    time.sleep(2.0)
    assert max(s["load_w"] for s in loop.samples(WORK, since)) <= 20_000 + TOLERANCE_W


def test_evs_get_their_energy_when_capacity_allows(loop: Loop) -> None:
    loop.grid(CITY, 200_000)
    ac = [e for e in loop.evses(CITY) if e["power_type"] != "DC"][:2]
    sessions = [loop.plug(CITY, e["uid"], kwh=0.02, max_kw=11.0) for e in ac]
    wait_for(lambda: all(ev["full"] for ev in loop.evs(CITY)), timeout=180, what="both EVs to be full")
    evs = {ev["session_id"]: ev for ev in loop.evs(CITY)}
    assert all(evs[s]["kwh"] >= 0.02 - 1e-6 for s in sessions)


FAULTS = ["TOO_OFTEN", "REJECTED", "NOT_SUPPORTED", "UNKNOWN_SESSION", "NO_CALLBACK", "SLOW_CALLBACK",
          "RESULT_REJECTED", "APPLY_LOWER"]


def test_every_fault_ends_in_its_documented_state_and_nothing_stays_pending(loop: Loop) -> None:
    loop.grid(WORK, 100_000, failsafe_w=20_000)
    evses = [e["uid"] for e in loop.evses(WORK)][: len(FAULTS)]
    values = {"SLOW_CALLBACK": 5.0, "APPLY_LOWER": 0.5}
    loop.faults([{"kind": kind, "evse_uid": uid, **({"value": values[kind]} if kind in values else {})}
                 for kind, uid in zip(FAULTS, evses, strict=True)])
    session = {kind: loop.plug(WORK, uid) for kind, uid in zip(FAULTS, evses, strict=True)}

    def commands(kind: str) -> list[Any]:
        return loop.store.commands.find(key=loop.key(session[kind]))

    def control(kind: str) -> Any:
        return loop.store.commands.control(loop.key(session[kind]))

    wait_for(lambda: all(commands(k) for k in FAULTS), what="a command for every session")
    # TOO_OFTEN: refused, backed off (no second PUT while the backoff lasts).
    wait_for(lambda: control("TOO_OFTEN").backoff_until, what="TOO_OFTEN backoff")
    assert commands("TOO_OFTEN")[-1].response == "TOO_OFTEN"
    # REJECTED / NOT_SUPPORTED / RESULT_REJECTED: no longer steered, planned as fixed load.
    for kind in ("REJECTED", "NOT_SUPPORTED", "RESULT_REJECTED"):
        wait_for(lambda k=kind: not control(k).controllable, what=f"{kind} session to become fixed load")
    plan = loop.store.plans.latest(f"NL-SIM-{WORK}")
    assert plan is not None
    rows = {r.key.session_id: r for r in plan.sessions}
    wait_for(lambda: not next(r for r in loop.store.plans.latest(f"NL-SIM-{WORK}").sessions  # type: ignore[union-attr]
                              if r.key.session_id == session["REJECTED"]).controllable, what="a re-plan")
    # UNKNOWN_SESSION: refused and paused.
    assert commands("UNKNOWN_SESSION")[-1].response == "UNKNOWN_SESSION" and control("UNKNOWN_SESSION").backoff_until
    # NO_CALLBACK: no result before the timeout -> unknown, then reconciled with a GET.
    wait_for(lambda: any(c.kind == "set" and c.state == "unknown" for c in commands("NO_CALLBACK")),
             what="NO_CALLBACK command to become unknown")
    wait_for(lambda: any(c["method"] == "GET" for c in loop.commands(session["NO_CALLBACK"])),
             what="a GET reconciling the unknown outcome")
    # SLOW_CALLBACK (after the 3 s timeout): unknown first, the late result still recorded.
    wait_for(lambda: any(c.kind == "set" and c.result == "ACCEPTED" for c in commands("SLOW_CALLBACK")),
             timeout=30, what="the late result")
    # APPLY_LOWER: the applied profile is judged below plan.
    wait_for(lambda: any(r.verdict == "UNDER_PLAN" for r in loop.store.commands.active_profiles()
                         if r.key.session_id == session["APPLY_LOWER"]), timeout=30, what="an UNDER_PLAN verdict")
    assert rows  # the plan listed every session
    # Nothing stays pending: every command in flight has a timeout that has not passed.
    now = time.time()
    for command in loop.store.commands.find(states=("pending", "awaiting_result")):
        assert command.timeout_at is None or command.timeout_at.timestamp() > now - 6, command


def test_a_cpo_that_was_down_gets_no_replay_one_resync_and_the_current_plan(loop: Loop) -> None:
    loop.grid(WORK, 30_000, failsafe_w=9_000)
    sessions = [loop.plug(WORK, e["uid"]) for e in loop.evses(WORK)[:4]]
    wait_for(lambda: loop.all_applied(WORK), what="first profiles")
    loop.faults([{"kind": "DOWNTIME"}])
    loop.grid(WORK, 20_000, failsafe_w=6_000)  # a change while the CPO is away
    wait_for(lambda: loop.store.sync.state(loop.party.id).unreachable_since, what="the CPO to be seen as down")
    received_during = len(loop.commands())
    time.sleep(3.0)  # a few planning cycles while it is down
    assert len(loop.commands()) == received_during  # nothing got through, nothing is queued
    pulls_before = loop.state()["pulls"]["sessions"]
    back = time.time()
    loop.http.delete(f"{loop.sim}/sim/faults").raise_for_status()
    wait_for(lambda: loop.store.sync.state(loop.party.id).unreachable_since is None, timeout=60,
             what="the resync after the CPO came back")
    wait_for(lambda: all(any(c["method"] == "PUT" and c["received_at"] >= time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(back - 1)) for c in loop.commands(s)) for s in sessions),
        timeout=30, what="the current plan to be sent to every session")
    for s in sessions:
        after = [c for c in loop.commands(s) if c["method"] == "PUT"
                 and c["received_at"] >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(back - 1))]
        # Only profiles of plans made after the return: nothing built while it was away is replayed.
        assert after and all(loop.planned_at(c) >= back - 1 for c in after)
    wait_for(lambda: allowed_w(loop.evs(WORK)) <= 20_000 + TOLERANCE_W,
             timeout=30, what="the lower limit to reach the charge points")
    # One resync: a single pull of its Sessions since it came back (the slow schedule is hours away).
    assert loop.state()["pulls"]["sessions"] == pulls_before + 1


def test_a_restarted_service_resumes_planning_and_sends_nothing_stale(loop: Loop) -> None:
    loop.grid(WORK, 30_000, failsafe_w=9_000)
    sessions = [loop.plug(WORK, e["uid"]) for e in loop.evses(WORK)[:4]]
    wait_for(lambda: loop.all_applied(WORK), what="first profiles")
    plan_before = loop.store.plans.latest(f"NL-SIM-{WORK}")
    assert plan_before is not None
    stopped, _ = loop.restart_service()
    wait_for(lambda: (p := loop.store.plans.latest(f"NL-SIM-{WORK}")) is not None and p.id > plan_before.id,
             what="a plan after the restart")
    loop.grid(WORK, 15_000, failsafe_w=5_000)
    wait_for(lambda: allowed_w(loop.evs(WORK)) <= 15_000 + TOLERANCE_W,
             timeout=30, what="the new limit to reach the charge points after the restart")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stopped + 1))  # sent by the new service
    for s in sessions:
        for c in loop.commands(s):
            if c["method"] == "PUT" and c["received_at"] >= stamp:
                assert loop.planned_at(c) >= stopped - 1  # built after the restart
    # Requests in flight at the restart became `unknown`; none is left pending (only ones just sent).
    assert all(c.created_at.timestamp() >= time.time() - 10 for c in loop.store.commands.find(states=("pending",)))


def test_an_operator_releases_a_session_with_delete_and_steers_it_again(loop: Loop) -> None:
    loop.grid(WORK, 30_000, failsafe_w=9_000)
    sessions = [loop.plug(WORK, e["uid"]) for e in loop.evses(WORK)[:3]]
    wait_for(lambda: loop.all_applied(WORK), what="first profiles")
    released = sessions[0]
    url = f"{loop.service.url}/api/v1/sessions/NL/SIM/{released}"

    def release() -> httpx.Response | None:
        # 409 while a profile request of the session awaits its answer (it says: try again shortly).
        answer = loop.http.post(f"{url}/release", headers=loop.api)
        return None if answer.status_code == 409 else answer

    reply = wait_for(release, timeout=30, what="the release to be taken")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["controllable"] is False and body["response"] == "ACCEPTED"
    wait_for(lambda: any(c.kind == "clear" and c.result == "ACCEPTED"
                         for c in loop.store.commands.find(key=loop.key(released))), what="the clear result")
    assert any(c["method"] == "DELETE" for c in loop.commands(released))
    assert loop.store.commands.control(loop.key(released)).accepted_profile is None
    # It is now fixed load in the plan, and the others keep the site within its limit.
    wait_for(lambda: not next(r for r in loop.store.plans.latest(f"NL-SIM-{WORK}").sessions  # type: ignore[union-attr]
                              if r.key.session_id == released).controllable, what="a re-plan with the released session")
    # Only admins may do this.
    aggregator, _ = issue_api_key(loop.store, role=ApiRole.aggregator, sites=(), label="agg", now=datetime.now(UTC))
    assert loop.http.post(f"{url}/manage", headers={"Authorization": f"Bearer {aggregator}"}).status_code == 403
    resumed = loop.http.post(f"{url}/manage", headers=loop.api)
    assert resumed.status_code == 200 and resumed.json()["controllable"] is True
    wait_for(lambda: loop.store.commands.control(loop.key(released)).accepted_profile is not None,
             what="a profile for the session again")
