"""Domain operations behind the OCPI receivers: the one place controllers and jobs call.

A controller decodes, calls one function here, wraps the envelope. Functions here validate against
the spec's rules, write through the `Store`, and report which site changed so the planner can
re-plan (debounced).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from ocpi221.hubclientinfo import ClientInfo, ConnectionStatus
from ocpi221.locations import EVSE, Connector, Location
from ocpi221.sessions import Session, SessionPatch, SessionStatus
from scsp import errors
from scsp.platform.transport import Caller
from scsp.store import Store

log = logging.getLogger("scsp.sites")

SiteChanged = Callable[[str], None]

# Sessions we plan; the rest (PENDING, RESERVATION, COMPLETED, INVALID) are not charging under us.
PLANNED_STATUSES = (SessionStatus.ACTIVE,)


def site_id(country_code: str, party_id: str, location_id: str) -> str:
    """The site of a location: one site per OCPI Location, named `CC-PID-location_id`."""
    return f"{country_code.upper()}-{party_id.upper()}-{location_id}"


def _owned(caller: Caller, country_code: str, party_id: str) -> None:
    # transport_and_format "Client Owned Object Push": if the URL's country_code/party_id is not one
    # of the client's roles the server "is allowed to respond with an HTTP 404". A Hub forwards the
    # pushes of the parties behind it (its 2.2.1 credentials name only itself).
    if not caller.party.speaks_for(country_code, party_id):
        raise errors.NotFound(f"{country_code}/{party_id} is not one of your credentials roles")


def _newer(stored: datetime, pushed: datetime) -> bool:
    """Whether a pushed object's `last_updated` is not older than the stored one's (older news never wins)."""
    return pushed.astimezone(UTC) >= stored.astimezone(UTC)


def _same(field: str, url_value: str, body_value: str) -> None:
    # CiStrings compare case-insensitively (types.asciidoc); a mismatch is 2001 (transport_and_format).
    if url_value.upper() != body_value.upper():
        raise errors.InvalidParameters(f"{field}: {body_value!r} in the body differs from {url_value!r} in the URL")


# -- sessions ------------------------------------------------------------------------------------

def plan_relevant_change(old: Session | None, new: Session) -> bool:
    """Whether a session update changes what the planner must do now.

    New sessions, a status change (a session that starts or ends) and a move to another EVSE
    re-plan the site at once (debounced); energy progress (`kwh`, charging periods) does not: the
    periodic cycle reads it, and re-planning on every meter update would only churn profiles.
    """
    if old is None:
        return True
    return (old.status, old.location_id, old.evse_uid, old.connector_id) != (
        new.status, new.location_id, new.evse_uid, new.connector_id)


def get_session(store: Store, caller: Caller, cc: str, pid: str, session_id: str) -> Session:
    """The stored session (the CPO validates what we hold)."""
    _owned(caller, cc, pid)
    stored = store.sessions.get(caller.party.id, cc, pid, session_id)
    if stored is None:
        raise errors.NotFound(f"no session {session_id!r}")
    return stored.session


def put_session(store: Store, caller: Caller, cc: str, pid: str, session_id: str, session: Session,
                *, now: datetime, changed: SiteChanged) -> bool:
    """Create or replace a session (mod_sessions PUT "SHALL replace the existing object"); True if created."""
    _owned(caller, cc, pid)
    _same("country_code", cc, session.country_code)
    _same("party_id", pid, session.party_id)
    if session.id != session_id:
        raise errors.InvalidParameters(f"id: {session.id!r} in the body differs from {session_id!r} in the URL")
    before = store.sessions.get(caller.party.id, cc, pid, session_id)
    created, applied = store.sessions.put(caller.party.id, session, now=int(now.timestamp()))
    if applied and plan_relevant_change(before.session if before else None, session):
        changed(site_id(cc, pid, session.location_id))
        if before is not None and before.session.location_id != session.location_id:
            changed(site_id(cc, pid, before.session.location_id))
    return created


def patch_session(store: Store, caller: Caller, cc: str, pid: str, session_id: str, patch: SessionPatch,
                  *, now: datetime, changed: SiteChanged) -> None:
    """Apply a partial update; `charging_periods` are appended (mod_sessions PATCH)."""
    _owned(caller, cc, pid)
    for field, url_value in (("country_code", cc), ("party_id", pid), ("id", session_id)):
        value = getattr(patch, field)
        if value is not msgspec.UNSET and value.upper() != url_value.upper():
            raise errors.InvalidParameters(f"{field}: {value!r} in the body differs from {url_value!r} in the URL")
    before = store.sessions.get(caller.party.id, cc, pid, session_id)
    try:
        merged = store.sessions.patch(caller.party.id, cc, pid, session_id, patch, now=int(now.timestamp()))
    except msgspec.ValidationError as exc:
        raise errors.InvalidParameters(f"the patched session is invalid: {exc}") from None
    if merged is None:
        # transport_and_format: "If a PATCH fails, the client GETs the object and PUTs it if it does not exist".
        raise errors.NotFound(f"no session {session_id!r}: PUT it first")
    if plan_relevant_change(before.session if before else None, merged):
        changed(site_id(cc, pid, merged.location_id))


# -- locations -----------------------------------------------------------------------------------

def get_location_object(store: Store, caller: Caller, cc: str, pid: str, location_id: str,
                        evse_uid: str | None = None, connector_id: str | None = None) -> Any:
    """The stored Location, EVSE or Connector."""
    _owned(caller, cc, pid)
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
    _owned(caller, cc, pid)
    _same("country_code", cc, location.country_code)
    _same("party_id", pid, location.party_id)
    if location.id != location_id:
        raise errors.InvalidParameters(f"id: {location.id!r} in the body differs from {location_id!r} in the URL")
    created, applied = store.sessions.put_location(caller.party.id, location)
    if applied:
        changed(site_id(cc, pid, location_id))
    return created


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
    _owned(caller, cc, pid)
    if evse.uid.upper() != evse_uid.upper():
        raise errors.InvalidParameters(f"uid: {evse.uid!r} in the body differs from {evse_uid!r} in the URL")
    created = applied = False

    def change(current: Location | None) -> Location:
        nonlocal created, applied
        if current is None:
            raise errors.UnknownLocation(f"no location {location_id!r}: PUT the Location first")
        stored = next((e for e in current.evses or [] if e.uid.upper() == evse_uid.upper()), None)
        created = stored is None
        if stored is not None and not _newer(stored.last_updated, evse.last_updated):
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
    _owned(caller, cc, pid)
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
        if stored is not None and not _newer(stored.last_updated, connector.last_updated):
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
    _owned(caller, cc, pid)
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
            applied = _newer(current.last_updated, updated.last_updated)
            return updated if applied else current
        evse = _find_evse(current, evse_uid)
        if connector_id is None:
            new_evse: EVSE = merged(evse, EVSE, ("uid",))
            applied = _newer(evse.last_updated, new_evse.last_updated)
            return _replace_evse(current, new_evse) if applied else current
        connector = _find_connector(evse, connector_id)
        new_connector: Connector = merged(connector, Connector, ("id",))
        applied = _newer(connector.last_updated, new_connector.last_updated)
        if not applied:
            return current
        parent = msgspec.structs.replace(
            evse, connectors=[new_connector if c.id == connector.id else c for c in evse.connectors],
            last_updated=_later(evse.last_updated, new_connector.last_updated))
        return _replace_evse(current, parent)

    store.sessions.update_location(caller.party.id, cc, pid, location_id, change)
    if applied:
        changed(site_id(cc, pid, location_id))


def replan_party(store: Store, party_id: int, changed: SiteChanged) -> None:
    """Re-plan every site with an active session that came through the connection `party_id`."""
    for stored in store.sessions.find(party=party_id, statuses=("ACTIVE",))[0]:
        s = stored.session
        changed(site_id(s.country_code, s.party_id, s.location_id))


# -- hub client info -----------------------------------------------------------------------------

def require_hub(caller: Caller) -> None:
    """Refuse ClientInfo from a party that is not a Hub.

    mod_hub_client_info: "Data owner: Hub"; a party that is not the owner is treated like a push
    of a Client Owned Object for another party (transport_and_format: HTTP 404). Otherwise any
    connected CPO could switch off our traffic to another party by reporting it OFFLINE.
    """
    if caller.party.role != "HUB":
        raise errors.NotFound("ClientInfo comes from a Hub; you are connected as " + caller.party.role)


def record_client_info(store: Store, caller: Caller, cc: str, pid: str, info: ClientInfo, *, now: datetime,
                       changed: SiteChanged) -> bool:
    """Store a Hub's ClientInfo (mod_hub_client_info); True when it is new.

    A party that is not CONNECTED gets no traffic (the planner treats its sessions as fixed load);
    when it is CONNECTED again we resync with it by GET and plan its sites afresh
    (transport_and_format "Offline behaviour": nothing is replayed).
    """
    require_hub(caller)
    if (info.country_code.upper(), info.party_id.upper()) != (cc.upper(), pid.upper()):
        raise errors.InvalidParameters("country_code/party_id: the body differs from the URL")
    previous, applied = store.sync.put_client_info(caller.party.id, cc.upper(), pid.upper(), info.role, info.status,
                                              int(info.last_updated.timestamp()))
    if not applied or previous == info.status:
        return previous is None
    direct = store.parties.registered(cc, pid)
    if direct is not None and direct.id != caller.party.id:
        store.parties.set_connection_status(direct.id, ConnectionStatus(info.status.value), now=int(now.timestamp()))
    if info.status == ConnectionStatus.CONNECTED and previous is not None:
        for party in {caller.party.id} | ({direct.id} if direct is not None else set()):
            store.sync.update_sync_state(party, needs_resync=1)
    for stored in store.sessions.find(statuses=("ACTIVE",))[0]:
        s = stored.session
        if (s.country_code.upper(), s.party_id.upper()) == (cc.upper(), pid.upper()):
            changed(site_id(s.country_code, s.party_id, s.location_id))
    return previous is None
