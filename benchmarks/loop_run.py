"""A recorded run of the whole loop: the service and the CPO simulator with random EV traffic.

    .venv/bin/python benchmarks/loop_run.py --minutes 10

The simulator's EVs arrive on its daily pattern (scaled up so a short run sees traffic), an
"aggregator" submits each driver's preferences (energy need, departure) through the API as EVs
arrive, the DSO sets each site's import limit below its uncontrolled peak, and the service plans
and dispatches. At the end it prints, per site: the limit, the peak metered load (all samples, and
only samples where every EV on the site had a profile applied), energy delivered vs requested for
EVs that left, and every ChargingProfiles request the service made with its outcome. "Settled"
samples are those taken after the site was planned since its last arrival and while every EV we
steer applies what we asked: before that, a new EV draws its maximum (a charge point has no limit
from us until we sent one), which "all samples" includes.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec

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
from scsp.platform.registration import new_token  # noqa: E402
from scsp.platform.serving import ServerThread, bind  # noqa: E402
from scsp.records.commands import CommandKind  # noqa: E402
from scsp.records.grid import ApiRole  # noqa: E402
from scsp.records.parties import PartyStatus, TokenKind  # noqa: E402

LIMITS_W = {"LOC-WORK": 45_000.0, "LOC-CITY": 120_000.0}


def parse(stamp: str) -> float:
    """Unix seconds of an OCPI DateTime."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def zone_at_hour(hour: int, now: datetime) -> str:
    """An IANA `Etc/GMT±N` zone in which the local time `now` is `hour` o'clock (within the hour)."""
    offset = (hour - now.hour + 12) % 24 - 12  # hours east of UTC, -12..11
    # The Etc zones' signs are POSIX-style: Etc/GMT-9 is UTC+9.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--arrival-scale", type=float, default=15.0, help="multiplies the arrival rates")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--local-hour", type=int, choices=range(24), metavar="H",
                        help="put the simulated sites in a time zone where it is now about H o'clock, so a run "
                             "at any hour sees that hour's traffic (default: the sites' own zone)")
    parser.add_argument("--arrival-reserve", choices=("none", "largest_idle_evse", "fixed"), default="none",
                        help="each site's arrival reserve (README \"Arrival reserve\")")
    parser.add_argument("--arrival-reserve-w", type=float, default=None, help="the reserve for --arrival-reserve fixed")
    parser.add_argument("--limit-w", nargs=2, type=float, metavar=("WORK", "CITY"),
                        help=f"the sites' import limits (default {LIMITS_W['LOC-WORK']:.0f} and "
                             f"{LIMITS_W['LOC-CITY']:.0f} W)")
    args = parser.parse_args()
    if args.limit_w:
        LIMITS_W.update({"LOC-WORK": args.limit_w[0], "LOC-CITY": args.limit_w[1]})
    tmp = Path(tempfile.mkdtemp(prefix="scsp-run-"))

    sim_sock, svc_sock = bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    sim_port, svc_port = sim_sock.getsockname()[1], svc_sock.getsockname()[1]
    sim = SimulatorConfig(host="127.0.0.1", port=sim_port, public_url=f"http://127.0.0.1:{sim_port}",
                          db_path=str(tmp / "sim.db"), arrivals=True, arrival_rate_scale=args.arrival_scale,
                          seed=args.seed, tick_s=1.0, session_update_s=10.0, callback_delay_s=0.5)
    if args.local_hour is not None:
        zone = zone_at_hour(args.local_hour, datetime.now(UTC))
        sim = msgspec.structs.replace(sim, sites=tuple(msgspec.structs.replace(site, time_zone=zone)
                                                       for site in sim.sites))
        print(f"sites in {zone}: local time {datetime.now(ZoneInfo(zone)):%H:%M}", file=sys.stderr)
    config = Config(db_path=str(tmp / "scsp.db"), log_level="WARNING",
                    party=PartyConfig(country_code="NL", party_id="SCP"),
                    http=HttpConfig(host="127.0.0.1", port=svc_port, public_url=f"http://127.0.0.1:{svc_port}"),
                    planning=PlanningConfig(interval_s=15, debounce_s=1.0, horizon_h=8.0, slot_minutes=5),
                    readback=ReadbackConfig(interval_s=60, duration_s=900), simulator=sim)
    app = create_app(config)
    threads = [ServerThread(create_simulator_asgi(sim), sim_sock).start(), ServerThread(edge(app), svc_sock).start()]
    store = app.state.store
    http = httpx.Client(timeout=30)
    sim_url, svc_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{svc_port}"
    try:
        token_a = new_token()
        store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="SIM", token=token_a,
                           token_kind=TokenKind.A, now=datetime.now(UTC))
        http.post(f"{sim_url}/sim/register", json={"versions_url": config.versions_url, "token_a": token_a}
                  ).raise_for_status()
        key, _ = issue_api_key(store, role=ApiRole.admin, sites=(), label="run", now=datetime.now(UTC))
        api = {"Authorization": f"Bearer {key}"}
        # A site exists once its CPO's Location names it (README "The aggregator and DSO API").
        deadline = time.time() + 60
        while {f"NL-SIM-{loc}" for loc in LIMITS_W} - {
                s["site_id"] for s in http.get(f"{svc_url}/api/v1/sites", headers=api).raise_for_status().json()}:
            if time.time() > deadline:
                raise SystemExit("the simulator's locations did not arrive")
            time.sleep(0.2)
        for location, limit in LIMITS_W.items():
            http.put(f"{svc_url}/api/v1/sites/NL-SIM-{location}/grid", headers=api,
                     json={"import_limit_w": limit, "failsafe_w": 0.3 * limit,
                           "arrival_reserve": args.arrival_reserve,
                           **({"arrival_reserve_w": args.arrival_reserve_w}
                              if args.arrival_reserve_w is not None else {})}).raise_for_status()
        started = time.time()
        seen: dict[str, dict[str, Any]] = {}
        controlled_peak = collections.defaultdict(float)
        end = started + args.minutes * 60
        while time.time() < end:
            state = http.get(f"{sim_url}/sim/state").raise_for_status().json()
            by_site = collections.defaultdict(list)
            for ev in state["evs"]:
                by_site[ev["location_id"]].append(ev)
                if ev["session_id"] not in seen:
                    http.put(f"{svc_url}/api/v1/sessions/NL/SIM/{ev['session_id']}/preferences", headers=api,
                             json={"profile_type": "REGULAR", "energy_need": ev["energy_need_kwh"],
                                   "departure_time": ev["departure_at"]})
                seen[ev["session_id"]] = ev
            for location, evs in by_site.items():
                load = sum(ev["power_w"] for ev in evs)
                steerable = [ev for ev in evs if ev["evse_uid"] not in ("WRK-AC3-OLD", "CTY-AC1-OLD")]
                plan = store.plans.latest(f"NL-SIM-{location}")
                last_arrival = max(parse(ev["plugged_at"]) for ev in evs)
                # Settled: planned since the last arrival (which may be an EV we cannot steer), no profile
                # request in flight, and every EV we steer applies what we asked.
                ids = {ev["session_id"] for ev in evs}
                in_flight = any(c.key.session_id in ids and c.kind == "set"
                                for c in store.commands.find(states=("pending", "awaiting_result")))
                if plan is not None and plan.created_at.timestamp() > last_arrival + 1 and not in_flight and all(
                        ev["profile_source"] != "none" and ev["profile"] == ev["requested_profile"]
                        for ev in steerable):
                    controlled_peak[location] = max(controlled_peak[location], load)
            time.sleep(1.0)
        meter = http.get(f"{sim_url}/sim/meter", params={"since": started}).raise_for_status().json()
        state = http.get(f"{sim_url}/sim/state").raise_for_status().json()
        present = {ev["session_id"] for ev in state["evs"]}
        left = [ev for sid, ev in seen.items() if sid not in present]
        report: dict[str, Any] = {"minutes": args.minutes, "arrival_reserve": args.arrival_reserve,
                                  "evs_seen": len(seen), "evs_left": len(left), "sites": {}}
        for site in meter["sites"]:
            loc = site["location_id"]
            report["sites"][loc] = {
                "limit_w": LIMITS_W[loc],
                "peak_w_all_samples": max((s["load_w"] for s in site["samples"]), default=0.0),
                # Time above the limit (s), over every sample: what arrivals before their first profile cost.
                "over_limit_s": round(sum(
                    max(0.0, b["t"] - a["t"]) for a, b in zip(site["samples"], site["samples"][1:], strict=False)
                    if a["load_w"] > LIMITS_W[loc] + 1.0), 1),
                "peak_w_settled": controlled_peak[loc],
                "energy_kwh": round(site["energy_kwh"], 2),
            }
        report["left_evs"] = {
            "requested_kwh": round(sum(ev["energy_need_kwh"] for ev in left), 2),
            "delivered_kwh": round(sum(ev["kwh"] for ev in left), 2),
        }
        report["present_evs"] = {
            "requested_kwh": round(sum(ev["energy_need_kwh"] for ev in state["evs"]), 2),
            "delivered_kwh": round(sum(ev["kwh"] for ev in state["evs"]), 2),
        }
        # From the EV plugging in (the simulator's Session PUT) to our first SetChargingProfile for it.
        delays = []
        for row in store.sessions.find(limit=1_000_000)[0]:
            ev = seen.get(row.session.id)
            sets = store.commands.find(key=row.key, kinds=(CommandKind.SET,), limit=1_000_000)
            if ev is not None and sets:
                delays.append(min(c.created_at.timestamp() for c in sets) - parse(ev["plugged_at"]))
        delays.sort()
        report["arrival_to_first_profile_s"] = {
            "sessions": len(delays),
            "p50": round(delays[len(delays) // 2], 2) if delays else None,
            "p95": round(delays[int(len(delays) * 0.95)], 2) if delays else None,
            "max": round(delays[-1], 2) if delays else None,
        }
        outcomes = collections.Counter(f"{c.kind}:{c.response or '-'}:{c.result or c.state}"
                                       for c in store.commands.find(limit=1_000_000))
        report["commands"] = dict(sorted(outcomes.items()))
        since = datetime.fromtimestamp(started, UTC)
        plans = [p for loc in LIMITS_W for p in store.plans.history(f"NL-SIM-{loc}", since=since)]
        report["plans"] = {"count": len(plans), "by_status": dict(collections.Counter(p.status for p in plans)),
                           "by_path": dict(collections.Counter(p.path for p in plans))}
        print(json.dumps(report, indent=2))
    finally:
        http.close()
        for thread in reversed(threads):
            thread.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
