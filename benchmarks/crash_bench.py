"""Crash durability: `kill -9` the service at random moments under load; count what was lost.

    .venv/bin/python benchmarks/crash_bench.py [--min-cycles 200] [--max-rounds 150] [--max-minutes 14]

`scsp serve` runs as its own process (with its solver processes) on a SQLite file in a temporary
directory, planning every second and after every change. Two threads push Sessions over OCPI (a
CPO registered in the file beforehand: each new EV on an EVSE, and the one before it there leaving,
a COMPLETED update) and one thread submits import-limit signals over `/api/v1` (an aggregator key),
each with a fresh id per write, without pause, across restarts. In every
round the service starts, the time to `/readyz` 200 is measured, it runs under that load for a
random 0.5-4 s, and then its whole process group is killed with SIGKILL. Before the next start the
file is opened alone and checked:

- `PRAGMA integrity_check` is `ok`;
- every write that was acknowledged (HTTP 2xx with OCPI 1000, or 200 on /api/v1) is there, an
  acknowledged COMPLETED update as COMPLETED: lost = 0;
- no write is there twice: duplicated = 0 (a session id once, a signal source with one point once).

Rounds continue until the service made at least `--min-cycles` planning passes (distinct plan
times), or `--max-rounds` / `--max-minutes` ends them. Printed at the end: rounds, planning passes
and plans, acknowledged writes by kind, lost, duplicated, integrity failures, and the time to ready
(min / median / max).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ocpi221.credentials import CredentialsRole  # noqa: E402
from ocpi221.types import BusinessDetails, Role  # noqa: E402
from scsp.api.auth import issue_api_key  # noqa: E402
from scsp.platform.serving import bind  # noqa: E402
from scsp.records.grid import ApiRole  # noqa: E402
from scsp.records.parties import PartyStatus, TokenKind  # noqa: E402
from scsp.store import Store  # noqa: E402

LOCATIONS = ["LOC-1", "LOC-2", "LOC-3", "LOC-4"]
EVSES_PER_LOCATION = 6
CPO_TOKEN = "crash-bench-cpo-token-0123456789"


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def location_doc(location_id: str) -> dict[str, Any]:
    now = stamp(datetime.now(UTC))
    return {"country_code": "NL", "party_id": "ABC", "id": location_id, "publish": True, "address": "Street 1",
            "city": "Town", "country": "NLD", "coordinates": {"latitude": "52.0", "longitude": "5.0"},
            "time_zone": "Europe/Amsterdam", "last_updated": now,
            "evses": [{"uid": f"E{i}", "status": "CHARGING", "capabilities": ["CHARGING_PROFILE_CAPABLE"],
                       "last_updated": "2020-01-01T00:00:00Z",
                       "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                       "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16,
                                       "last_updated": now}]} for i in range(EVSES_PER_LOCATION)]}


def session_doc(session_id: str, location_id: str, evse: int, status: str = "ACTIVE") -> dict[str, Any]:
    now = stamp(datetime.now(UTC))
    return {"country_code": "NL", "party_id": "ABC", "id": session_id, "start_date_time": now, "kwh": 0,
            "cdr_token": {"country_code": "NL", "party_id": "ABC", "uid": "T1", "type": "RFID",
                          "contract_id": "C1"},
            "auth_method": "WHITELIST", "location_id": location_id, "evse_uid": f"E{evse}", "connector_id": "1",
            "currency": "EUR", "status": status, "last_updated": now}


def prepare(tmp: Path) -> tuple[Path, Path, int, str]:
    """The config, the database with a registered CPO and an aggregator key; (config, db, port, key)."""
    db = tmp / "scsp.db"
    store = Store(db)
    store.migrate()
    now = datetime.now(UTC)
    party = store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="ABC",
                                 token=CPO_TOKEN, token_kind=TokenKind.C, now=now)
    role = CredentialsRole(role=Role.CPO, country_code="NL", party_id="ABC", business_details=BusinessDetails(name="A"))
    # The CPO's own API is not reachable (port 9): pulls fail fast, its sessions are planned all the same.
    store.parties.complete_registration(
        party.id, roles=[role], identity=role, versions_url="http://127.0.0.1:9/versions", version="2.2.1",
        version_url="http://127.0.0.1:9/2.2.1", endpoints=[], token_out="unused", token_base64=True,
        new_token=None, now=now)
    key, _ = issue_api_key(store, role=ApiRole.aggregator, sites=(), label="crash-bench", now=now)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    config = tmp / "config.toml"
    config.write_text(
        f'db_path = "{db}"\nlog_level = "WARNING"\n'
        '[party]\ncountry_code = "NL"\nparty_id = "SCP"\n'
        f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
        '[planning]\ninterval_s = 1\ndebounce_s = 0.2\nhorizon_h = 4.0\nslot_minutes = 15\ndispatch = false\n'
        'pull_interval_s = 3600\npull_splay_s = 0.0\n')
    return config, db, port, key


class Acknowledged:
    """Writes the service acknowledged, by kind, and the counters of the load threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sessions: set[str] = set()
        # Sessions whose COMPLETED update was acknowledged: they must be stored COMPLETED.
        self.completed: set[str] = set()
        self.signals: set[str] = set()
        self.locations: set[str] = set()
        self.refused: dict[str, int] = {}

    def refuse(self, what: str) -> None:
        with self.lock:
            self.refused[what] = self.refused.get(what, 0) + 1


def push_sessions(base: str, acked: Acknowledged, stop: threading.Event, name: str) -> None:
    headers = {"Authorization": f"Token {CPO_TOKEN}"}
    n = 0
    slots = len(LOCATIONS) * EVSES_PER_LOCATION
    with httpx.Client(timeout=5) as http:
        while not stop.is_set():
            n += 1
            session_id = f"{name}-{n}"
            location = LOCATIONS[n % len(LOCATIONS)]
            if n > slots and f"{name}-{n - slots}" in acked.sessions and f"{name}-{n - slots}" not in acked.completed:
                # The EV before this one on the same EVSE leaves: an update that must not be lost either
                # (and keeps the active sessions, what every pass reads, at one per EVSE).
                previous = f"{name}-{n - slots}"
                try:
                    reply = http.put(f"{base}/ocpi/2.2.1/sessions/NL/ABC/{previous}", headers=headers,
                                     json=session_doc(previous, location, n % EVSES_PER_LOCATION, "COMPLETED"))
                except httpx.HTTPError:
                    time.sleep(0.05)
                    n -= 1
                    continue
                if reply.status_code in (200, 201) and reply.json().get("status_code") == 1000:
                    with acked.lock:
                        acked.completed.add(previous)
                else:
                    acked.refuse(f"session update {reply.status_code}")
            try:
                if location not in acked.locations:
                    reply = http.put(f"{base}/ocpi/2.2.1/locations/NL/ABC/{location}", headers=headers,
                                     json=location_doc(location))
                    if reply.status_code in (200, 201) and reply.json().get("status_code") == 1000:
                        with acked.lock:
                            acked.locations.add(location)
                reply = http.put(f"{base}/ocpi/2.2.1/sessions/NL/ABC/{session_id}", headers=headers,
                                 json=session_doc(session_id, location, n % EVSES_PER_LOCATION))
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if reply.status_code in (200, 201) and reply.json().get("status_code") == 1000:
                with acked.lock:
                    acked.sessions.add(session_id)
            else:
                acked.refuse(f"session {reply.status_code}")


def submit_signals(base: str, key: str, acked: Acknowledged, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    n = 0
    with httpx.Client(timeout=5) as http:
        while not stop.is_set():
            n += 1
            source = f"agg-{n}"
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=n % 60)
            body = {"source": source, "points": [{"start": stamp(start), "end": stamp(start + timedelta(minutes=15)),
                                                  "value": 20_000.0 + n % 1000}]}
            try:
                reply = http.post(f"{base}/api/v1/sites/NL-ABC-{LOCATIONS[n % len(LOCATIONS)]}/signals/import_limit",
                                  headers=headers, json=body)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if reply.status_code == 200:
                with acked.lock:
                    acked.signals.add(source)
            else:
                acked.refuse(f"signal {reply.status_code}")


def check(db: Path, acked: Acknowledged) -> dict[str, Any]:
    """Open the file alone after a kill: integrity, lost and duplicated acknowledged writes, passes."""
    with acked.lock:
        sessions, signals, completed = set(acked.sessions), set(acked.signals), set(acked.completed)
    conn = sqlite3.connect(db)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        stored_sessions = [r[0] for r in conn.execute("SELECT id FROM sessions")]
        stored_completed = {r[0] for r in conn.execute("SELECT id FROM sessions WHERE status = 'COMPLETED'")}
        stored_signals = [r[0] for r in conn.execute("SELECT source FROM signals")]
        passes = conn.execute("SELECT count(DISTINCT created_at) FROM plans").fetchone()[0]
        plans = conn.execute("SELECT count(*) FROM plans").fetchone()[0]
    finally:
        conn.close()
    return {
        "integrity": integrity,
        "lost": len(sessions - set(stored_sessions)) + len(signals - set(stored_signals))
        + len(completed - stored_completed),
        "duplicated": (len(stored_sessions) - len(set(stored_sessions)))
        + (len(stored_signals) - len(set(stored_signals))),
        "passes": passes, "plans": plans,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-cycles", type=int, default=200, help="planning passes to reach")
    parser.add_argument("--max-rounds", type=int, default=300)
    parser.add_argument("--max-minutes", type=float, default=14.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="scsp-crash-"))
    config, db, port, key = prepare(tmp)
    base = f"http://127.0.0.1:{port}"
    acked = Acknowledged()
    stop = threading.Event()
    threads = [threading.Thread(target=push_sessions, args=(base, acked, stop, name), daemon=True)
               for name in ("s1", "s2")]
    threads.append(threading.Thread(target=submit_signals, args=(base, key, acked, stop), daemon=True))
    for thread in threads:
        thread.start()
    ready_s: list[float] = []
    failures: list[str] = []
    lost = duplicated = 0
    result: dict[str, Any] = {"passes": 0, "plans": 0}
    rounds = 0
    began = time.monotonic()
    log = open(tmp / "serve.log", "ab")  # noqa: SIM115 - kept open for every round's process
    scsp = str(Path(sys.executable).parent / "scsp")
    try:
        while (rounds < args.max_rounds and result["passes"] < args.min_cycles
               and time.monotonic() - began < args.max_minutes * 60):
            rounds += 1
            started = time.monotonic()
            proc = subprocess.Popen([scsp, "serve", "--config", str(config)], stdout=log, stderr=log,
                                    start_new_session=True)
            with httpx.Client(timeout=1) as http:
                while True:
                    try:
                        if http.get(f"{base}/readyz").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if proc.poll() is not None:
                        raise SystemExit(f"scsp serve exited with {proc.returncode}; see {tmp / 'serve.log'}")
                    if time.monotonic() - started > 60:
                        raise SystemExit("not ready within 60 s")
                    time.sleep(0.02)
            ready_s.append(time.monotonic() - started)
            time.sleep(rng.uniform(0.5, 4.0))
            # The whole group: the service and its solver processes, as a power cut would.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            result = check(db, acked)
            lost, duplicated = result["lost"], result["duplicated"]
            if result["integrity"] != "ok":
                failures.append(f"round {rounds}: {result['integrity']}")
            if lost or duplicated:
                failures.append(f"round {rounds}: lost {lost}, duplicated {duplicated}")
            print(f"round {rounds}: ready {ready_s[-1]:.2f} s, passes {result['passes']}, lost {lost}, "
                  f"duplicated {duplicated}, integrity {result['integrity']}", flush=True)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        log.close()
    final = check(db, acked)
    print()
    print(f"kill -9 rounds: {rounds} in {(time.monotonic() - began) / 60:.1f} min")
    print(f"planning passes: {final['passes']} (plans saved: {final['plans']})")
    print(f"acknowledged writes: {len(acked.sessions)} new sessions, {len(acked.completed)} session updates "
          f"(COMPLETED), {len(acked.signals)} signal submissions, {len(acked.locations)} locations")
    print(f"refused (not acknowledged): {acked.refused or 'none'}")
    print(f"lost: {final['lost']}, duplicated: {final['duplicated']}, integrity_check failures: "
          f"{sum(1 for f in failures if 'lost' not in f)}")
    print(f"time to ready: min {min(ready_s):.2f} s, median {statistics.median(ready_s):.2f} s, "
          f"max {max(ready_s):.2f} s")
    for failure in failures:
        print("FAILURE", failure)
    return 1 if failures or final["lost"] or final["duplicated"] else 0


if __name__ == "__main__":
    sys.exit(main())
