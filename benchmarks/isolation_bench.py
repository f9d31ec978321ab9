"""Tenant isolation: with one CPO that never posts results, how soon does another CPO's new session get its profile?

    .venv/bin/python benchmarks/isolation_bench.py [--seconds 60] [--interval 3]

The service and two CPO simulators, A (NL-ABC) and B (DE-XYZ), over loopback HTTP, registered
through invitations. A's charge points accept every request and never post a result (NO_CALLBACK);
A floods: every few seconds its site gets more room and a new EV at once, so A's plan sends a first
profile (a decrease) whose result its increases wait for (the dispatcher's DECREASE_WAIT_S), again
and again. Meanwhile B's EVs arrive one every `--interval` seconds. Printed: per B arrival the time
from the plug-in to B's simulator receiving the SetChargingProfile, and to the charge point
applying it; and, for comparison, the same with A answering normally (`--baseline`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cposim.app import create_simulator_asgi  # noqa: E402
from scsp.api.auth import issue_api_key  # noqa: E402
from scsp.app import create_app, edge  # noqa: E402
from scsp.config import (  # noqa: E402
    Config,
    HttpConfig,
    PartyConfig,
    PlanningConfig,
    ReadbackConfig,
    SimulatorConfig,
)
from scsp.dispatch.sender import DECREASE_WAIT_S  # noqa: E402
from scsp.platform.registration import new_token  # noqa: E402
from scsp.platform.serving import ServerThread, bind  # noqa: E402
from scsp.records.grid import ApiRole  # noqa: E402
from scsp.records.parties import PartyStatus, TokenKind  # noqa: E402

DEBOUNCE_S = 2.0


def start_simulator(tmp: Path, cc: str, pid: str) -> tuple[ServerThread, str]:
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = SimulatorConfig(country_code=cc, party_id=pid, host="127.0.0.1", port=port,
                               public_url=f"http://127.0.0.1:{port}", db_path=str(tmp / f"sim-{cc}{pid}.db"),
                               arrivals=False, tick_s=0.25, session_update_s=60.0, callback_delay_s=0.2,
                               profile_timeout_s=300, active_profile_duration_s=600)
    return ServerThread(create_simulator_asgi(settings), sock).start(), f"http://127.0.0.1:{port}"


def free_evses(http: httpx.Client, sim: str, location: str) -> list[str]:
    state = http.get(f"{sim}/sim/state").raise_for_status().json()
    return [e["uid"] for e in state["evses"] if e["location_id"] == location and e["session_id"] is None
            and e["charging_profile_capable"] and e["power_type"].startswith("AC")]


def plug(http: httpx.Client, sim: str, location: str, evse: str) -> str:
    reply = http.post(f"{sim}/sim/evs", json={"location_id": location, "evse_uid": evse, "energy_kwh": 30.0,
                                              "max_kw": 11.0, "departure_s": 7200}).raise_for_status().json()
    session_id: str = reply["id"]
    return session_id


def unplug(http: httpx.Client, sim: str, session_id: str) -> None:
    http.delete(f"{sim}/sim/evs/{session_id}").raise_for_status()


def run(seconds: float, interval: float, silent: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="scsp-iso-"))
    svc_sock = bind("127.0.0.1", 0)
    port = svc_sock.getsockname()[1]
    config = Config(db_path=str(tmp / "scsp.db"),
                    party=PartyConfig(country_code="NL", party_id="SCP", business_name="scsp"),
                    http=HttpConfig(host="127.0.0.1", port=port, public_url=f"http://127.0.0.1:{port}"),
                    planning=PlanningConfig(interval_s=3600, debounce_s=DEBOUNCE_S, horizon_h=1.0, slot_minutes=1,
                                            pull_interval_s=3600, pull_splay_s=0),
                    readback=ReadbackConfig(interval_s=3600, duration_s=600))
    app = create_app(config)
    service = ServerThread(edge(app), svc_sock).start()
    store = app.state.store
    a_thread, a = start_simulator(tmp, "NL", "ABC")
    b_thread, b = start_simulator(tmp, "DE", "XYZ")
    http = httpx.Client(timeout=30)
    try:
        for sim, cc, pid in ((a, "NL", "ABC"), (b, "DE", "XYZ")):
            token = new_token()
            store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code=cc, party_id=pid,
                                 token=token, token_kind=TokenKind.A, now=datetime.now(UTC))
            http.post(f"{sim}/sim/register", json={"versions_url": f"http://127.0.0.1:{port}/ocpi/versions",
                                                   "token_a": token}).raise_for_status()
        key, _ = issue_api_key(store, role=ApiRole.admin, sites=(), label="bench", now=datetime.now(UTC))
        api = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 30
        # Pulled, and resynced (until then nothing is sent to a party: `Dispatcher.may_send`).
        while len({(f.country_code, f.location_id) for f in store.sessions.evses()}) < 4 or any(
                store.sync.state(p.id).needs_resync for p in store.parties.all(include_unregistered=False)):
            if time.monotonic() > deadline:
                raise SystemExit("the simulators' locations were not pulled")
            time.sleep(0.2)

        def grid(site: str, limit_w: float) -> None:
            http.put(f"http://127.0.0.1:{port}/api/v1/sites/{site}/grid", headers=api,
                     json={"import_limit_w": limit_w}).raise_for_status()

        a_limit = 11_000.0
        grid("NL-ABC-LOC-WORK", a_limit)
        grid("DE-XYZ-LOC-WORK", 60_000)
        grid("DE-XYZ-LOC-CITY", 200_000)
        # A's first EVs get (and confirm) their profiles before A goes silent.
        for evse in free_evses(http, a, "LOC-WORK")[:2]:
            plug(http, a, "LOC-WORK", evse)
        time.sleep(3.0)
        if silent:
            http.put(f"{a}/sim/faults", json=[{"kind": "NO_CALLBACK"}]).raise_for_status()
        b_plugged: list[tuple[str, float]] = []
        a_plugs = 0
        end = time.monotonic() + seconds
        locations = ["LOC-WORK", "LOC-CITY"]
        while time.monotonic() < end:
            # A floods: more room and a new EV at once (increases wait for the new EV's result).
            a_free = free_evses(http, a, "LOC-WORK")
            if a_free:
                a_limit += 11_000
                grid("NL-ABC-LOC-WORK", a_limit)
                plug(http, a, "LOC-WORK", a_free[0])
                a_plugs += 1
            location = locations[len(b_plugged) % 2]
            b_free = free_evses(http, b, location)
            if not b_free:
                break
            asked = time.time()  # before the plug-in: the session may reach us before the call returns
            b_plugged.append((plug(http, b, location, b_free[0]), asked))
            time.sleep(interval)
        # Collect: when B's simulator received each first SetChargingProfile, and when it applied.
        time.sleep(5.0)
        commands = http.get(f"{b}/sim/commands").raise_for_status().json()
        received: dict[str, float] = {}
        for c in commands:
            if c["method"] == "PUT":
                stamp = datetime.fromisoformat(c["received_at"].replace("Z", "+00:00")).timestamp()
                received.setdefault(c["session_id"], stamp)
        latencies = [received[s] - t for s, t in b_plugged if s in received]
        missing = sum(1 for s, _ in b_plugged if s not in received)
        a_commands = http.get(f"{a}/sim/commands").raise_for_status().json()
        return {"b_sessions": len(b_plugged), "b_without_profile": missing, "latencies": latencies,
                "a_plugs": a_plugs, "a_requests": sum(1 for c in a_commands if c["method"] == "PUT"),
                "a_results_posted": sum(1 for c in a_commands if c.get("result_sent_at"))}
    finally:
        http.close()
        service.stop()
        a_thread.stop()
        b_thread.stop()


def report(name: str, out: dict[str, Any]) -> None:
    lat = sorted(out["latencies"])
    print(f"{name}: B sessions {out['b_sessions']}, without a profile {out['b_without_profile']}; "
          f"A plug-ins {out['a_plugs']}, A SetChargingProfile {out['a_requests']}, "
          f"A results posted {out['a_results_posted']}")
    if lat:
        print(f"  B plug-in -> SetChargingProfile received: min {lat[0]:.2f} s, median {statistics.median(lat):.2f} s, "
              f"max {lat[-1]:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long A floods and B's EVs arrive")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between B's arrivals")
    parser.add_argument("--baseline", action="store_true", help="also run with A answering normally")
    args = parser.parse_args()
    print(f"debounce_s {DEBOUNCE_S} (arrivals are planned at once), dispatcher wait for decreases "
          f"{DECREASE_WAIT_S:.0f} s")
    report("A silent (NO_CALLBACK)", run(args.seconds, args.interval, silent=True))
    if args.baseline:
        report("A answering", run(args.seconds, args.interval, silent=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
