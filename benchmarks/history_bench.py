"""How long the dashboard's reads take on a day of data: `/history` and `/fleet` of a busy site.

One site with `--sessions` sessions over the past 24 h: a plan every `--plan-every-s` seconds (96
slots of 15 minutes, one row per session), an ActiveChargingProfile per session every
`--readback-s`, and an energy report per session every `--report-s` (each a committed write, as a
CPO's push is: filling takes minutes). Times `site_history` (24 h in buckets of 5 minutes, and 1 h
in buckets of 15 s) and the fleet row of that site, in-process on a real SQLite file, and prints
the figures (median of `--repeat` runs).

    .venv/bin/python benchmarks/history_bench.py
    .venv/bin/python benchmarks/history_bench.py --sessions 40 --plan-every-s 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.sessions import Session
from profiles import ComplianceVerdict, ElectricalFacts
from scsp.api.history import fleet_site, site_history
from scsp.records.commands import ActiveProfileRecord, ProfileSource
from scsp.records.plans import PlanDetail, PlanSession, StoredPlan
from scsp.records.sessions import SessionKey
from scsp.store import Store

# The test helpers register a party and hold the spec's example Session (run from the repository).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import EXAMPLES, register_party  # noqa: E402

SITE = "NL-CPA-LOC1"


def fill(store: Store, *, sessions: int, plan_every_s: int, readback_s: int, report_s: int,
         now: datetime) -> dict[str, int]:
    """A day of one site's data; the counts of what was stored."""
    _, party = register_party(store, "NL", "CPA")
    start = now - timedelta(hours=24)
    doc = msgspec.json.decode((EXAMPLES / "session_example_1_simple_start.json").read_bytes())
    keys = [SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id=f"S{i:03d}")
            for i in range(sessions)]
    counts = {"plans": 0, "active_profiles": 0, "energy_reports": 0}
    for step in range(0, 24 * 3600, report_s):
        at = start + timedelta(seconds=step)
        for i, key in enumerate(keys):
            doc.update(country_code="NL", party_id="CPA", id=key.session_id, location_id="LOC1", status="ACTIVE",
                       kwh=round(step / 3600 * (3 + i % 5), 3), last_updated=at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                       end_date_time=None)
            store.sessions.put(party.id, msgspec.convert(doc, Session), now=at)
            counts["energy_reports"] += 1
    for step in range(0, 24 * 3600, plan_every_s):
        at = start + timedelta(seconds=step)
        rows = [PlanSession(key=key, controllable=True, facts=ElectricalFacts(), max_w=11040.0, evse_max_w=11040.0,
                            power_w=[7000.0] * 96, energy_kwh=10.0, shortfall_kwh=0.0) for key in keys]
        store.plans.save(StoredPlan(id=0, site_id=SITE, created_at=at, start=at, slot_s=900, n_slots=96,
                                    status="OPTIMAL", path="LP", limit_w=[7000.0 * sessions] * 96,
                                    site_power_w=[6500.0 * sessions] * 96, fixed_load_w=[500.0] * 96,
                                    detail=PlanDetail(failsafe_w=0.0), sessions=rows))
        counts["plans"] += 1
    for step in range(0, 24 * 3600, readback_s):
        at = start + timedelta(seconds=step)
        profile = ChargingProfile(charging_rate_unit=ChargingRateUnit.A, start_date_time=at, duration=900,
                                  charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=10.0)])
        for key in keys:
            store.commands.save_active_profile(ActiveProfileRecord(
                id=0, key=key, source=ProfileSource.GET, received_at=at,
                profile=ActiveChargingProfile(start_date_time=at, charging_profile=profile),
                verdict=ComplianceVerdict.COMPLIANT, worst_excess_w=0.0, compliance=1.0))
            counts["active_profiles"] += 1
    return counts


def timed(run: object, repeat: int) -> float:
    """Median wall time of `run()` in ms."""
    assert callable(run)
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        run()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--plan-every-s", type=int, default=300)
    parser.add_argument("--readback-s", type=int, default=300)
    parser.add_argument("--report-s", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "scsp.db")
        store.migrate()
        began = time.perf_counter()
        counts = fill(store, sessions=args.sessions, plan_every_s=args.plan_every_s, readback_s=args.readback_s,
                      report_s=args.report_s, now=now)
        print(f"stored a day of one site in {time.perf_counter() - began:.1f} s: {args.sessions} sessions, "
              f"{counts['plans']} plans, {counts['active_profiles']} active profiles, "
              f"{counts['energy_reports']} energy reports")
        day = timed(lambda: site_history(store, SITE, since=now - timedelta(hours=24), until=now, bucket_s=300,
                                         now=now), args.repeat)
        hour = timed(lambda: site_history(store, SITE, since=now - timedelta(hours=1), until=now, bucket_s=15,
                                          now=now), args.repeat)
        row = timed(lambda: fleet_site(store, SITE, name=None, time_zone=None, now=now, hours=24), args.repeat)
        print(f"history 24 h / 300 s buckets (288): {day:.0f} ms")
        print(f"history 1 h / 15 s buckets (240):   {hour:.0f} ms")
        print(f"fleet row (24 h sparkline):        {row:.0f} ms")


if __name__ == "__main__":
    main()
