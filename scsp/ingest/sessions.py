"""Sessions from CPOs (mod_sessions.asciidoc): pushed to our Receiver or pulled from their Sender.

Push and pull store a session through one function, `take_session`: older news never overwrites
newer, and a change the planner must act on (a new session, a status change, a move to another
EVSE or location) re-plans the sites involved, the one it left included.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from ocpi221.sessions import Session, SessionPatch, SessionStatus
from scsp import errors
from scsp.events import SiteChanged
from scsp.ingest.rules import owned, same
from scsp.platform.transport import Caller
from scsp.records.commands import SessionEnd
from scsp.records.sessions import PLANNED_STATUSES, SessionKey, site_id
from scsp.store import Store


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


def _key(caller: Caller, cc: str, pid: str, session_id: str) -> SessionKey:
    """The key of a session addressed by a URL of the caller."""
    return SessionKey(party=caller.party.id, country_code=cc.upper(), party_id=pid.upper(), session_id=session_id)


def get_session(store: Store, caller: Caller, cc: str, pid: str, session_id: str) -> Session:
    """The stored session (the CPO validates what we hold)."""
    owned(store, caller, cc, pid)
    stored = store.sessions.get(_key(caller, cc, pid, session_id))
    if stored is None:
        raise errors.NotFound(f"no session {session_id!r}")
    return stored.session


def put_session(store: Store, caller: Caller, cc: str, pid: str, session_id: str, session: Session,
                *, now: datetime, changed: SiteChanged, arrived: SiteChanged | None = None) -> bool:
    """Create or replace a session (mod_sessions PUT "SHALL replace the existing object"); True if created."""
    owned(store, caller, cc, pid)
    same("country_code", cc, session.country_code)
    same("party_id", pid, session.party_id)
    if session.id.upper() != session_id.upper():  # CiString: case-insensitive (types.asciidoc)
        raise errors.InvalidParameters(f"id: {session.id!r} in the body differs from {session_id!r} in the URL")
    created, _ = take_session(store, caller.party.id, session, now=now, changed=changed, arrived=arrived)
    return created


def owned_token(session: Session) -> tuple[Session, bool]:
    """The session with its `cdr_token` naming the session's owner where the CPO left that out.

    mod_cdrs "CdrToken": country_code and party_id are required; a peer that omits them is read
    tolerantly: the token belongs to the eMSP, which a CPO's session towards an SCSP does not name
    otherwise, so the session's own owner stands in. Returns whether it was filled in.
    """
    token = session.cdr_token
    if token.country_code is not None and token.party_id is not None:
        return session, False
    filled = msgspec.structs.replace(token, country_code=token.country_code or session.country_code,
                                     party_id=token.party_id or session.party_id)
    return msgspec.structs.replace(session, cdr_token=filled), True


def take_session(store: Store, party: int, session: Session, *, now: datetime,
                 changed: SiteChanged, arrived: SiteChanged | None = None) -> tuple[bool, bool]:
    """Store a session pushed or pulled through the connection `party`; returns (created, applied).

    Older news never overwrites newer (`last_updated`); an applied change the planner must act on
    re-plans the session's site, and the site it left when it moved to another location.
    """
    session, _ = owned_token(session)
    session = store.sessions.canonical(party, session)
    cc, pid = session.country_code, session.party_id
    before = store.sessions.get(SessionKey(party=party, country_code=cc.upper(), party_id=pid.upper(),
                                           session_id=session.id))
    created, applied = store.sessions.put(party, session, now=now)
    if applied and plan_relevant_change(before.session if before else None, session):
        is_arrival = session.status == SessionStatus.ACTIVE and (
            before is None or before.session.status != SessionStatus.ACTIVE)
        (arrived if is_arrival and arrived is not None else changed)(site_id(cc, pid, session.location_id))
        if before is not None and before.session.location_id != session.location_id:
            changed(site_id(cc, pid, before.session.location_id))
    return created, applied


def patch_session(store: Store, caller: Caller, cc: str, pid: str, session_id: str, patch: SessionPatch,
                  *, now: datetime, changed: SiteChanged, arrived: SiteChanged | None = None) -> None:
    """Apply a partial update; `charging_periods` are appended (mod_sessions PATCH)."""
    owned(store, caller, cc, pid)
    for field, url_value in (("country_code", cc), ("party_id", pid), ("id", session_id)):
        value = getattr(patch, field)
        if value is not msgspec.UNSET and value.upper() != url_value.upper():
            raise errors.InvalidParameters(f"{field}: {value!r} in the body differs from {url_value!r} in the URL")
    key = _key(caller, cc, pid, session_id)
    before = store.sessions.get(key)
    try:
        merged = store.sessions.patch(key, patch, now=now)
    except msgspec.ValidationError as exc:
        raise errors.InvalidParameters(f"the patched session is invalid: {exc}") from None
    if merged is None:
        # transport_and_format: "If a PATCH fails, the client GETs the object and PUTs it if it does not exist".
        raise errors.NotFound(f"no session {session_id!r}: PUT it first")
    if plan_relevant_change(before.session if before else None, merged):
        is_arrival = merged.status == SessionStatus.ACTIVE and (
            before is None or before.session.status != SessionStatus.ACTIVE)
        (arrived if is_arrival and arrived is not None else changed)(site_id(cc, pid, merged.location_id))


def replan_party(store: Store, party_id: int, changed: SiteChanged) -> None:
    """Re-plan every site with an active session that came through the connection `party_id`."""
    for stored in store.sessions.find(party=party_id, statuses=PLANNED_STATUSES)[0]:
        changed(stored.site)


def replan_session(store: Store, key: SessionKey, changed: SiteChanged) -> None:
    """Re-plan the site of one session (its control changed: released, resumed, refused)."""
    for stored in store.sessions.by_id(key.party, key.session_id):
        s = stored.session
        if (s.country_code.upper(), s.party_id.upper()) == (key.country_code, key.party_id):
            changed(site_id(s.country_code, s.party_id, s.location_id))


def end_absent(store: Store, party: int, listed: set[SessionKey], *, since: datetime, until: datetime,
               changed: SiteChanged) -> int:
    """End the ACTIVE sessions of `party` updated in [since, until) that its complete list left out.

    transport_and_format "Pull": the Sender's list holds every object changed in the window; an
    ACTIVE session we hold from within it that the list does not name is no longer the CPO's.
    """
    rows, _ = store.sessions.find(party=party, statuses=PLANNED_STATUSES, updated_from=since, updated_to=until)
    ended = 0
    for row in rows:
        if row.key not in listed:
            store.commands.end(row.key, SessionEnd.ABSENT, until)
            changed(row.site)
            ended += 1
    return ended
