"""Locations from CPOs (mod_locations.asciidoc): Location, EVSE and Connector level, pushed or pulled.

A site is one Location: any applied change of it re-plans the site (EVSE facts, status).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from ocpi221.locations import EVSE, Connector, Location
from scsp import errors
from scsp.events import SiteChanged
from scsp.ingest.rules import newer, owned, same
from scsp.platform.transport import Caller
from scsp.records.sessions import site_id
from scsp.store import Store


def get_location_object(store: Store, caller: Caller, cc: str, pid: str, location_id: str,
                        evse_uid: str | None = None, connector_id: str | None = None) -> Any:
    """The stored Location, EVSE or Connector."""
    owned(store, caller, cc, pid)
    location = store.sessions.location(caller.party.id, cc, pid, location_id)
    if location is None:
        raise errors.UnknownLocation(f"no location {location_id!r}")
    if evse_uid is None:
        return location
    evse = _find_evse(location, evse_uid)
    if connector_id is None:
        return evse
    return _find_connector(evse, connector_id)


def _find_evse(location: Location, uid: str) -> EVSE:
    for evse in location.evses or []:
        if evse.uid.upper() == uid.upper():
            return evse
    raise errors.NotFound(f"no EVSE {uid!r} at location {location.id!r}")


def _find_connector(evse: EVSE, connector_id: str) -> Connector:
    for connector in evse.connectors:
        if connector.id.upper() == connector_id.upper():
            return connector
    raise errors.NotFound(f"no connector {connector_id!r} on EVSE {evse.uid!r}")


def put_location(store: Store, caller: Caller, cc: str, pid: str, location_id: str, location: Location,
                 *, changed: SiteChanged) -> bool:
    """Create or replace a Location (mod_locations PUT); True if created."""
    owned(store, caller, cc, pid)
    same("country_code", cc, location.country_code)
    same("party_id", pid, location.party_id)
    if location.id.upper() != location_id.upper():  # CiString: case-insensitive (types.asciidoc)
        raise errors.InvalidParameters(f"id: {location.id!r} in the body differs from {location_id!r} in the URL")
    created, _ = take_location(store, caller.party.id, location, changed=changed)
    return created


def take_location(store: Store, party: int, location: Location, *, changed: SiteChanged) -> tuple[bool, bool]:
    """Store a whole Location pushed or pulled through the connection `party`; returns (created, applied).

    Older news never overwrites newer (`last_updated`); an applied change re-plans the site.
    """
    location = store.sessions.canonical_location(party, location)
    created, applied = store.sessions.put_location(party, location)
    if applied:
        changed(site_id(location.country_code, location.party_id, location.id))
    return created, applied


def _later(a: datetime, b: datetime) -> datetime:
    return max(a.astimezone(UTC), b.astimezone(UTC))


def _replace_evse(location: Location, evse: EVSE) -> Location:
    """The location with `evse` put in place (or added); the parent's last_updated follows the child."""
    others = [e for e in location.evses or [] if e.uid.upper() != evse.uid.upper()]
    position = next((i for i, e in enumerate(location.evses or []) if e.uid.upper() == evse.uid.upper()), len(others))
    evses = [*others[:position], evse, *others[position:]]
    # mod_locations: the Receiver SHALL update the parents' last_updated when a child changes.
    return msgspec.structs.replace(location, evses=evses,
                                   last_updated=_later(location.last_updated, evse.last_updated))


def put_evse(store: Store, caller: Caller, cc: str, pid: str, location_id: str, evse_uid: str, evse: EVSE,
             *, changed: SiteChanged) -> bool:
    """Create or replace one EVSE of a known location; True if created."""
    owned(store, caller, cc, pid)
    if evse.uid.upper() != evse_uid.upper():
        raise errors.InvalidParameters(f"uid: {evse.uid!r} in the body differs from {evse_uid!r} in the URL")
    created = applied = False

    def change(current: Location | None) -> Location:
        nonlocal created, applied
        if current is None:
            raise errors.UnknownLocation(f"no location {location_id!r}: PUT the Location first")
        stored = next((e for e in current.evses or [] if e.uid.upper() == evse_uid.upper()), None)
        created = stored is None
        if stored is not None and not newer(stored.last_updated, evse.last_updated):
            return current
        applied = True
        return _replace_evse(current, evse)

    store.sessions.update_location(caller.party.id, cc, pid, location_id, change)
    if applied:
        changed(site_id(cc, pid, location_id))
    return created


def put_connector(store: Store, caller: Caller, cc: str, pid: str, location_id: str, evse_uid: str,
                  connector_id: str, connector: Connector, *, changed: SiteChanged) -> bool:
    """Create or replace one connector of a known EVSE; True if created."""
    owned(store, caller, cc, pid)
    if connector.id.upper() != connector_id.upper():
        raise errors.InvalidParameters(f"id: {connector.id!r} in the body differs from {connector_id!r} in the URL")
    created = applied = False

    def change(current: Location | None) -> Location:
        nonlocal created, applied
        if current is None:
            raise errors.UnknownLocation(f"no location {location_id!r}: PUT the Location first")
        evse = _find_evse(current, evse_uid)
        stored = next((c for c in evse.connectors if c.id.upper() == connector_id.upper()), None)
        created = stored is None
        if stored is not None and not newer(stored.last_updated, connector.last_updated):
            return current
        applied = True
        others = [c for c in evse.connectors if c.id.upper() != connector_id.upper()]
        updated = msgspec.structs.replace(evse, connectors=[*others, connector],
                                          last_updated=_later(evse.last_updated, connector.last_updated))
        return _replace_evse(current, updated)

    store.sessions.update_location(caller.party.id, cc, pid, location_id, change)
    if applied:
        changed(site_id(cc, pid, location_id))
    return created


def patch_location_object(store: Store, caller: Caller, cc: str, pid: str, location_id: str,
                          evse_uid: str | None, connector_id: str | None, patch: dict[str, Any],
                          *, changed: SiteChanged) -> None:
    """Apply a PATCH to a Location, EVSE or Connector: the given fields replace the stored ones.

    mod_locations: "Any request to the PATCH method SHALL contain the last_updated field"; the
    result must still be a valid object (else 2001, nothing stored).
    """
    owned(store, caller, cc, pid)
    if "last_updated" not in patch:
        raise errors.InvalidParameters("last_updated: required in a PATCH")

    applied = False

    def merged(obj: Any, kind: type[Any], identities: tuple[str, ...]) -> Any:
        # The object's identity is its URL (mod_locations PATCH: "Same as the PUT method", whose
        # country_code/party_id "SHALL be the same value" as the URL's): a PATCH cannot move it.
        for identity in identities:
            if identity in patch and str(patch[identity]).upper() != str(getattr(obj, identity)).upper():
                raise errors.InvalidParameters(f"{identity}: cannot be changed by a PATCH")
        doc = {**msgspec.to_builtins(obj), **patch}
        try:
            return msgspec.convert(doc, kind)
        except msgspec.ValidationError as exc:
            raise errors.InvalidParameters(str(exc)) from None

    def change(current: Location | None) -> Location:
        nonlocal applied
        if current is None:
            raise errors.UnknownLocation(f"no location {location_id!r}")
        if evse_uid is None:
            updated: Location = merged(current, Location, ("id", "country_code", "party_id"))
            applied = newer(current.last_updated, updated.last_updated)
            return updated if applied else current
        evse = _find_evse(current, evse_uid)
        if connector_id is None:
            new_evse: EVSE = merged(evse, EVSE, ("uid",))
            applied = newer(evse.last_updated, new_evse.last_updated)
            return _replace_evse(current, new_evse) if applied else current
        connector = _find_connector(evse, connector_id)
        new_connector: Connector = merged(connector, Connector, ("id",))
        applied = newer(connector.last_updated, new_connector.last_updated)
        if not applied:
            return current
        parent = msgspec.structs.replace(
            evse, connectors=[new_connector if c.id == connector.id else c for c in evse.connectors],
            last_updated=_later(evse.last_updated, new_connector.last_updated))
        return _replace_evse(current, parent)

    store.sessions.update_location(caller.party.id, cc, pid, location_id, change)
    if applied:
        changed(site_id(cc, pid, location_id))

