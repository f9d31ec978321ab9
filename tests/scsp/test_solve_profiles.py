"""`scsp solve --profiles`: the exact OCPI ChargingProfile per session, through the main CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import msgspec

from ocpi221.chargingprofiles import ChargingProfile, spec_violations

PROBLEM = {
    "start": "2026-11-23T00:00:00Z", "slot_minutes": 15, "n_slots": 8,
    "site": {"limit_kw": 30.0, "voltage_v": 230, "failsafe_kw": 9.0},
    "evses": [{"id": "E1", "max_kw": 11.0, "phases": 3}, {"id": "E2", "max_kw": 7.4, "phases": 1, "phase": "L2"},
              {"id": "D1", "max_kw": 50.0, "dc": True}],
    "sessions": [
        {"id": "S1", "evse": "E1", "arrival_slot": 0, "departure_slot": 8, "energy_kwh": 10.0, "max_kw": 11.0,
         "min_kw": 4.2},
        {"id": "S2", "evse": "E2", "arrival_slot": 0, "departure_slot": 6, "energy_kwh": 5.0, "max_kw": 7.4},
        {"id": "S3", "evse": "D1", "arrival_slot": 1, "departure_slot": 4, "energy_kwh": 20.0, "max_kw": 50.0,
         "profile_type": "FAST"},
    ],
}


def scsp(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scsp.cli", *args], capture_output=True, text=True, timeout=120)


def test_solve_with_profiles_adds_a_valid_ocpi_profile_to_every_session(tmp_path: Path) -> None:
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(PROBLEM))
    done = scsp("solve", str(problem), "--profiles", "--max-periods", "3", "--failsafe-delay-s", "3600")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["status"] in ("OPTIMAL", "FEASIBLE")
    units = {}
    for session in plan["sessions"]:
        profile = msgspec.convert(session["charging_profile"], ChargingProfile)
        assert spec_violations(profile) == []
        assert session["charging_profile"]["start_date_time"] == "2026-11-23T00:00:00Z"
        assert "duration" not in session["charging_profile"]  # the failsafe tail lasts to the end
        assert len(profile.charging_profile_period) <= 3
        units[session["id"]] = profile.charging_rate_unit
    assert units == {"S1": "A", "S2": "A", "S3": "W"}  # A per phase for AC, W for DC
    # The tail: after the failsafe delay the limits add up to at most the site failsafe limit.
    tails_w = sum(p["charging_profile"]["charging_profile_period"][-1]["limit"] * (230 * 3 if p["id"] == "S1" else
                                                                                 230 if p["id"] == "S2" else 1)
                  for p in plan["sessions"])
    assert tails_w <= 9000.0


def test_solve_without_profiles_keeps_the_plain_contract(tmp_path: Path) -> None:
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(PROBLEM))
    out = tmp_path / "plan.json"
    done = scsp("solve", str(problem), "--out", str(out))
    assert done.returncode == 0 and done.stdout == ""
    plan = json.loads(out.read_text())
    assert {"status", "sessions", "site_power_kw", "stats"} <= set(plan)
    assert all("charging_profile" not in s for s in plan["sessions"])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PROBLEM, "n_slots": "eight"}))
    failed = scsp("solve", str(bad), "--profiles")
    assert failed.returncode == 2 and "n_slots" in failed.stderr


def test_a_slot_length_that_is_not_whole_seconds_exits_2_naming_slot_minutes_before_solving(tmp_path: Path) -> None:
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps({**PROBLEM, "slot_minutes": 7.123}))  # 427.38 s
    done = scsp("solve", str(problem), "--profiles")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(f"scsp solve: {problem}: slot_minutes: ")
    assert "whole number of seconds" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # Without --profiles the same problem is fine: the optimizer needs no whole seconds.
    assert scsp("solve", str(problem)).returncode == 0
