"""The `scsp` command line. Names and outputs are stable: tooling depends on them."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from scsp import api_cli, solve_cmd
from scsp.config import Config, ConfigError, CountryCode, PartyId, load_config
from scsp.errors import OcpiError, PeerError
from scsp.logs import setup_logging
from scsp.platform import registration
from scsp.platform.client import OcpiClient
from scsp.records.parties import Party, PartyStatus, TokenKind
from scsp.store import Store


def _constrained(kind: Any, expected: str) -> Callable[[str], str]:
    """An argparse `type` checking a value against the constrained type config uses for it."""

    def parse(value: str) -> str:
        try:
            return str(msgspec.convert(value, kind)).upper()
        except msgspec.ValidationError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None

    return parse


def _config(args: argparse.Namespace) -> Config:
    return load_config(Path(args.config) if getattr(args, "config", None) else None)


def _client(config: Config) -> OcpiClient:
    return OcpiClient(country_code=config.party.country_code.upper(), party_id=config.party.party_id.upper(),
                      connect_timeout_s=config.http.connect_timeout_s,
                      request_timeout_s=config.http.request_timeout_s)


def _store(config: Config) -> Store:
    store = Store(config.db_path)
    store.migrate()
    return store


def party_json(party: Party) -> dict[str, Any]:
    """A party as the CLI prints it (never with tokens)."""
    return {
        "id": party.id,
        "handle": party.handle,
        "role": party.role,
        "country_code": party.country_code,
        "party_id": party.party_id,
        "business_name": party.business_name,
        "status": party.status.value,
        "connection_status": party.connection_status.value,
        "versions_url": party.versions_url,
        "version": party.version,
        "token_base64": party.token_base64,
        "endpoints": [{"identifier": e.identifier, "role": e.role.value, "url": e.url} for e in party.endpoints],
    }


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


def find_party(store: Store, ref: str) -> Party:
    """A party by row id or by handle (`CC-PID`, `CC*PID` or `CC/PID`); the newest live one wins."""
    if ref.isdigit():
        return store.parties.get(int(ref))
    key = ref.upper().replace("*", "-").replace("/", "-")
    matches = [p for p in store.parties.all() if p.handle == key]
    live = [p for p in matches if p.status != PartyStatus.UNREGISTERED]
    if not (live or matches):
        raise LookupError(f"no party {ref!r}")
    return (live or matches)[-1]


# -- commands ------------------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service."""
    from scsp.app import create_asgi
    from scsp.platform.serving import bind, make_server

    config = _config(args)
    setup_logging(config.log_level)
    sock = bind(config.http.host, config.http.port)
    server = make_server(create_asgi(config), log_level=config.log_level)
    print(f"scsp listening on {config.http.host}:{sock.getsockname()[1]}; peers reach us at "
          f"{config.versions_url}", file=sys.stderr)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    """Create a token A for a peer that will register with us."""
    config = _config(args)
    store = _store(config)
    token = registration.new_token()
    store.parties.create(status=PartyStatus.INVITED, role=args.role.upper(), country_code=args.country_code,
                       party_id=args.party_id, token=token, token_kind=TokenKind.A, now=int(time.time()))
    _print({"versions_url": config.versions_url, "token_a": token})
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Register with a peer (our service must be running: the peer calls us back with token B)."""
    from scsp.app import scsp_platform

    config = _config(args)
    store = _store(config)

    async def run() -> Party:
        client = _client(config)
        try:
            return await registration.register_with(store.parties, client, scsp_platform(config), args.versions_url,
                                                    args.token_a, now=time.time())
        finally:
            await client.aclose()

    _print(party_json(asyncio.run(run())))
    return 0


def cmd_parties(args: argparse.Namespace) -> int:
    """List parties, or rotate / unregister one."""
    from scsp.app import scsp_platform

    config = _config(args)
    store = _store(config)
    if args.action is None:
        parties = store.parties.all()
        if args.json:
            _print([party_json(p) for p in parties])
        else:
            print(f"{'ID':>4}  {'HANDLE':<8} {'ROLE':<5} {'STATUS':<13} {'CONNECTION':<10} VERSIONS URL")
            for p in parties:
                print(f"{p.id:>4}  {p.handle:<8} {p.role:<5} {p.status.value:<13} "
                      f"{p.connection_status.value:<10} {p.versions_url or '-'}")
        return 0
    party = find_party(store, args.party)
    if args.action == "rotate" and party.status != PartyStatus.REGISTERED:
        # credentials.asciidoc: a PUT "if the client has not been registered yet" is refused (405) by the
        # peer anyway; refuse here before issuing a token or calling anyone.
        print(f"scsp: cannot rotate {party.handle}: it is {party.status.value}, and only a REGISTERED party "
              "has credentials to rotate", file=sys.stderr)
        return 2

    async def run() -> dict[str, Any]:
        client = _client(config)
        try:
            if args.action == "rotate":
                return party_json(await registration.rotate(store.parties, client, scsp_platform(config), party,
                                                            now=time.time()))
            updated, problem = await registration.unregister(store.parties, client, party, now=time.time())
            return {**party_json(updated), "remote_error": problem}
        finally:
            await client.aclose()

    _print(asyncio.run(run()))
    return 0


def cmd_simulate_cpo(args: argparse.Namespace) -> int:
    """Run the CPO simulator; optionally register it with an SCSP right away."""
    from scsp.platform.serving import bind, make_server, serve_all
    from scsp.simulator.app import create_simulator_asgi

    config = _config(args)
    setup_logging(config.log_level)
    settings = config.simulator
    sock = bind(settings.host, settings.port)
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
    from scsp.demo import run_demo

    config = _config(args)
    setup_logging(config.log_level)
    return run_demo(config)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `scsp`."""
    parser = argparse.ArgumentParser(prog="scsp", description="OCPI 2.2.1 Smart Charging Service Provider")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="path to config.toml (default: $SCSP_CONFIG or ./config.toml)")
        return p

    p = with_config(sub.add_parser("serve", help="run the service"))
    p.set_defaults(func=cmd_serve)

    p = with_config(sub.add_parser("invite", help="create a token A for a peer that will register with us"))
    p.add_argument("--role", required=True, choices=["CPO", "HUB", "EMSP", "NSP", "NAP", "OTHER"])
    # credentials.asciidoc CredentialsRole: country_code CiString(2) ISO-3166 alpha-2, party_id CiString(3).
    p.add_argument("--country-code", required=True,
                   type=_constrained(CountryCode, "an ISO 3166-1 alpha-2 country code (2 letters, e.g. NL)"))
    p.add_argument("--party-id", required=True,
                   type=_constrained(PartyId, "a party id of 3 letters or digits (CiString(3), e.g. ABC)"))
    p.set_defaults(func=cmd_invite)

    p = with_config(sub.add_parser("register", help="register with a peer given its versions URL and token A"))
    p.add_argument("--versions-url", required=True)
    p.add_argument("--token-a", required=True)
    p.set_defaults(func=cmd_register)

    p = with_config(sub.add_parser("parties", help="list parties; rotate or unregister one"))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("action", nargs="?", choices=["rotate", "unregister"])
    p.add_argument("party", nargs="?", help="party id or handle (CC-PID)")
    p.set_defaults(func=cmd_parties)

    p = with_config(sub.add_parser("simulate-cpo", help="run the CPO simulator"))
    p.add_argument("--register-with", metavar="VERSIONS_URL", help="register with this SCSP at start-up")
    p.add_argument("--token-a", help="token A issued by that SCSP (`scsp invite`)")
    p.set_defaults(func=cmd_simulate_cpo)

    p = with_config(sub.add_parser("demo", help="run the service and the CPO simulator, registered"))
    p.set_defaults(func=cmd_demo)

    solve_cmd.register(sub)
    api_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scsp` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) and not getattr(args, "party", None):
        parser.error("parties rotate/unregister needs PARTY")
    if getattr(args, "register_with", None) and not getattr(args, "token_a", None):
        parser.error("--register-with needs --token-a")
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"scsp: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OcpiError, PeerError) as exc:
        print(f"scsp: {type(exc).__name__}: {exc.message}", file=sys.stderr)
        return 1
    except LookupError as exc:
        print(f"scsp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except msgspec.ValidationError as exc:
        print(f"scsp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
