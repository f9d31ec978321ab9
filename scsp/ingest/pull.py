"""Pulling Sessions and Locations from CPOs, and telling whether a CPO answers.

transport_and_format: "Pull is required"; poll "hours, not minutes" with splay; after a party was
unreachable, resync by GET (messages are never queued). We pull at registration, at start-up,
after a party comes back, and on the slow schedule.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from ocpi221.locations import Location
from ocpi221.sessions import Session
from scsp.errors import PeerError, SiteOfAnother
from scsp.events import SiteEvents
from scsp.ingest.locations import take_location
from scsp.ingest.rules import may_hold
from scsp.ingest.sessions import end_absent, owned_token, replan_party, take_session
from scsp.platform.client import OcpiClient
from scsp.records.parties import Party
from scsp.records.sessions import SessionKey
from scsp.store import Store

log = logging.getLogger("scsp.sync")

# First pull of Sessions reaches this far back (d): long enough for any session still charging.
FIRST_PULL_DAYS = 2
# Each later pull overlaps the previous one by this much (s), for clock skew between the platforms.
PULL_OVERLAP_S = 300


def _takes(store: Store, party: Party, country_code: str, party_id: str) -> bool:
    # transport_and_format: pulled objects whose owner is not one of the party's roles "may be ignored";
    # a Hub answers for the parties its ClientInfo lists.
    return may_hold(store, party, country_code, party_id)


async def pull(store: Store, client: OcpiClient, party: Party, events: SiteEvents, *, now: datetime) -> dict[str, int]:
    """Pull the party's Sessions (since the last pull) and Locations; returns counts.

    Raises:
        PeerError: the party did not answer properly (the caller decides what that means).
    """
    state = await asyncio.to_thread(store.sync.state, party.id)
    counts = {"sessions": 0, "locations": 0}
    changed: set[str] = set()
    routing = (party.country_code, party.party_id)
    locations_url = party.endpoint("locations", "SENDER")
    if locations_url:
        # The first pull takes everything; later pulls the changes since the last one.
        since = (state.locations_pulled_at - timedelta(seconds=PULL_OVERLAP_S)
                 if state.locations_pulled_at else None)
        async for location in client.get_all(party, locations_url, Location, date_from=since, routing_to=routing):
            if await asyncio.to_thread(_takes, store, party, location.country_code, location.party_id):
                try:
                    await asyncio.to_thread(take_location, store, party.id, location, changed=changed.add)
                except SiteOfAnother as exc:
                    log.warning("pulled Location skipped: %s", exc.message, extra={"party": party.handle})
                    continue
                counts["locations"] += 1
        await asyncio.to_thread(store.sync.locations_pulled, party.id, now)
    sessions_url = party.endpoint("sessions", "SENDER")
    if sessions_url:
        # ocpi-notes §10.15: Sessions GET marks date_from as required: always send it.
        since = (state.sessions_pulled_at - timedelta(seconds=PULL_OVERLAP_S) if state.sessions_pulled_at
                 else now - timedelta(days=FIRST_PULL_DAYS))
        seen: set[SessionKey] = set()
        skipped: list[str] = []
        filled = 0
        async for session in client.get_all(party, sessions_url, Session, date_from=since, routing_to=routing,
                                            skipped=skipped):
            if await asyncio.to_thread(_takes, store, party, session.country_code, session.party_id):
                session, was_filled = owned_token(session)
                filled += was_filled
                try:
                    await asyncio.to_thread(take_session, store, party.id, session, now=now, changed=changed.add)
                except SiteOfAnother as exc:
                    log.warning("pulled Session skipped: %s", exc.message, extra={"party": party.handle})
                    continue
                seen.add(SessionKey(party=party.id, country_code=session.country_code.upper(),
                                    party_id=session.party_id.upper(), session_id=session.id))
                counts["sessions"] += 1
        if filled:
            log.warning("%s serves Sessions whose cdr_token lacks country_code/party_id: read as the session's "
                        "owner", party.handle, extra={"party": party.handle, "sessions": filled})
        if not skipped:
            # A complete list: an ACTIVE session it should have listed (updated within the window,
            # before we asked) but did not is over on the CPO's side.
            # Sessions changed in the last minutes before the pull are not judged: the CPO's clock and
            # its list may lag ours by that much.
            ended = await asyncio.to_thread(end_absent, store, party.id, seen, since=since,
                                            until=now - timedelta(seconds=PULL_OVERLAP_S), changed=changed.add)
            counts["ended"] = ended
        await asyncio.to_thread(store.sync.sessions_pulled, party.id, now)
    for name in changed:
        events.site_changed(name)
    return counts


async def resync(store: Store, client: OcpiClient, party: Party, events: SiteEvents, *, now: datetime) -> bool:
    """Pull after registration, start-up or a return; True when the party answered."""
    before = await asyncio.to_thread(store.sync.state, party.id)
    # A re-registration of the same identity (the CPO lost its state or replaced its platform): the
    # sessions of its earlier registrations are its own, not ghosts; the pull below then tells which
    # of them still run.
    old = await asyncio.to_thread(store.parties.predecessors, party.id)
    adopted = await asyncio.to_thread(store.sessions.adopt, old, party.id)
    if adopted:
        log.info("adopted the sessions of an earlier registration", extra={"party": party.handle,
                                                                             "sessions": adopted})
    try:
        counts = await pull(store, client, party, events, now=now)
    except PeerError as exc:
        log.warning("resync failed", extra={"party": party.handle, "error": exc.message})
        if exc.unreachable or (exc.http_status is not None and exc.http_status >= 500):
            await asyncio.to_thread(store.sync.unreachable, party.id, since=now, resync=False)
            return False
        if exc.http_status == 401:
            # It refuses the token we hold: we can no longer learn what its sessions do, so they are
            # orphans (`planning.evidence`), bounded by what their profiles allow and by time.
            await asyncio.to_thread(store.sync.refused, party.id, since=now)
        # It answers, but its Sender refuses our pull (a 4xx, an OCPI error): what it pushes is all we
        # will learn. Steering may go on; the slow pull schedule tries again.
        await asyncio.to_thread(store.sync.resync_skipped, party.id)
        await asyncio.to_thread(replan_party, store, party.id, events.site_changed)
        return False
    await asyncio.to_thread(store.sync.resynced, party.id)
    log.info("resynced", extra={"party": party.handle, **counts})
    if before.unreachable_since is not None or before.needs_resync:
        # Its sessions were planned as fixed load while it was away, or not sent while the resync
        # was due (`Dispatcher.may_send`): plan them as ours again, from what the pull brought.
        await asyncio.to_thread(replan_party, store, party.id, events.site_changed)
    return True


async def answers(client: OcpiClient, party: Party) -> bool:
    """Whether the party answers its versions endpoint (the Hub's own still-alive check)."""
    if not party.versions_url:
        return False
    try:
        await client.call(party, "GET", party.versions_url)
    except PeerError:
        return False
    return True
