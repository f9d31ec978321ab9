"""The `scsp` command line: the parser and `main`. Names and outputs are stable: tooling depends on them.

`scsp serve | invite | register | parties` (`scsp.cli.service`), `scsp solve` (`scsp.cli.solve`),
`scsp apikey` (`scsp.cli.apikey`), `scsp commands` (`scsp.cli.commands`). Commands of other packages
join through the entry point group `scsp.commands` (`scsp simulate-cpo` and `scsp demo` come from
`cposim`): each entry is a function `register(subparsers, with_config)`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, version

import msgspec

from scsp.cli import apikey, commands, service, solve
from scsp.cli.common import constrained
from scsp.config import ConfigError, CountryCode, PartyId
from scsp.errors import OcpiError, PeerError
from scsp.platform.serving import PortInUse

# The entry point group through which other packages add commands to `scsp`.
COMMANDS_GROUP = "scsp.commands"

def _version() -> str:
    """The installed distribution's version (the source tree's pyproject when run uninstalled)."""
    try:
        return version("scsp")
    except PackageNotFoundError:
        return "unknown (not installed)"


def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Give a command the `--config` option."""
    p.add_argument("--config", help="path to config.toml (default: $SCSP_CONFIG or ./config.toml)")
    return p


def identity_handle(text: str) -> str:
    """An OCPI identity `CC-PID` (credentials.asciidoc CredentialsRole: CiString(2) and CiString(3))."""
    cc, _, pid = text.strip().partition("-")
    if len(cc) != 2 or not cc.isalpha() or len(pid) != 3 or not pid.isalnum() or not cc.isascii() \
            or not pid.isascii():
        raise argparse.ArgumentTypeError(f"{text!r} is not an identity CC-PID (e.g. NL-ABC)")
    return f"{cc.upper()}-{pid.upper()}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `scsp`."""
    parser = argparse.ArgumentParser(prog="scsp", description="OCPI 2.2.1 Smart Charging Service Provider")
    parser.add_argument("--version", action="version", version=f"scsp {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = with_config(sub.add_parser("serve", help="run the service"))
    p.set_defaults(func=service.cmd_serve)

    p = with_config(sub.add_parser("invite", help="create a token A for a peer that will register with us"))
    p.add_argument("--role", required=True, choices=["CPO", "HUB", "EMSP", "NSP", "NAP", "OTHER"])
    # credentials.asciidoc CredentialsRole: country_code CiString(2) ISO-3166 alpha-2, party_id CiString(3).
    p.add_argument("--country-code", required=True,
                   type=constrained(CountryCode, "an ISO 3166-1 alpha-2 country code (2 letters, e.g. NL)"))
    p.add_argument("--party-id", required=True,
                   type=constrained(PartyId, "a party id of 3 letters or digits (CiString(3), e.g. ABC)"))
    p.add_argument("--also", action="append", default=[], metavar="CC-PID", type=identity_handle,
                   help="a further identity the peer may register with (repeatable)")
    p.set_defaults(func=service.cmd_invite)

    p = with_config(sub.add_parser("register", help="register with a peer given its versions URL and token A"))
    p.add_argument("--versions-url", required=True)
    p.add_argument("--token-a", required=True)
    p.set_defaults(func=service.cmd_register)

    p = with_config(sub.add_parser(
        "parties", help="list parties; rotate or unregister one; allow or deny it a further identity"))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("action", nargs="?", choices=["rotate", "unregister", "allow", "deny"])
    p.add_argument("party", nargs="?", help="party id or handle (CC-PID)")
    p.add_argument("identity", nargs="?", type=identity_handle,
                   help="allow/deny: the identity CC-PID the party may (no longer) act for")
    p.set_defaults(func=service.cmd_parties)

    commands.register(sub, with_config)

    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        entry.load()(sub, with_config)

    solve.register(sub)
    apikey.register(sub)
    return parser



def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scsp` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) and not getattr(args, "party", None):
        parser.error("parties rotate/unregister needs PARTY")
    if getattr(args, "action", None) in ("allow", "deny") and not getattr(args, "identity", None):
        parser.error(f"parties {args.action} needs PARTY and IDENTITY (CC-PID)")
    check: Callable[[argparse.Namespace], str | None] | None = getattr(args, "check", None)
    problem = check(args) if check is not None else None
    if problem is not None:
        parser.error(problem)
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
    except PortInUse as exc:
        print(f"scsp: cannot listen on {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except msgspec.ValidationError as exc:
        print(f"scsp: {exc}", file=sys.stderr)
        return 2

