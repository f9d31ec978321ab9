"""The living CPO: the tick loop, OCPI pushes, the ChargingProfiles receiver's logic and the control API's.

`SimulatedCpo` owns the model (`cposim.model`), the faults and the command log, all in
memory behind one lock: the tick loop runs in the event loop, the sync handlers in worker threads.
Outbound calls never happen under the lock.

Pushes go to every registered party with role SCSP, through `OcpiClient.call` with routing headers
(TO = the SCSP, FROM = us). A failed push is logged and dropped (transport_and_format "Offline
behaviour": no queueing); while DOWNTIME is in force nothing is sent and nothing is kept for later.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Litestar

from cposim.faults import DEFAULT_APPLY_FRACTION, DEFAULT_SLOW_CALLBACK_S, ActiveFault, Fault, FaultBook, FaultKind
from cposim.model import CpoModel, Ev, Event, EvseStatusChanged, SessionChanged, SessionStarted
from cposim.views import CommandRecord, EvseView, EvView, MeterView, PlugRequest, Sample, SiteMeterView, StateView
from ocpi221.chargingprofiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    ChargingProfileResult,
    ChargingProfileResultType,
    ClearProfileResult,
)
from ocpi221.locations import EVSE, Connector, EvseStatus, Location
from ocpi221.sessions import Session
from ocpi221.types import InterfaceRole, OcpiObject, Role
from scsp import errors
from scsp.config import SimulatorConfig, join_url
from scsp.platform.client import OcpiClient
from scsp.platform.identity import Platform
from scsp.platform.transport import PageRequest
from scsp.records.parties import Party, PartyStatus
from scsp.store.parties import PartyStore

log = logging.getLogger("scsp.simulator")

# Attempts at the Locations push after a registration that get HTTP 401. When the SCSP registered
# with us, we see it registered before it has stored our token on its side (it does so when our
# credentials reply reaches it), so the first push may come too early.
INITIAL_PUSH_ATTEMPTS = 20

# Pushes waiting for the sender task; beyond this the newest are dropped (a peer that slow would
# only get stale data anyway, and OCPI does not queue).
PUSH_QUEUE_MAX = 10_000


class EvseStatusPatch(OcpiObject, kw_only=True):
    """PATCH body for an EVSE status change (mod_locations Receiver PATCH: `status` + `last_updated`)."""

    status: EvseStatus
    last_updated: datetime


@dataclass(frozen=True)
class Push:
    """One outbound OCPI call to an SCSP."""

    party_id: int
    method: str
    url: str
    body: msgspec.Struct
    what: str
    # For a Session PATCH: PUT the whole Session when the receiver refuses the PATCH.
    session_id: str | None = None
    # For the Locations push after registration: (party id, locations URL), retried on a 401.
    initial: tuple[int, str] | None = None


@dataclass(frozen=True)
class Completion:
    """What the charge point will do with an accepted ChargingProfiles request, decided when it came in."""

    record: CommandRecord
    party_id: int
    delay_s: float
    post_result: bool
    result_rejected: bool
    fraction: float


def endpoint_url(party: Party, module: str, role: InterfaceRole) -> str | None:
    """The party's endpoint for `module` with exactly this interface role (no fallback to the other role)."""
    return next((e.url for e in party.endpoints if e.identifier == module and e.role == role), None)


def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


class SimulatedCpo:
    """All live state of the simulated CPO and the tasks that move it."""

    def __init__(self, settings: SimulatorConfig, platform: Platform, parties: PartyStore, *, now: datetime) -> None:
        self.settings = settings
        self.platform = platform
        self.parties = parties
        self.lock = threading.RLock()
        self.model = CpoModel(
            settings, country_code=platform.country_code, party_id=platform.party_id, now=now
        )
        self.faults = FaultBook()
        self.commands: deque[CommandRecord] = deque(maxlen=settings.commands_kept)
        # Pulls served: first pages (offset 0) of each Sender list, so a test can count resyncs.
        self.pulls: dict[str, int] = {"locations": 0, "sessions": 0}
        self._command_serial = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: OcpiClient | None = None
        self._queue: asyncio.Queue[Push] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._scsps: dict[int, Party] = {}
        # Model events not yet turned into pushes, oldest first (guarded by the lock).
        self._outbox: list[Event] = []
        # (party id, locations URL) pairs that already got our Locations (pushed once after registration),
        # and how often that push was refused with 401 so far.
        self._located: set[tuple[int, str]] = set()
        self._initial_refusals: dict[tuple[int, str], int] = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Litestar lifespan: run the tick loop and the push sender while the app serves."""
        self._loop = asyncio.get_running_loop()
        self._client = app.state.client
        self._queue = asyncio.Queue(maxsize=PUSH_QUEUE_MAX)
        with self.lock:
            self.model.last_tick = self.model.last_session_update = utc_now()
        self._spawn(self._tick_loop())
        self._spawn(self._push_sender())
        try:
            yield
        finally:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` as a task of the event loop (call from the loop thread)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _spawn_threadsafe(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` in the event loop from any thread (sync handlers run in worker threads)."""
        loop = self._loop
        if loop is None:
            coro.close()
            log.warning("simulator not running: dropped a scheduled action")
            return
        loop.call_soon_threadsafe(self._spawn, coro)

    def down(self) -> bool:
        """True while DOWNTIME is in force."""
        with self.lock:
            return self.faults.down(utc_now())

    # -- the tick loop -----------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            try:
                await self._refresh_parties()
                now = utc_now()
                with self.lock:
                    self._outbox += self.model.step(now)
                self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("simulator tick failed")
            await asyncio.sleep(self.settings.tick_s)

    async def _refresh_parties(self) -> None:
        """Re-read the registered SCSPs; push our Locations to each new one (right after registration)."""
        parties = await asyncio.to_thread(self.parties.all, include_unregistered=False)
        scsps = {p.id: p for p in parties if p.status == PartyStatus.REGISTERED and p.role == Role.SCSP}
        with self.lock:
            self._scsps = scsps
            down = self.faults.down(utc_now())
        if down:
            return
        for party in scsps.values():
            url = endpoint_url(party, "locations", InterfaceRole.RECEIVER)
            if url is None or (party.id, url) in self._located:
                continue
            self._located.add((party.id, url))
            with self.lock:
                locations = self.model.locations()
            for location in locations:
                self._enqueue(
                    Push(
                        party.id,
                        "PUT",
                        self._client_owned(url, location.id),
                        location,
                        f"Location {location.id}",
                        initial=(party.id, url),
                    )
                )

    def _client_owned(self, base: str, *ids: str) -> str:
        """`{base}/{country_code}/{party_id}/{ids...}` (transport_and_format "Client Owned Object Push")."""
        return join_url(base, self.platform.country_code, self.platform.party_id, *ids)

    def _dispatch(self, events: list[Event]) -> None:
        """Turn model events into pushes to every registered SCSP (call from the loop thread)."""
        if not events or self.down():
            return
        for party in list(self._scsps.values()):
            locations = endpoint_url(party, "locations", InterfaceRole.RECEIVER)
            sessions = endpoint_url(party, "sessions", InterfaceRole.RECEIVER)
            for event in events:
                if isinstance(event, EvseStatusChanged) and locations:
                    self._enqueue(
                        Push(
                            party.id,
                            "PATCH",
                            self._client_owned(locations, event.location_id, event.evse_uid),
                            EvseStatusPatch(status=event.status, last_updated=event.last_updated),
                            f"EVSE {event.evse_uid} {event.status}",
                        )
                    )
                elif isinstance(event, SessionStarted) and sessions:
                    self._enqueue(
                        Push(
                            party.id,
                            "PUT",
                            self._client_owned(sessions, event.session.id),
                            event.session,
                            f"Session {event.session.id}",
                        )
                    )
                elif isinstance(event, SessionChanged) and sessions:
                    self._enqueue(
                        Push(
                            party.id,
                            "PATCH",
                            self._client_owned(sessions, event.session_id),
                            event.patch,
                            f"Session {event.session_id} PATCH",
                            session_id=event.session_id,
                        )
                    )

    def _flush(self) -> None:
        """Dispatch the outbox in the order its events happened (call from the loop thread).

        Every model event goes through the one outbox, appended under the lock: a Session PUT from
        the control API can never be overtaken by a PATCH from the next tick.
        """
        with self.lock:
            events, self._outbox = self._outbox, []
        self._dispatch(events)

    def _flush_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._flush)

    def _enqueue(self, push: Push) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait(push)
        except asyncio.QueueFull:
            log.warning("push queue full: dropped %s %s", push.method, push.what)

    async def _push_sender(self) -> None:
        """Send pushes one by one, in order (a Session's PUT precedes its PATCHes)."""
        assert self._queue is not None
        while True:
            push = await self._queue.get()
            try:
                await self._send(push)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("push failed unexpectedly: %s", push.what)

    async def _send(self, push: Push) -> None:
        if self.down():
            return  # DOWNTIME: nothing leaves, nothing is kept for later
        party = self._scsps.get(push.party_id)
        if party is None or self._client is None:
            return  # unregistered meanwhile
        try:
            await self._client.call(
                party, push.method, push.url, body=push.body, routing_to=(party.country_code, party.party_id)
            )
        except errors.PeerError as exc:
            log.warning("push %s to %s failed: %s", push.what, party.handle, exc.message)
            if push.initial is not None and exc.http_status == 401 and push.initial in self._located:
                refusals = self._initial_refusals.get(push.initial, 0) + 1
                self._initial_refusals[push.initial] = refusals
                if refusals < INITIAL_PUSH_ATTEMPTS:
                    self._located.discard(push.initial)  # the next tick pushes the (current) Locations again
            refused = exc.http_status == 404 or (
                exc.ocpi_status is not None and 2000 <= exc.ocpi_status < 3000
            )
            if push.session_id is not None and refused:
                # transport_and_format PATCH: "In case a PATCH request fails, the client is expected to
                # call the GET method ... If the object doesn't exist, the client should do a PUT."
                # We PUT the current Session right away: it replaces, so it is right either way.
                with self.lock:
                    ev = self.model.sessions.get(push.session_id)
                    session = self.model.session(ev) if ev is not None else None
                if session is not None:
                    try:
                        await self._client.call(
                            party,
                            "PUT",
                            push.url,
                            body=session,
                            routing_to=(party.country_code, party.party_id),
                        )
                    except errors.PeerError as again:
                        log.warning(
                            "Session %s PUT after a refused PATCH failed: %s", push.session_id, again.message
                        )

    # -- ChargingProfiles receiver (mod_charging_profiles.asciidoc "Receiver Interface") -------------
    def charging_profile_request(
        self,
        method: str,
        session_id: str,
        caller: Party,
        response_url: str,
        *,
        profile: ChargingProfile | None = None,
        duration: int | None = None,
    ) -> ChargingProfileResponse:
        """Answer a PUT/GET/DELETE synchronously and schedule the charge point's asynchronous result."""
        now = utc_now()
        with self.lock:
            ev = self.model.active_ev(session_id)
            result, hits = ChargingProfileResponseType.ACCEPTED, []
            completion_faults: dict[FaultKind, ActiveFault | None] = {}
            if ev is None:
                result = ChargingProfileResponseType.UNKNOWN_SESSION
            else:
                evse = self.model.evse_of(ev)

                def hit(kind: FaultKind) -> ActiveFault | None:
                    return self.faults.match(kind, evse.location_id, evse.uid, now)

                too_often = hit(FaultKind.TOO_OFTEN)
                if hit(FaultKind.UNKNOWN_SESSION):
                    result, hits = ChargingProfileResponseType.UNKNOWN_SESSION, [FaultKind.UNKNOWN_SESSION]
                elif not evse.profile_capable:
                    result = ChargingProfileResponseType.NOT_SUPPORTED
                elif hit(FaultKind.NOT_SUPPORTED):
                    result, hits = ChargingProfileResponseType.NOT_SUPPORTED, [FaultKind.NOT_SUPPORTED]
                elif hit(FaultKind.REJECTED):
                    result, hits = ChargingProfileResponseType.REJECTED, [FaultKind.REJECTED]
                elif too_often is not None and (
                    too_often.value is None
                    or (
                        ev.last_profile_request_at is not None
                        and (now - ev.last_profile_request_at).total_seconds() < too_often.value
                    )
                ):
                    result, hits = ChargingProfileResponseType.TOO_OFTEN, [FaultKind.TOO_OFTEN]
                else:
                    for kind in (
                        FaultKind.NO_CALLBACK,
                        FaultKind.SLOW_CALLBACK,
                        FaultKind.RESULT_REJECTED,
                        FaultKind.APPLY_LOWER,
                    ):
                        completion_faults[kind] = hit(kind)
                        if completion_faults[kind] is not None:
                            hits.append(kind)
            response = ChargingProfileResponse(result=result, timeout=self.settings.profile_timeout_s)
            self._command_serial += 1
            record = CommandRecord(
                id=self._command_serial,
                received_at=now,
                method=method,
                session_id=session_id,
                party=caller.handle,
                response_url=response_url,
                response=response,
                charging_profile=profile,
                duration=duration,
                faults=[str(h) for h in hits],
            )
            self.commands.append(record)
            if result != ChargingProfileResponseType.ACCEPTED or ev is None:
                return response
            ev.last_profile_request_at = now
            slow = completion_faults.get(FaultKind.SLOW_CALLBACK)
            lower = completion_faults.get(FaultKind.APPLY_LOWER)
            delay = (
                (slow.value if slow.value is not None else DEFAULT_SLOW_CALLBACK_S)
                if slow
                else self.settings.callback_delay_s
            )
            record.result_due_at = now + timedelta(seconds=delay)
            completion = Completion(
                record=record,
                party_id=caller.id,
                delay_s=delay,
                post_result=completion_faults.get(FaultKind.NO_CALLBACK) is None,
                result_rejected=completion_faults.get(FaultKind.RESULT_REJECTED) is not None,
                fraction=(lower.value if lower.value is not None else DEFAULT_APPLY_FRACTION)
                if lower
                else 1.0,
            )
        self._spawn_threadsafe(self._complete(completion))
        return response

    async def _complete(self, job: Completion) -> None:
        """The charge point's side: after the delay apply/clear/compute, post the result, push the change."""
        await asyncio.sleep(job.delay_s)
        record = job.record
        pushes: list[tuple[int, ActiveChargingProfile]] = []
        body: msgspec.Struct
        with self.lock:
            now = utc_now()
            ev = self.model.active_ev(record.session_id)
            changed = False
            if record.method == "GET":
                if ev is None or job.result_rejected:
                    result = ChargingProfileResultType.REJECTED if ev else ChargingProfileResultType.UNKNOWN
                    body = ActiveChargingProfileResult(result=result)
                else:
                    result = ChargingProfileResultType.ACCEPTED
                    body = ActiveChargingProfileResult(
                        result=result,
                        profile=self.model.active_profile(
                            ev, now, record.duration or self.settings.active_profile_duration_s
                        ),
                    )
            elif record.method == "DELETE":
                if ev is None:
                    result = ChargingProfileResultType.UNKNOWN
                elif job.result_rejected:
                    result = ChargingProfileResultType.REJECTED
                else:
                    changed = self.model.clear_profile(ev, now)
                    # "UNKNOWN: No Charging Profile(s) were found by the EVSE matching the request."
                    result = (
                        ChargingProfileResultType.ACCEPTED if changed else ChargingProfileResultType.UNKNOWN
                    )
                body = ClearProfileResult(result=result)
            else:
                assert record.charging_profile is not None
                if ev is None or job.result_rejected:
                    result = ChargingProfileResultType.REJECTED
                else:
                    self.model.apply_profile(ev, record.charging_profile, fraction=job.fraction, now=now)
                    ev.profile_senders.add(job.party_id)
                    record.applied_profile = ev.profile
                    result, changed = ChargingProfileResultType.ACCEPTED, True
                body = ChargingProfileResult(result=result)
            record.result = str(result)
            if changed and ev is not None:
                active = self.model.active_profile(ev, now, self.settings.active_profile_duration_s)
                pushes = [(party_id, active) for party_id in sorted(ev.profile_senders)]
        if job.post_result:
            await self._post_result(job, body)
        else:
            with self.lock:
                record.result_error = "not sent: NO_CALLBACK fault"
        for party_id, active in pushes:
            await self._push_active_profile(party_id, record.session_id, active)

    async def _post_result(self, job: Completion, body: msgspec.Struct) -> None:
        """POST the bare result object to the exact `response_url` (mod_charging_profiles Sender POST)."""
        record = job.record
        error: str | None = None
        if self.down():
            error = "not sent: DOWNTIME"
        else:
            party = await self._party(job.party_id)
            if party is None or self._client is None:
                error = "not sent: the party is no longer registered"
            else:
                try:
                    await self._client.call(
                        party,
                        "POST",
                        record.response_url,
                        body=body,
                        routing_to=(party.country_code, party.party_id),
                    )
                except errors.PeerError as exc:
                    error = exc.message
                    log.warning("result POST for session %s failed: %s", record.session_id, exc.message)
        with self.lock:
            record.result_error = error
            if error is None:
                record.result_sent_at = utc_now()

    async def _push_active_profile(
        self, party_id: int, session_id: str, active: ActiveChargingProfile
    ) -> None:
        """PUT the ActiveChargingProfile to the Sender's `{chargingprofiles url}/{session_id}`."""
        if self.down():
            return
        party = await self._party(party_id)
        if party is None or self._client is None:
            return
        url = endpoint_url(party, "chargingprofiles", InterfaceRole.SENDER)
        if url is None:
            return
        try:
            await self._client.call(
                party,
                "PUT",
                join_url(url, session_id),
                body=active,
                routing_to=(party.country_code, party.party_id),
            )
        except errors.PeerError as exc:
            log.warning("ActiveChargingProfile PUT for session %s failed: %s", session_id, exc.message)

    async def _party(self, party_id: int) -> Party | None:
        """The party as stored now (its token may have rotated since the request)."""
        try:
            party = await asyncio.to_thread(self.parties.get, party_id)
        except LookupError:
            return None
        return party if party.status == PartyStatus.REGISTERED else None

    # -- Sender interfaces (pull) ------------------------------------------------------------------
    def locations_page(self, page: PageRequest) -> tuple[list[Location], int]:
        """One page of Locations (configuration order) with `last_updated` in [date_from, date_to)."""
        with self.lock:
            self.pulls["locations"] += page.offset == 0
            items = [loc for loc in self.model.locations() if _in_range(loc.last_updated, page)]
        return items[page.offset : page.offset + page.limit], len(items)

    def sessions_page(self, page: PageRequest) -> tuple[list[Session], int]:
        """One page of Sessions (oldest first) with `last_updated` in [date_from, date_to)."""
        with self.lock:
            self.pulls["sessions"] += page.offset == 0
            matching = [
                ev
                for ev in self.model.sessions.values()
                if ev.last_updated is not None and _in_range(ev.last_updated, page)
            ]
            return [self.model.session(ev) for ev in matching[page.offset : page.offset + page.limit]], len(
                matching
            )

    def location(self, location_id: str) -> Location:
        """One Location (UnknownLocation when absent)."""
        with self.lock:
            return self.model.location(location_id)

    def evse(self, location_id: str, evse_uid: str) -> EVSE:
        """One EVSE of a Location."""
        with self.lock:
            return self.model.evse(location_id, evse_uid).ocpi(
                self.platform.country_code, self.platform.party_id
            )

    def connector(self, location_id: str, evse_uid: str, connector_id: str) -> Connector:
        """One Connector of an EVSE (each simulated EVSE has connector "1")."""
        with self.lock:
            connector = self.model.evse(location_id, evse_uid).connector()
        if connector.id != connector_id:
            raise errors.NotFound(f"no connector {connector_id!r} on EVSE {evse_uid!r}")
        return connector

    # -- control API -------------------------------------------------------------------------------
    def plug_in(self, request: PlugRequest) -> Session:
        """Plug in a specific EV; its pushes follow at once."""
        now = utc_now()
        with self.lock:
            ev, events = self.model.plug_in(
                request.location_id,
                request.evse_uid,
                energy_kwh=request.energy_kwh,
                max_w=request.max_kw * 1000,
                departure_at=now + timedelta(seconds=request.departure_s),
                now=now,
                min_a=request.min_a,
                phases=request.phases,
            )
            session = self.model.session(ev)
            self._outbox += events
        self._flush_threadsafe()
        return session

    def unplug(self, session_id: str) -> Session:
        """Unplug an EV now: its session completes."""
        with self.lock:
            ev, events = self.model.unplug(session_id, utc_now())
            session = self.model.session(ev)
            self._outbox += events
        self._flush_threadsafe()
        return session

    def set_faults(self, faults: list[Fault]) -> list[ActiveFault]:
        """Replace the faults in force."""
        with self.lock:
            return self.faults.replace(faults, utc_now())

    def clear_faults(self) -> list[ActiveFault]:
        """Remove every fault (a DOWNTIME ends: pushes resume, nothing is replayed)."""
        with self.lock:
            self.faults.clear()
            return []

    def current_faults(self) -> list[ActiveFault]:
        """The faults in force."""
        with self.lock:
            return self.faults.current(utc_now())

    def ev_views(self) -> list[EvView]:
        """Every plugged-in EV."""
        with self.lock:
            return [self._ev_view(ev) for ev in self.model.active_evs()]

    def _ev_view(self, ev: Ev) -> EvView:
        evse = self.model.evse_of(ev)
        senders = [self._scsps[p].handle if p in self._scsps else str(p) for p in sorted(ev.profile_senders)]
        return EvView(
            session_id=ev.session_id,
            location_id=ev.location_id,
            evse_uid=ev.evse_uid,
            origin=ev.origin,
            plugged_at=ev.plugged_at,
            departure_at=ev.departure_at,
            energy_need_kwh=ev.energy_need_kwh,
            kwh=round(ev.kwh, 6),
            full=ev.full,
            power_w=round(ev.power_w, 3),
            vehicle_max_w=ev.max_w,
            phases=ev.phases,
            min_a=ev.min_a,
            evse_max_w=evse.max_w(ev.phases),
            limit_w=None if ev.limit_w is None else round(ev.limit_w, 3),
            profile_source=ev.profile_source,
            profile=ev.profile,
            requested_profile=ev.requested_profile,
            profile_senders=senders,
        )

    def state(self) -> StateView:
        """Everything plugged in, every EVSE, the SCSPs we push to."""
        with self.lock:
            now = utc_now()
            evses = [
                EvseView(
                    location_id=e.location_id,
                    uid=e.uid,
                    power_type=e.power_type,
                    status=e.status,
                    max_w=e.max_w(),
                    charging_profile_capable=e.profile_capable,
                    session_id=e.session_id,
                )
                for site in self.model.sites.values()
                for e in site.evses.values()
            ]
            return StateView(
                now=now,
                down=self.faults.down(now),
                scsps=[p.handle for p in self._scsps.values()],
                evses=evses,
                evs=[self._ev_view(ev) for ev in self.model.active_evs()],
                pulls=dict(self.pulls),
            )

    def meter(self, since: float | None = None) -> MeterView:
        """Each site's load samples (optionally from unix time `since` on), peak and energy."""
        with self.lock:
            sites = []
            for site in self.model.sites.values():
                m = site.meter
                samples = [
                    Sample(t=round(t, 3), load_w=round(w, 3))
                    for t, w in m.samples
                    if since is None or t >= since
                ]
                sites.append(
                    SiteMeterView(
                        location_id=site.id,
                        load_w=round(m.samples[-1][1], 3) if m.samples else 0.0,
                        peak_w=round(m.peak_w, 3),
                        peak_at=m.peak_at,
                        energy_kwh=round(m.energy_wh / 1000, 6),
                        samples=samples,
                    )
                )
            return MeterView(
                tick_s=self.settings.tick_s, window_s=float(self.settings.meter_window_s), sites=sites
            )

    def command_log(self) -> list[CommandRecord]:
        """Every ChargingProfiles request received (oldest first), with its answers."""
        with self.lock:
            return [msgspec.structs.replace(r) for r in self.commands]


def _in_range(moment: datetime, page: PageRequest) -> bool:
    """transport_and_format pagination: `date_from` inclusive, `date_to` exclusive, on `last_updated`."""
    return (page.date_from is None or moment >= page.date_from) and (
        page.date_to is None or moment < page.date_to
    )
