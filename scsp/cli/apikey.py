"""`scsp apikey create|list|revoke`: API keys of the JSON API (`/api/v1`).

`create` prints the key once; only its SHA-256 is stored, so a lost key cannot be shown again
(revoke it and create another). `list` never prints keys.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scsp.api.auth import issue_api_key
from scsp.config import ConfigError, load_config
from scsp.errors import OcpiError
from scsp.records.grid import ApiKey, ApiRole
from scsp.store import Store


def _store(args: argparse.Namespace) -> Store:
    config = load_config(Path(args.config) if getattr(args, "config", None) else None)
    store = Store(config.db_path)
    store.migrate()
    return store


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_json(key: ApiKey) -> dict[str, Any]:
    """A key as `apikey list` prints it (never the key itself: it is not stored)."""
    return {
        "id": key.id,
        "role": key.role.value,
        "sites": list(key.sites),
        "label": key.label,
        "created_at": _iso(key.created_at),
        "revoked_at": _iso(key.revoked_at),
    }


def cmd_create(args: argparse.Namespace) -> int:
    """Create a key and print it, once; warns about sites that do not exist (yet)."""
    store = _store(args)
    key, record = issue_api_key(
        store, role=ApiRole(args.role), sites=args.site or [], label=args.label, now=datetime.now(UTC)
    )
    unknown = sorted(set(record.sites) - store.plans.site_ids())
    if unknown:
        # Not refused: an operator may hand out a key before the CPO's Locations arrive.
        print(f"scsp: warning: no site {', '.join(map(repr, unknown))} exists yet (no CPO names it and no admin "
              "declared it): the key will see it once one does", file=sys.stderr)
    print(
        json.dumps(
            {
                "id": record.id,
                "key": key,
                "role": record.role.value,
                "sites": list(record.sites),
                "label": record.label,
            },
            indent=2,
        )
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print every key (revoked ones included) as JSON, without the keys themselves."""
    print(json.dumps([key_json(k) for k in _store(args).grid.api_keys()], indent=2))
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke a key by id: it stops working at once."""
    revoked = _store(args).grid.revoke_api_key(args.id, now=datetime.now(UTC))
    if revoked is None:
        raise LookupError(f"no API key with id {args.id}")
    print(json.dumps(key_json(revoked), indent=2))
    return 0


def register(subparsers: Any) -> None:
    """Add `apikey create|list|revoke` to the `scsp` sub-commands (`subparsers` of `build_parser`)."""
    apikey = subparsers.add_parser("apikey", help="create, list or revoke API keys of the JSON API")
    actions = apikey.add_subparsers(dest="apikey_action", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", help="path to config.toml (default: $SCSP_CONFIG or ./config.toml)")
        return p

    p = with_config(actions.add_parser("create", help="create a key and print it once"))
    p.add_argument("--role", required=True, choices=[r.value for r in ApiRole])
    p.add_argument(
        "--site",
        action="append",
        metavar="ID",
        help="a site the key may touch (repeat for several; none: every site)",
    )
    p.add_argument("--label", help="a note on who holds the key")
    p.set_defaults(func=cmd_create)

    p = with_config(actions.add_parser("list", help="list keys (never shows the keys themselves)"))
    p.set_defaults(func=cmd_list)

    p = with_config(actions.add_parser("revoke", help="revoke a key by id"))
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_revoke)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `apikey ...` on its own (`python -m scsp.cli.apikey apikey create --role dso`)."""
    parser = argparse.ArgumentParser(prog="scsp")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigError as exc:
        print(f"scsp: configuration error: {exc}", file=sys.stderr)
        return 2
    except OcpiError as exc:
        print(f"scsp: {exc.message}", file=sys.stderr)
        return 2
    except LookupError as exc:
        print(f"scsp: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
