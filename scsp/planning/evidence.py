"""Evidence, not memory: which of the sessions a CPO lists as ACTIVE still charge, and how much.

A CPO that never sends COMPLETED (common), re-registers, or replaces its platform leaves sessions
behind that hold a site's capacity while the EVs plugged in now get nothing. The planner trusts
what the CPO's own data says over what it last said of a session (README "Evidence"):

- a newer session on the same EVSE (by start, whatever connection it came through): the older one
  is over;
- the EVSE's status, set after the session started, is not CHARGING, BLOCKED or UNKNOWN: over;
- the CPO answered UNKNOWN_SESSION, or left the session out of a complete pull: over, unless the
  CPO updates it later;
- its connection is gone (unregistered, refusing our token, not answering): fixed load at what its
  last profile allows, for at most `orphan_session_h` after the loss;
- a re-registration of the same CPO identity: the new connection adopts the old one's sessions;
- its energy did not grow for `idle_session_min` while it was allowed power: planned at what it
  draws (nothing as fixed load; its minimum rate when steered);
- no update for `stale_session_h`: not planned (a later update brings it back).

Pure functions of stored records and `now`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from ocpi221.locations import EvseStatus
from scsp.records.commands import SessionControl
from scsp.records.parties import Party, PartyStatus, SyncState
from scsp.records.sessions import EvseFacts, StoredSession

# EVSE statuses under which a session may still be charging (mod_locations "Status"): CHARGING;
# BLOCKED ("The EVSE is in use" by a parked vehicle, possibly still plugged); UNKNOWN says nothing.
HOLDS_A_SESSION = frozenset({EvseStatus.CHARGING, EvseStatus.BLOCKED, EvseStatus.UNKNOWN})


def _evse_key(row: StoredSession) -> tuple[str, str]:
    s = row.session
    return s.location_id.upper(), s.evse_uid.upper()


def newest_per_evse(rows: Sequence[StoredSession]) -> list[StoredSession]:
    """One session per EVSE: the one that started last (mod_sessions: a connector serves one session).

    Ties on the start go to the one updated last.
    """
    newest: dict[tuple[str, str], StoredSession] = {}
    for row in rows:
        key = _evse_key(row)
        kept = newest.get(key)
        if kept is None or (row.session.start_date_time, row.session.last_updated) > (
                kept.session.start_date_time, kept.session.last_updated):
            newest[key] = row
    return [r for r in rows if newest[_evse_key(r)] is r]


def ended_by_evse(row: StoredSession, evse: EvseFacts | None) -> bool:
    """The session's EVSE reports a status without a session, set after the session started."""
    if evse is None or evse.last_updated is None or evse.status in HOLDS_A_SESSION:
        return False
    return evse.last_updated > row.session.start_date_time


def ended_by_cpo(row: StoredSession, control: SessionControl | None) -> bool:
    """The CPO said it does not know the session (or left it out of its list) and did not update it since."""
    return (control is not None and control.ended_at is not None
            and row.session.last_updated <= control.ended_at)


def connection_lost_at(party: Party | None, state: SyncState | None) -> datetime | None:
    """Since when we can no longer reach or check the session's CPO; None while it is connected."""
    if party is None:
        return None  # no record of the party at all: the caller treats it as gone from the start
    if party.status != PartyStatus.REGISTERED:
        return party.updated_at
    if state is None:
        return None
    losses = [t for t in (state.refused_since, state.unreachable_since) if t is not None]
    return min(losses) if losses else None


def orphan_expired(lost_at: datetime, row: StoredSession, now: datetime, orphan_h: float) -> bool:
    """Whether a session of a lost connection stopped counting: `orphan_h` after the later of the
    loss and its last update (what a charge point does without us is bounded; memory is not)."""
    since = max(lost_at, row.session.last_updated)
    return now - since > timedelta(hours=orphan_h)


def idle(row: StoredSession, now: datetime, idle_min: float) -> bool:
    """Its reported energy has not grown for `idle_min` minutes."""
    changed = row.kwh_changed_at or row.received_at
    return now - changed >= timedelta(minutes=idle_min)
