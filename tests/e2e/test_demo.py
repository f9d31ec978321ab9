"""`scsp demo` (what `make run` starts): the service and the simulator, registered with each other."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import token_header


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_starts_both_platforms_registered_with_each_other(tmp_path: Path) -> None:
    svc, sim = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'db_path = "scsp.db"\nlog_level = "WARNING"\n'
        f'[http]\nport = {svc}\npublic_url = "http://127.0.0.1:{svc}"\n'
        f'[simulator]\nport = {sim}\npublic_url = "http://127.0.0.1:{sim}"\ndb_path = "sim.db"\narrivals = false\n')
    process = subprocess.Popen([sys.executable, "-m", "scsp.cli", "demo", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("}"):
                break
        summary = json.loads("".join(lines))
        assert summary["registered"] == "NL-SIM"
        assert set(summary["sites"]) == {"NL-SIM-LOC-WORK", "NL-SIM-LOC-CITY"}
        assert summary["evs_plugged_in"] >= 10
        key = summary["dashboard"].split("#key=")[1]
        with httpx.Client(timeout=10) as http:
            sim_parties = http.get(f"http://127.0.0.1:{sim}/sim/parties").json()
            assert [(p["handle"], p["status"]) for p in sim_parties] == [("NL-SCP", "REGISTERED")]
            assert http.get(f"http://127.0.0.1:{svc}/readyz").json()["status"] == "ready"
            sites = http.get(f"http://127.0.0.1:{svc}/api/v1/sites", headers={"Authorization": f"Bearer {key}"})
            assert sites.status_code == 200  # the dashboard link's key works
            # The service answers OCPI with the token the simulator holds for it... and only with that.
            assert http.get(f"http://127.0.0.1:{svc}/ocpi/versions", headers=token_header("nope")).status_code == 401
        listed = subprocess.run([sys.executable, "-m", "scsp.cli", "parties", "--json", "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
        assert [(p["handle"], p["status"]) for p in json.loads(listed.stdout)] == [("NL-SIM", "REGISTERED")]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
