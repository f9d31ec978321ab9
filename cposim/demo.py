"""`scsp demo` / `make run`: the service and a simulated CPO, registered with each other."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from cposim.app import create_simulator_asgi
from ocpi221.locations import PowerType, current_paths
from scsp.api.auth import issue_api_key
from scsp.app import create_app, edge, scsp_platform
from scsp.config import Config, SimSiteConfig, SimulatorConfig
from scsp.platform import registration
from scsp.platform.serving import bind, make_server, serve_all
from scsp.records.grid import ApiRole, SiteSettings
from scsp.records.sessions import Preferences, site_id
from scsp.store import Store

# The demo's sites get a grid limit at this fraction of their uncontrolled peak (all EVSEs at their
# maximum), and a failsafe limit at this fraction of that. The demo plugs an EV into every second
# capable EVSE, so uncontrolled they would draw about half the peak: a quarter binds at once, and a
# newcomer sees curtailment in the first minute rather than after lowering a limit themselves.
DEMO_LIMIT_FRACTION = 0.25
DEMO_FAILSAFE_FRACTION = 0.3


def uncontrolled_peak_w(site: SimSiteConfig) -> float:
    """The simulated site's load with every EVSE at its maximum (W)."""
    total = 0.0
    for evse in site.evses:
        power = float(evse.max_voltage * evse.max_amperage * current_paths(PowerType(evse.power_type)))
        if evse.max_electric_power:
            power = min(power, float(evse.max_electric_power))
        total += power * evse.count
    return total


def set_demo_limits(store: Store, config: Config, now: datetime) -> list[str]:
    """Give each simulated site a grid limit below its uncontrolled peak, unless one is set already."""
    named = []
    for site in config.simulator.sites:
        name = site_id(config.simulator.country_code, config.simulator.party_id, site.id)
        if store.grid.settings(name) is None:
            limit = round(DEMO_LIMIT_FRACTION * uncontrolled_peak_w(site))
            store.grid.put_settings(SiteSettings(site_id=name, import_limit_w=limit,
                                                 failsafe_w=round(DEMO_FAILSAFE_FRACTION * limit), updated_at=now))
        named.append(name)
    return named


# EVs plugged in at start-up so the demo shows smart charging at once (random arrivals follow the
# simulator's daily pattern and may be few at this hour): every second capable EVSE of each site.
DEMO_EV = {"energy_kwh": 20.0, "departure_s": 4 * 3600.0}


async def plug_demo_evs(sim_base: str, settings: SimulatorConfig) -> list[str]:
    """Plug an EV into every second EVSE of the simulator that accepts profiles; returns their session ids."""
    import httpx

    plugged: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        state = (await http.get(f"{sim_base}/sim/state")).json()
        free = [e for e in state["evses"] if e["charging_profile_capable"] and e["session_id"] is None]
        for evse in free[::2]:
            max_kw = min(evse["max_w"], 50_000.0) / 1000
            reply = await http.post(f"{sim_base}/sim/evs", json={
                "location_id": evse["location_id"], "evse_uid": evse["uid"], "max_kw": max_kw, **DEMO_EV})
            if reply.status_code == 201:
                plugged.append(reply.json()["id"])
    return plugged


def demo_lines(*, base: str, simulator: str, sites: list[str], aggregator_key: str, dso_key: str,
               registered: str, plugged: int) -> list[str]:
    """What the demo prints once both servers run; scripts read the `dashboard:` and `... key:` lines."""
    site = sites[0] if sites else "SITE"
    return [
        f"dashboard: {base}/dashboard",
        f"aggregator key: {aggregator_key}",
        f"dso key: {dso_key}",
        f"curl -i -H 'Authorization: Bearer {dso_key}' {base}/api/v1/sites/{site}/plan"
        "  # the site's plan; send its ETag back as -H 'If-None-Match: ...' to poll: 304 while it holds",
        f"curl -X PUT -H 'Authorization: Bearer {dso_key}' -H 'Content-Type: application/json' "
        f"-d '{{\"import_limit_w\": 20000}}' {base}/api/v1/sites/{site}/grid"
        "  # as the DSO: lower its grid limit to 20 kW, re-planned within seconds",
        f"sites: {', '.join(sites)} (registered with the simulated CPO {registered}, {plugged} EVs plugged in)",
        f"service: {base}/ (API docs {base}/schema, OpenAPI {base}/schema/openapi.json, "
        f"OCPI {base}/ocpi/versions)",
        f"simulator: {simulator}/ (state {simulator}/sim/state, meter {simulator}/sim/meter, "
        f"faults {simulator}/sim/faults: its control API, no key)",
    ]


def run_demo(config: Config) -> int:
    """Serve both platforms; the service registers with the simulator (we initiate the handshake)."""
    # The simulator is a fresh CPO each run: its registrations start empty.
    for suffix in ("", "-wal", "-shm"):
        Path(config.simulator.db_path + suffix).unlink(missing_ok=True)
    scsp_sock = bind(config.http.host, config.http.port, hint="choose another with SCSP_PORT=...")
    try:
        sim_sock = bind(config.simulator.host, config.simulator.port, hint="choose another with SCSP_SIM_PORT=...")
    except OSError:
        scsp_sock.close()
        raise
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
            store.parties, app.state.client, scsp_platform(config), invitation["versions_url"], invitation["token_a"],
            now=datetime.now(UTC))
        sites = set_demo_limits(store, config, datetime.now(UTC))
        # Keys for this run (stored hashed like any other; shown once, here). Both may read everything
        # and open the dashboard; the aggregator may also send signals and drivers' preferences, the
        # DSO signals and grid settings.
        aggregator_key, _ = issue_api_key(store, role=ApiRole.aggregator, sites=(), label="demo aggregator",
                                          now=datetime.now(UTC))
        dso_key, _ = issue_api_key(store, role=ApiRole.dso, sites=(), label="demo DSO", now=datetime.now(UTC))
        plugged = await plug_demo_evs(sim_base, config.simulator)
        now = datetime.now(UTC)
        for session_id in plugged:  # what the drivers told their app, as an aggregator would submit it
            store.grid.put_preferences(Preferences(
                country_code=config.simulator.country_code.upper(), party_id=config.simulator.party_id.upper(),
                session_id=session_id, profile_type="REGULAR",
                departure=now + timedelta(seconds=DEMO_EV["departure_s"]),
                energy_kwh=DEMO_EV["energy_kwh"], source="demo", updated_at=now))
        for name in sites:
            app.state.events.site_changed(name)
        base = config.http.public_url.rstrip("/")
        for line in demo_lines(base=base, simulator=config.simulator.public_url.rstrip("/"), sites=sites,
                               aggregator_key=aggregator_key, dso_key=dso_key, registered=party.handle,
                               plugged=len(plugged)):
            print(line, flush=True)
        print("demo running; Ctrl-C stops it", file=sys.stderr, flush=True)

    try:
        asyncio.run(serve_all(servers, register))
    except KeyboardInterrupt:
        return 0
    except msgspec.ValidationError as exc:
        print(f"scsp demo: {exc}", file=sys.stderr)
        return 1
    return 0
