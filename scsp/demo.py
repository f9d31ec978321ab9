"""`scsp demo` / `make run`: the service and a simulated CPO, registered with each other."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import msgspec

from scsp import registration
from scsp.app import create_app, edge, scsp_platform
from scsp.config import Config, SimSiteConfig
from scsp.records import SiteSettings
from scsp.serving import bind, make_server, serve_all
from scsp.simulator.app import create_simulator_asgi
from scsp.sites import site_id
from scsp.storage import Store

# The demo's sites get a grid limit at this fraction of their uncontrolled peak (all EVSEs at their
# maximum), so smart charging has something to do, and a failsafe limit at this fraction of that.
DEMO_LIMIT_FRACTION = 0.5
DEMO_FAILSAFE_FRACTION = 0.3
PHASES = {"AC_1_PHASE": 1, "AC_2_PHASE": 2, "AC_2_PHASE_SPLIT": 2, "AC_3_PHASE": 3, "DC": 1}


def uncontrolled_peak_w(site: SimSiteConfig) -> float:
    """The simulated site's load with every EVSE at its maximum (W)."""
    total = 0.0
    for evse in site.evses:
        power = float(evse.max_voltage * evse.max_amperage * PHASES[evse.power_type])
        if evse.max_electric_power:
            power = min(power, float(evse.max_electric_power))
        total += power * evse.count
    return total


def set_demo_limits(store: Store, config: Config, now: int) -> list[str]:
    """Give each simulated site a grid limit below its uncontrolled peak, unless one is set already."""
    named = []
    for site in config.simulator.sites:
        name = site_id(config.simulator.country_code, config.simulator.party_id, site.id)
        if store.site_settings(name) is None:
            limit = round(DEMO_LIMIT_FRACTION * uncontrolled_peak_w(site))
            store.put_site_settings(SiteSettings(site_id=name, import_limit_w=limit,
                                                 failsafe_w=round(DEMO_FAILSAFE_FRACTION * limit), updated_at=now))
        named.append(name)
    return named


def run_demo(config: Config) -> int:
    """Serve both platforms; the service registers with the simulator (we initiate the handshake)."""
    # The simulator is a fresh CPO each run: its registrations start empty.
    for suffix in ("", "-wal", "-shm"):
        Path(config.simulator.db_path + suffix).unlink(missing_ok=True)
    scsp_sock = bind(config.http.host, config.http.port)
    sim_sock = bind(config.simulator.host, config.simulator.port)
    app = create_app(config)
    servers = [
        (make_server(edge(app), log_level=config.log_level), scsp_sock),
        (make_server(create_simulator_asgi(config.simulator), log_level=config.log_level), sim_sock),
    ]

    async def register() -> None:
        import httpx

        sim_base = f"http://{config.simulator.host}:{sim_sock.getsockname()[1]}"
        async with httpx.AsyncClient(timeout=30) as http:
            reply = await http.post(f"{sim_base}/sim/invite", json={
                "role": "SCSP", "country_code": config.party.country_code, "party_id": config.party.party_id})
            reply.raise_for_status()
            invitation = reply.json()
        store: Store = app.state.store
        party = await registration.register_with(
            store, app.state.client, scsp_platform(config), invitation["versions_url"], invitation["token_a"],
            now=time.time())
        sites = set_demo_limits(store, config, int(time.time()))
        print(json.dumps({
            "service": config.versions_url,
            "sites": {name: f"{config.http.public_url.rstrip('/')}/api/v1/sites/{name}/plan" for name in sites},
            "simulator": config.simulator.public_url,
            "registered": party.handle,
            "openapi": f"{config.http.public_url.rstrip('/')}/schema",
            "api_key": "create one with: .venv/bin/scsp apikey create --role admin",
        }, indent=2), flush=True)
        print("demo running; Ctrl-C stops it", file=sys.stderr, flush=True)

    try:
        asyncio.run(serve_all(servers, register))
    except KeyboardInterrupt:
        return 0
    except msgspec.ValidationError as exc:
        print(f"scsp demo: {exc}", file=sys.stderr)
        return 1
    return 0
