"""The HTTP path under load: durable OCPI writes, signal writes and plan polls, against a bare app.

    .venv/bin/python benchmarks/http_bench.py [--seconds 15] [--connections 16] [--rounds 1]

Starts `scsp serve` (a subprocess, as deployed) on a temporary database holding a registered CPO
(NL-CPA) with `--sites` sites of `--sessions` active sessions each plus one large site of
`--big-site` sessions, and a bare Litestar + msgspec app that decodes the same Session PATCH and
answers an OCPI envelope without storing anything. wrk (Debian's `wrk`) drives each request kind for
`--seconds`, once with the planner idle and once while planning cycles of the whole fleet run back
to back (every `interval_s = 1`). Prints req/s, p50, p99, non-2xx and the ratio to the bare app.
Every 2xx from the service was committed with `synchronous=FULL` before it was answered.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocpi221.credentials import CredentialsRole  # noqa: E402
from ocpi221.locations import Location  # noqa: E402
from ocpi221.sessions import Session  # noqa: E402
from ocpi221.types import BusinessDetails, Role  # noqa: E402
from scsp.api.auth import issue_api_key  # noqa: E402
from scsp.records.grid import ApiRole, SiteSettings  # noqa: E402
from scsp.records.parties import PartyStatus, TokenKind  # noqa: E402
from scsp.store import Store  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "fixtures" / "ocpi-2.2.1"
TOKEN = "bench-cpo-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def session_doc(sid: str, location: str, evse: str, now: datetime) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    doc.update(country_code="NL", party_id="CPA", id=sid, location_id=location, evse_uid=evse, connector_id="1",
               kwh=1.0, status="ACTIVE", start_date_time=iso(now - timedelta(minutes=30)), last_updated=iso(now))
    return doc


def seed(db: Path, sites: int, sessions: int, big: int) -> tuple[str, list[str], str]:
    """A registered CPO, its sites and sessions; returns an admin key, the small sites' names, the big one."""
    store = Store(db)
    store.migrate()
    now = datetime.now(UTC)
    party = store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="CPA",
                                 token=TOKEN, token_kind=TokenKind.C, now=now)
    role = CredentialsRole(role=Role.CPO, country_code="NL", party_id="CPA",
                           business_details=BusinessDetails(name="CPA"))
    # No endpoints: nothing is sent out, so the figures are the HTTP path's own.
    party = store.parties.complete_registration(
        party.id, roles=[role], identity=role, versions_url="http://127.0.0.1:9/versions", version="2.2.1",
        version_url="http://127.0.0.1:9/2.2.1", endpoints=[], token_out="unused", token_base64=True,
        new_token=None, now=now)
    template = json.loads((EXAMPLES / "location_example.json").read_text())
    names = []
    for n, count in [*((f"LOC{i}", sessions) for i in range(sites)), ("BIG", big)]:
        evses = [{"uid": f"E{k}", "status": "CHARGING", "last_updated": iso(now),
                  "capabilities": ["CHARGING_PROFILE_CAPABLE"],
                  "connectors": [{"id": "1", "standard": "IEC_62196_T2", "format": "SOCKET",
                                  "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16,
                                  "last_updated": iso(now)}]} for k in range(count)]
        store.sessions.put_location(party.id, msgspec.convert(
            dict(template, country_code="NL", party_id="CPA", id=n, evses=evses, last_updated=iso(now)), Location))
        for k in range(count):
            store.sessions.put(party.id, msgspec.convert(session_doc(f"{n}-S{k}", n, f"E{k}", now), Session), now=now)
        store.grid.put_settings(SiteSettings(site_id=f"NL-CPA-{n}", import_limit_w=11_000.0 * count / 3,
                                             updated_at=now))
        names.append(f"NL-CPA-{n}")
    key, _ = issue_api_key(store, role=ApiRole.admin, sites=(), label="bench", now=now)
    return key, names[:-1], names[-1]


BARE_APP = textwrap.dedent('''
    """A bare Litestar + msgspec app: decode a Session PATCH, answer an OCPI envelope (nothing stored)."""
    from datetime import UTC, datetime
    from typing import Any
    import msgspec
    from litestar import Litestar, Request, patch, put
    from litestar.response import Response

    class SessionPatch(msgspec.Struct, kw_only=True):
        kwh: float | None = None
        last_updated: datetime

    @patch("/ocpi/2.2.1/sessions/{cc:str}/{pid:str}/{sid:str}")
    async def patch_session(request: Request[Any, Any, Any], cc: str, pid: str, sid: str) -> Response[bytes]:
        body = msgspec.json.decode(await request.body(), type=SessionPatch)
        envelope = {"status_code": 1000, "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert body.last_updated
        return Response(msgspec.json.encode(envelope), media_type="application/json")

    app = Litestar([patch_session])
''')

LUA = {
    "patch": '''
        local n = 0
        request = function()
          n = n + 1
          local id = (n * %(threads)d + math.random(0, %(threads)d - 1)) %% %(ids)d
          local body = string.format('{"kwh": %%d.5, "last_updated": "%%s.%%06dZ"}', n,
                                     os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", os.time() + 60), n %% 1000000)
          return wrk.format("PATCH", "/ocpi/2.2.1/sessions/NL/CPA/LOC" .. (id %% %(sites)d) .. "-S" ..
                            math.floor(id / %(sites)d), {["Content-Type"] = "application/json",
                            ["Authorization"] = "Token %(token)s"}, body)
        end''',
    "put": '''
        local n = 0
        local template = [[%(session)s]]
        request = function()
          n = n + 1
          local id = (n * %(threads)d + math.random(0, %(threads)d - 1)) %% %(ids)d
          local loc = "LOC" .. (id %% %(sites)d)
          local sid = loc .. "-S" .. math.floor(id / %(sites)d)
          local stamp = string.format("%%s.%%06dZ", os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", os.time() + 60), n %% 1000000)
          local body = template:gsub("__SID__", sid):gsub("__LOC__", loc):gsub("__EVSE__",
                       "E" .. math.floor(id / %(sites)d)):gsub("__STAMP__", stamp)
          return wrk.format("PUT", "/ocpi/2.2.1/sessions/NL/CPA/" .. sid, {["Content-Type"] = "application/json",
                            ["Authorization"] = "Token %(token)s"}, body)
        end''',
    "signal": '''
        local n = 0
        request = function()
          n = n + 1
          local body = string.format('{"source": "dso-%%d", "points": [{"start": "%%s", "end": "%%s", "value": %%d}]}',
                                     n %% 50, os.date("!%%Y-%%m-%%dT%%H:00:00Z", os.time() + 3600),
                                     os.date("!%%Y-%%m-%%dT%%H:00:00Z", os.time() + 7200), 100000 + n)
          return wrk.format("PUT", "/api/v1/sites/LOCSITE/signals/import_limit",
                            {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(key)s"}, body)
        end''',
    "plan": '''
        request = function()
          return wrk.format("GET", "/api/v1/sites/%(big)s/plan", {["Authorization"] = "Bearer %(key)s"})
        end''',
    "plan304": '''
        request = function()
          return wrk.format("GET", "/api/v1/sites/%(big)s/plan", {["Authorization"] = "Bearer %(key)s",
                            ["If-None-Match"] = '%(etag)s'})
        end''',
}


def unit_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def wrk(url: str, script: str, *, seconds: float, connections: int, threads: int) -> dict[str, float]:
    """One wrk run; its req/s, p50, p99 (ms) and the count of non-2xx/3xx answers."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
                              "-s", f.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = unit_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = unit_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "non2xx": float(bad.group(1)) if bad else 0.0,
            "socket_errors": errors.group(1) if errors else ""}  # type: ignore[dict-item]


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server at {url} did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=30, help="active sessions per small site")
    parser.add_argument("--big-site", type=int, default=700, help="sessions of the large site whose plan is polled")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every row; min and median are printed")
    parser.add_argument("--only", nargs="*", default=None, help="row names to run (e.g. patch plan)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="scsp-http-"))
    db = tmp / "scsp.db"
    key, sites, big = seed(db, args.sites, args.sessions, args.big_site)
    processes: list[subprocess.Popen[bytes]] = []
    results: dict[str, list[dict[str, float]]] = {}
    try:
        bare_port = free_port()
        (tmp / "bare_app.py").write_text(BARE_APP)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(bare_port), "--log-level", "warning",
             "--no-access-log"], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        bare = f"http://127.0.0.1:{bare_port}"
        wait_ready(bare + "/", processes[-1])
        session = json.dumps(session_doc("__SID__", "__LOC__", "__EVSE__", datetime.now(UTC)) | {
            "last_updated": "__STAMP__"})
        fill = {"threads": args.threads, "ids": args.sites * args.sessions, "sites": args.sites,
                "token": TOKEN, "key": key, "big": big, "session": session}

        def service(cycle: bool) -> tuple[str, subprocess.Popen[bytes]]:
            port = free_port()
            interval = 1 if cycle else 86_400
            config = tmp / f"config-{port}.toml"
            config.write_text(f'db_path = "{db}"\nlog_level = "WARNING"\n[http]\nport = {port}\n'
                              f'public_url = "http://127.0.0.1:{port}"\n'
                              f'[planning]\ninterval_s = {interval}\ndebounce_s = {1.0 if cycle else 3600.0}\n'
                              f'slot_minutes = 15\nhorizon_h = 24\n')
            proc = subprocess.Popen([str(Path(sys.executable).parent / "scsp"), "serve", "--config", str(config)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            wait_ready(url + "/healthz", proc)
            # The large site's plan exists before its polls are measured.
            deadline = time.time() + 120
            while httpx.get(f"{url}/api/v1/sites/{big}/plan", headers={"Authorization": f"Bearer {key}"},
                            timeout=30).status_code != 200:
                if time.time() > deadline:
                    raise SystemExit("no plan for the large site")
                time.sleep(0.5)
            return url, proc

        def run(name: str, url: str, script: str) -> None:
            if args.only and name.split(" ")[0] not in args.only:
                return
            row = wrk(url, script, seconds=args.seconds, connections=args.connections, threads=args.threads)
            results.setdefault(name, []).append(row)
            print(f"{name}: {row}", file=sys.stderr, flush=True)

        for _ in range(args.rounds):
            run("bare PATCH", bare, LUA["patch"] % fill)
            for cycle in (False, True):
                url, proc = service(cycle)
                processes.append(proc)
                label = " (cycles running)" if cycle else ""
                etag = httpx.get(f"{url}/api/v1/sites/{big}/plan",
                                 headers={"Authorization": f"Bearer {key}"}).headers.get("etag", '"none"')
                run(f"patch{label}", url, LUA["patch"] % fill)
                run(f"put{label}", url, LUA["put"] % fill)
                run(f"signal{label}", url, (LUA["signal"] % fill).replace("LOCSITE", sites[0]))
                run(f"plan{label}", url, LUA["plan"] % fill)
                run(f"plan304{label}", url, LUA["plan304"] % (fill | {"etag": etag}))
                proc.terminate()
                proc.wait(timeout=30)
                processes.remove(proc)
        bare_rps = statistics.median(r["rps"] for r in results.get("bare PATCH", [{"rps": float("nan")}]))
        titles = {"bare PATCH": "bare Litestar + msgspec, Session PATCH decoded, nothing stored",
                  "patch": "Session PATCH (kwh, last_updated)", "put": "Session PUT (replace)",
                  "signal": "import_limit signal PUT", "plan": f"GET plan, {args.big_site}-session site",
                  "plan304": f"GET plan, {args.big_site}-session site, If-None-Match -> 304"}
        print("| request | req/s (min / median) | p50 ms | p99 ms | non-2xx | x bare |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, rows in results.items():
            base, _, rest = name.partition(" (")
            title = titles.get(name, titles.get(base, name)) + (f" ({rest}" if rest else "")
            rps = [r["rps"] for r in rows]
            p50 = statistics.median(r["p50"] for r in rows)
            p99 = statistics.median(r["p99"] for r in rows)
            print(f"| {title} | {min(rps):,.0f} / {statistics.median(rps):,.0f} | {p50:.1f} | {p99:.1f} | "
                  f"{sum(r['non2xx'] for r in rows):.0f} | {statistics.median(rps) / bare_rps:.2f} |")
    finally:
        for proc in processes:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
