"""What the commands of `scsp` share: config, store and client from the arguments, JSON output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from scsp.config import Config, load_config
from scsp.platform.client import OcpiClient
from scsp.records.parties import Party, PartyStatus
from scsp.store import Store


def constrained(kind: Any, expected: str) -> Callable[[str], str]:
    """An argparse `type` checking a value against the constrained type config uses for it."""

    def parse(value: str) -> str:
        try:
            return str(msgspec.convert(value, kind)).upper()
        except msgspec.ValidationError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value!r}") from None

    return parse


def load(args: argparse.Namespace) -> Config:
    """The configuration named by `--config` (or the default)."""
    return load_config(Path(args.config) if getattr(args, "config", None) else None)


def client_for(config: Config) -> OcpiClient:
    """An outbound OCPI client with our identity and timeouts."""
    return OcpiClient(country_code=config.party.country_code.upper(), party_id=config.party.party_id.upper(),
                      connect_timeout_s=config.http.connect_timeout_s,
                      request_timeout_s=config.http.request_timeout_s)


def open_store(config: Config) -> Store:
    """The service's store, migrated."""
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
        # What it may act for: its own identity and what it was invited, registered with or allowed.
        "identities": [party.handle, *party.identities],
        "connection_status": party.connection_status.value,
        "versions_url": party.versions_url,
        "version": party.version,
        "token_base64": party.token_base64,
        "endpoints": [{"identifier": e.identifier, "role": e.role.value, "url": e.url} for e in party.endpoints],
    }


def print_json(obj: Any) -> None:
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

