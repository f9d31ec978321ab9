"""`make run` twice in a row, and after a crash: the demo shows a healthy site every time.

The service keeps its database between runs, the simulator starts as a fresh CPO (new tokens, new
sessions on the same EVSEs). The sessions of an earlier run must not hold a site's capacity: every
session planned is one the simulator has now, and the reported load never stands above the limit.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.test_demo import free_port
from tests.e2e.test_smart_charging import wait_for


class Demo:
    def __init__(self, config: Path, svc: int, sim: int) -> None:
        self.svc, self.sim = svc, sim
        self.process = subprocess.Popen([sys.executable, "-m", "scsp.cli", "demo", "--config", str(config)],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=config.parent,
                                        start_new_session=True)
        assert self.process.stdout is not None
        self.lines: list[str] = []
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("simulator: "):
                break
        self.key = next(line for line in self.lines if line.startswith("dso key:")).split(":", 1)[1].strip()
        self.http = httpx.Client(timeout=10, headers={"Authorization": f"Bearer {self.key}"})

    def get(self, path: str) -> Any:
        return self.http.get(f"http://127.0.0.1:{self.svc}{path}").raise_for_status().json()

    def sim_sessions(self, location: str) -> set[str]:
        state = httpx.get(f"http://127.0.0.1:{self.sim}/sim/state", timeout=10).raise_for_status().json()
        return {ev["session_id"] for ev in state["evs"] if ev["location_id"] == location}

    def healthy(self, site: str, location: str) -> bool:
        """Every planned session is one the simulator has now, each real EV is steered, nothing over."""
        reply = self.http.get(f"http://127.0.0.1:{self.svc}/api/v1/sites/{site}/plan")
        if reply.status_code == 404:
            return False  # no plan yet
        plan = reply.raise_for_status().json()
        planned = {s["session_id"] for s in plan["sessions"]}
        current = self.sim_sessions(location)
        if not current or planned != current:
            return False
        if not all(s["controllable"] for s in plan["sessions"]):
            return False  # an earlier run's session left as fixed load (CPO gone / unreachable)
        compliance = self.get(f"/api/v1/sites/{site}/compliance")
        return bool(compliance["over_limit_w"] <= 1.0)

    def stop(self, sig: signal.Signals) -> None:
        self.http.close()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        try:  # what a killed demo leaves behind (its solver fork server) goes with it
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_demo_is_healthy_on_every_run_after_a_stop_and_after_a_crash(tmp_path: Path) -> None:
    svc, sim = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'db_path = "{tmp_path / "scsp.db"}"\nlog_level = "WARNING"\n'
        f'[http]\nport = {svc}\npublic_url = "http://127.0.0.1:{svc}"\n'
        f'[planning]\ninterval_s = 5\ndebounce_s = 0.5\n'
        f'[simulator]\nport = {sim}\npublic_url = "http://127.0.0.1:{sim}"\ndb_path = "{tmp_path / "sim.db"}"\n'
        f'arrivals = false\n')
    sites = {"NL-SIM-LOC-WORK": "LOC-WORK", "NL-SIM-LOC-CITY": "LOC-CITY"}
    earlier: set[str] = set()
    for run, stop in enumerate((signal.SIGINT, signal.SIGKILL, signal.SIGINT)):
        demo = Demo(config, svc, sim)
        try:
            assert any(line.startswith("dashboard: ") for line in demo.lines)
            for site, location in sites.items():
                wait_for(functools.partial(demo.healthy, site, location), timeout=90,
                         what=f"run {run + 1}: {site} planned with only the simulator's current sessions")
            now_sessions = set().union(*(demo.sim_sessions(loc) for loc in sites.values()))
            assert not now_sessions & earlier  # the simulator really is a fresh CPO each run
            earlier |= now_sessions
            listed = demo.get("/api/v1/sites")
            assert {s["site_id"] for s in listed} == set(sites)
        finally:
            demo.stop(stop)
        time.sleep(0.5)
