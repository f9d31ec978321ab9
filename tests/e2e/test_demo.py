"""`scsp demo` (what `make run` starts): the service and the simulator, registered with each other."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import token_header


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """A running `scsp demo` process and the lines it printed."""

    def __init__(self, process: subprocess.Popen[str], lines: list[str], svc: int, sim: int) -> None:
        self.process, self.lines, self.svc, self.sim = process, lines, svc, sim

    def value(self, prefix: str) -> str:
        return next(line for line in self.lines if line.startswith(prefix))[len(prefix):].strip()


def start_demo(tmp_path: Path, svc: int, sim: int) -> Demo:
    """The demo on these ports, set by the environment alone (the config file names no port)."""
    config = tmp_path / "config.toml"
    config.write_text('db_path = "scsp.db"\nlog_level = "WARNING"\n[simulator]\ndb_path = "sim.db"\narrivals = false\n')
    process = subprocess.Popen(
        [sys.executable, "-m", "scsp.cli", "demo", "--config", str(config)], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SCSP_PORT": str(svc), "SCSP_SIM_PORT": str(sim)})
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("simulator: "):
            break
    return Demo(process, lines, svc, sim)


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    running = start_demo(tmp_path, free_port(), free_port())
    yield running
    stop(running.process)


def curl(line: str) -> httpx.Response:
    """Run one of the demo's example curl commands (parsed, sent with httpx: no curl needed)."""
    words = shlex.split(line, comments=True)
    assert words[0] == "curl"
    method, headers, body, url = "GET", {}, None, None
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-X":
            method, i = words[i + 1], i + 2
        elif word == "-H":
            name, _, value = words[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 2
        elif word == "-d":
            body, i = words[i + 1], i + 2
        elif word == "-i":
            i += 1
        else:
            url, i = word, i + 1
    assert url is not None
    return httpx.request(method, url, headers=headers, content=body, timeout=10)


def test_the_demo_prints_its_lines_and_both_platforms_are_registered(demo: Demo) -> None:
    svc, sim = demo.svc, demo.sim
    # Scripts read these three lines, in this order, then the two curl examples.
    assert demo.lines[0] == f"dashboard: http://127.0.0.1:{svc}/dashboard"
    assert demo.lines[1].startswith("aggregator key: scsp_") and demo.lines[2].startswith("dso key: scsp_")
    assert demo.lines[3].startswith("curl ") and demo.lines[4].startswith("curl -X PUT")
    aggregator, dso = demo.value("aggregator key:"), demo.value("dso key:")
    assert f"http://127.0.0.1:{sim}/" in demo.value("simulator:")
    with httpx.Client(timeout=10) as http:
        sim_parties = http.get(f"http://127.0.0.1:{sim}/sim/parties").json()
        assert [(p["handle"], p["status"]) for p in sim_parties] == [("NL-SCP", "REGISTERED")]
        assert http.get(f"http://127.0.0.1:{svc}/readyz").json()["status"] == "ready"
        for key, role in ((aggregator, "aggregator"), (dso, "dso")):
            assert http.get(f"http://127.0.0.1:{svc}/api/v1/sites", headers={"Authorization": f"Bearer {key}"}
                            ).status_code == 200, role
        # The roles are what the lines say: the aggregator key may not set grid settings.
        grid = http.put(f"http://127.0.0.1:{svc}/api/v1/sites/NL-SIM-LOC-WORK/grid", json={"import_limit_w": 1},
                        headers={"Authorization": f"Bearer {aggregator}"})
        assert grid.status_code == 403
        # The service answers OCPI with the token the simulator holds for it... and only with that.
        assert http.get(f"http://127.0.0.1:{svc}/ocpi/versions", headers=token_header("nope")).status_code == 401
    # The first plan follows the start within seconds (a deadline, not a speed test).
    deadline = time.monotonic() + 30
    while (plan := curl(demo.lines[3])).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert plan.status_code == 200 and plan.headers["ETag"]
    lowered = curl(demo.lines[4])
    assert lowered.status_code == 200 and lowered.json()["import_limit_w"] == 20000


def test_the_demo_limits_bind_within_the_first_minute(demo: Demo) -> None:
    """Curtailment a newcomer can see: some charge point applies a limit below what its EV would draw."""
    deadline = time.monotonic() + 60
    curtailed: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not curtailed:
        state = httpx.get(f"http://127.0.0.1:{demo.sim}/sim/state", timeout=10).json()
        curtailed = [ev for ev in state["evs"] if ev["limit_w"] is not None
                     and ev["limit_w"] < min(ev["vehicle_max_w"], ev["evse_max_w"]) - 100]
        time.sleep(0.5)
    assert curtailed, "no EV is held below its maximum: the demo's limits do not bind"


def test_a_busy_port_is_one_clear_line(demo: Demo, tmp_path: Path) -> None:
    second = tmp_path / "second"
    second.mkdir()
    config = second / "config.toml"
    config.write_text('db_path = "scsp.db"\n[simulator]\ndb_path = "sim.db"\narrivals = false\n')
    done = subprocess.run([sys.executable, "-m", "scsp.cli", "demo", "--config", str(config)], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "SCSP_PORT": str(demo.svc), "SCSP_SIM_PORT": str(free_port())})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"scsp: cannot listen on 127.0.0.1:{demo.svc}: the port is in use (another scsp running?); "
        "choose another with SCSP_PORT=..."]
