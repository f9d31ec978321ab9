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
from scsp.config import Config
from scsp.serving import bind, make_server, serve_all
from scsp.simulator.app import create_simulator_asgi
from scsp.storage import Store


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
        print(json.dumps({
            "service": config.versions_url,
            "simulator": config.simulator.public_url,
            "registered": party.handle,
            "openapi": f"{config.http.public_url.rstrip('/')}/schema",
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
