"""`scsp serve`, `invite`, `register`, `parties`: run the service and manage its OCPI connections."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from scsp.cli.common import client_for, find_party, load, open_store, party_json, print_json
from scsp.logs import setup_logging
from scsp.platform import registration
from scsp.records.parties import Party, PartyStatus, TokenKind


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the service."""
    from scsp.app import create_asgi
    from scsp.platform.serving import bind, make_server

    config = load(args)
    setup_logging(config.log_level, config.log_format)
    sock = bind(config.http.host, config.http.port, hint="choose another with SCSP_PORT or [http] port")
    server = make_server(create_asgi(config), log_level=config.log_level)
    print(f"scsp listening on {config.http.host}:{sock.getsockname()[1]}; peers reach us at "
          f"{config.versions_url}", file=sys.stderr)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    """Create a token A for a peer that will register with us."""
    config = load(args)
    store = open_store(config)
    token = registration.new_token()
    store.parties.create(status=PartyStatus.INVITED, role=args.role.upper(), country_code=args.country_code,
                       party_id=args.party_id, token=token, token_kind=TokenKind.A, now=datetime.now(UTC),
                       also=list(args.also))
    print_json({"versions_url": config.versions_url, "token_a": token})
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    """Register with a peer (our service must be running: the peer calls us back with token B)."""
    from scsp.app import scsp_platform

    config = load(args)
    store = open_store(config)

    async def run() -> Party:
        client = client_for(config)
        try:
            return await registration.register_with(store.parties, client, scsp_platform(config), args.versions_url,
                                                    args.token_a, now=datetime.now(UTC))
        finally:
            await client.aclose()

    print_json(party_json(asyncio.run(run())))
    return 0


def cmd_parties(args: argparse.Namespace) -> int:
    """List parties, or rotate / unregister one."""
    from scsp.app import scsp_platform

    config = load(args)
    store = open_store(config)
    if args.action is None:
        parties = store.parties.all()
        if args.json:
            print_json([party_json(p) for p in parties])
        else:
            print(f"{'ID':>4}  {'HANDLE':<8} {'ROLE':<5} {'STATUS':<13} {'CONNECTION':<10} VERSIONS URL  [ALSO]")
            for p in parties:
                also = f"  [{', '.join(p.identities)}]" if p.identities else ""
                print(f"{p.id:>4}  {p.handle:<8} {p.role:<5} {p.status.value:<13} "
                      f"{p.connection_status.value:<10} {p.versions_url or '-'}{also}")
        return 0
    party = find_party(store, args.party)
    if args.action in ("allow", "deny"):
        # Only the operator adds an identity to a connection: a peer's CredentialsRoles never do.
        change = store.parties.allow if args.action == "allow" else store.parties.deny
        print_json(party_json(change(party.id, args.identity, now=datetime.now(UTC))))
        return 0
    if args.action == "rotate" and party.status != PartyStatus.REGISTERED:
        # credentials.asciidoc: a PUT "if the client has not been registered yet" is refused (405) by the
        # peer anyway; refuse here before issuing a token or calling anyone.
        print(f"scsp: cannot rotate {party.handle}: it is {party.status.value}, and only a REGISTERED party "
              "has credentials to rotate", file=sys.stderr)
        return 2

    async def run() -> dict[str, Any]:
        client = client_for(config)
        try:
            if args.action == "rotate":
                return party_json(await registration.rotate(store.parties, client, scsp_platform(config), party,
                                                            now=datetime.now(UTC)))
            updated, problem = await registration.unregister(store.parties, client, party, now=datetime.now(UTC))
            return {**party_json(updated), "remote_error": problem}
        finally:
            await client.aclose()

    print_json(asyncio.run(run()))
    return 0

