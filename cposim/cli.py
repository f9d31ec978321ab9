"""`scsp simulate-cpo` and `scsp demo`: the simulator's commands, joined to `scsp` by an entry point.

pyproject.toml declares `register` in the `scsp.commands` entry point group, so `scsp` lists these
commands without the service importing the simulator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from cposim.app import create_simulator_asgi
from cposim.demo import run_demo
from scsp.cli.common import load
from scsp.logs import setup_logging
from scsp.platform.serving import bind, make_server, serve_all


def register(subparsers: Any, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """Add `simulate-cpo` and `demo` to the `scsp` parser."""
    p = with_config(subparsers.add_parser("simulate-cpo", help="run the CPO simulator"))
    p.add_argument("--register-with", metavar="VERSIONS_URL", help="register with this SCSP at start-up")
    p.add_argument("--token-a", help="token A issued by that SCSP (`scsp invite`)")
    p.set_defaults(func=cmd_simulate_cpo, check=_check_simulate_cpo)

    p = with_config(subparsers.add_parser("demo", help="run the service and the CPO simulator, registered"))
    p.set_defaults(func=cmd_demo)


def _check_simulate_cpo(args: argparse.Namespace) -> str | None:
    if args.register_with and not args.token_a:
        return "--register-with needs --token-a"
    return None


def cmd_simulate_cpo(args: argparse.Namespace) -> int:
    """Run the CPO simulator; optionally register it with an SCSP right away."""
    config = load(args)
    setup_logging(config.log_level, config.log_format)
    settings = config.simulator
    sock = bind(settings.host, settings.port, hint="choose another with SCSP_SIM_PORT or [simulator] port")
    server = make_server(create_simulator_asgi(settings), log_level=config.log_level)

    async def after_start() -> None:
        import httpx

        async with httpx.AsyncClient(timeout=30) as http:
            base = f"http://{settings.host}:{sock.getsockname()[1]}"
            if args.register_with:
                reply = await http.post(f"{base}/sim/register",
                                        json={"versions_url": args.register_with, "token_a": args.token_a})
                print(json.dumps(reply.json(), indent=2), file=sys.stderr)
                reply.raise_for_status()
            else:
                reply = await http.post(f"{base}/sim/invite", json={
                    "role": "SCSP", "country_code": config.party.country_code,
                    "party_id": config.party.party_id})
                reply.raise_for_status()
                print(json.dumps(reply.json()), flush=True)

    asyncio.run(serve_all([(server, sock)], after_start))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Start the service and the CPO simulator, register them with each other, keep running."""
    config = load(args)
    setup_logging(config.log_level, config.log_format)
    return run_demo(config)

