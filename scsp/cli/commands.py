"""`scsp commands [--site ID] [--session ID] [--since TIME] [--kind K] [--limit N] [--json]`: the commands log.

What `GET /api/v1/commands` answers, read from the service's database: every ChargingProfiles
request we made, newest first, one line each (time UTC, kind, site, session, the CPO's answer, the
charge point's result, why it was sent), or the full records as JSON.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

import msgspec

from scsp.api.commands import MAX_LIMIT, CommandOut, command_out
from scsp.api.common import as_utc
from scsp.cli.common import load, open_store
from scsp.records.commands import CommandKind


def _since(value: str) -> datetime:
    try:
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date and time such as 2030-05-01T12:00:00Z, got {value!r}"
                                         ) from None


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_LIMIT}, got {value!r}")
    return number


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def line(c: CommandOut) -> str:
    """One command as a line a person reads."""
    outcome = c.response or c.error or c.state
    if c.result is not None:
        outcome += f" -> {c.result}"
    elif c.state in ("awaiting_result", "unknown"):
        outcome += f" -> ({c.state.replace('_', ' ')})"
    took = f" {c.result_ms / 1000:.1f} s" if c.result_ms is not None else ""
    return (f"{_time(c.created_at)}  {c.kind:<5}  {c.site_id or '?':<20}  {c.session_id:<36}  "
            f"{outcome + took:<32}  {c.reason or ''}").rstrip()


def cmd_commands(args: argparse.Namespace) -> int:
    """Print the commands log."""
    store = open_store(load(args))
    found = store.commands.log(sites=[args.site] if args.site else None, session_id=args.session, since=args.since,
                               kinds=(CommandKind(args.kind),) if args.kind else None, limit=args.limit)
    out = [command_out(c) for c in found]
    if args.json:
        data: list[dict[str, Any]] = msgspec.to_builtins(out)
        print(json.dumps(data, indent=2))
        return 0
    if not out:
        print("no commands")
        return 0
    print(f"{'time (UTC)':<20}  {'kind':<5}  {'site':<20}  {'session':<36}  {'answer -> result':<32}  reason")
    for command in out:
        print(line(command))
    return 0


def register(subparsers: Any, with_config: Any) -> None:
    """Add `commands` to the `scsp` sub-commands."""
    p = with_config(subparsers.add_parser(
        "commands", help="the ChargingProfiles requests we made and what the CPO answered (newest first)"))
    p.add_argument("--site", help="only this site (CC-PID-location_id)")
    p.add_argument("--session", help="only this session id (the CPO's)")
    p.add_argument("--since", type=_since, help="only commands made at or after this time (ISO 8601; UTC if no offset)")
    p.add_argument("--kind", choices=[k.value for k in CommandKind], help="only this kind")
    p.add_argument("--limit", type=_limit, default=50, help=f"at most this many (1..{MAX_LIMIT}, default 50)")
    p.add_argument("--json", action="store_true", help="print the full records as JSON")
    p.set_defaults(func=cmd_commands)
