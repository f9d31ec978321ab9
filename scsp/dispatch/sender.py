"""Sending plans to CPOs (their ChargingProfiles Receiver): choose, send, release, and the synchronous answers.

mod_charging_profiles.asciidoc: PUT SetChargingProfile, GET ActiveChargingProfile, DELETE; the CPO
answers synchronously with a ChargingProfileResponse and later POSTs the charge point's result to
the `response_url` we gave, which carries the command id (ocpi-notes §10.8: the result bodies have
no type tag, so the URL tells them apart). Every command is recorded before it is sent: the result
may arrive before the synchronous reply.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote

from ocpi221.chargingprofiles import (
    ChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    SetChargingProfile,
    spec_violations,
)
from ocpi221.sessions import SessionStatus
from profiles import resend_due
from profiles.selection import Candidate, Choice, select
from scsp import errors
from scsp.config import Config, join_url
from scsp.events import SiteEvents
from scsp.faults import PlanningStage
from scsp.ingest.sessions import replan_party, replan_session
from scsp.platform.client import OcpiClient
from scsp.platform.identity import Platform
from scsp.records.commands import (
    Command,
    CommandKind,
    CommandReason,
    CommandState,
    ControlUpdate,
    NotSteered,
    SessionEnd,
)
from scsp.records.parties import Party, SyncState
from scsp.records.plans import PlanSession, StoredPlan
from scsp.records.sessions import SessionKey
from scsp.store import Store

log = logging.getLogger("scsp.dispatch")

# Backoff after TOO_OFTEN (s), doubling per consecutive refusal: the spec sets no rate, so start at one
# minute (below the 300 s cycle, so one refusal costs at most one cycle) and cap at an hour.
TOO_OFTEN_BACKOFF_S = (60, 120, 300, 600, 1800, 3600)
# Pause after UNKNOWN_SESSION or a rejected request (s): the CPO's session state may lag its push.
RETRY_AFTER_S = 300
# Longest wait for the results of decreases before increases are sent (s): a charge point usually
# answers within seconds; past this the increases go anyway and the next cycle corrects.
DECREASE_WAIT_S = 30.0
# How often the store is polled for those results (s).
RESULT_POLL_S = 0.2
# Planning cycles ahead in which a change of limit is worth a request now (later ones wait for later
# cycles; the site check covers the whole horizon either way).
LOOKAHEAD_CYCLES = 2
# Timeout assumed when the CPO's answer carries none we can use (s).
DEFAULT_TIMEOUT_S = 60



class Outgoing(NamedTuple):
    """A profile chosen to go to its session's CPO."""

    party: Party
    key: SessionKey
    profile: ChargingProfile
    plan_id: int
    site_id: str
    reason: str | None


class Dispatcher:
    """Sends SetChargingProfile / GET / DELETE and records what comes back."""

    def __init__(self, *, store: Store, client: OcpiClient, platform: Platform, config: Config,
                 events: SiteEvents) -> None:
        self.store = store
        self.client = client
        self.platform = platform
        self.config = config
        self.events = events

    # -- decisions ------------------------------------------------------------------------------
    def send_gate(self) -> Callable[[Party, SessionKey], bool]:
        """`may_send` for many sessions at once: the store is read once per party, not per session."""
        offline = self.store.sync.offline_parties()
        states: dict[int, SyncState] = {}

        def may_send(party: Party, key: SessionKey) -> bool:
            if not party.reachable:
                return False
            state = states.get(party.id) or states.setdefault(party.id, self.store.sync.state(party.id))
            if state.unreachable_since is not None or state.needs_resync:
                return False
            return (party.id, key.country_code.upper(), key.party_id.upper()) not in offline

        return may_send

    def may_send(self, party: Party, key: SessionKey) -> bool:
        """Whether a ChargingProfiles request for this session may go to its CPO now.

        Not when the connection is unregistered or reported offline, when the CPO did not answer
        (transport_and_format "Offline behaviour": no queueing, resync by GET when it is back),
        when a Hub reported the session's CPO as not CONNECTED (mod_hub_client_info OFFLINE: "No
        requests can be sent"), or while the resync after a start-up, a registration or a return
        is still to run: until then what we hold may be stale (a session that ended meanwhile).
        """
        return self.send_gate()(party, key)

    def _maybe_applied(self, key: SessionKey) -> bool:
        """Whether the newest profile we sent the session has no definite outcome (so it may be in force)."""
        # Readback GETs come every few minutes: look past them to the newest set or clear.
        newest = next(iter(self.store.commands.find(key=key, kinds=(CommandKind.SET, CommandKind.CLEAR), limit=1)),
                      None)
        return newest is not None and newest.kind == CommandKind.SET and newest.state in (
            CommandState.PENDING, CommandState.AWAITING_RESULT, CommandState.UNKNOWN)

    def choose(self, plan: StoredPlan, now: datetime) -> list[tuple[PlanSession, Choice]]:
        """Which of a site's new profiles to send now (`scsp.selection`)."""
        rows: list[PlanSession] = []
        candidates: list[Candidate] = []
        # A site is one CPO's Location: its sessions share that CPO's profile settings.
        owner = next(((r.key.country_code, r.key.party_id) for r in plan.sessions), ("", ""))
        settings = self.config.profile_settings_for(*owner)
        for row in plan.sessions:
            if not row.controllable or row.profile is None:
                continue
            key = row.key
            control = self.store.commands.control(key)
            held = [control.accepted_profile] if control.accepted_profile is not None else []
            if control.sent_profile is not None and control.sent_profile not in held and self._maybe_applied(key):
                # Sent without a definite outcome yet: the charge point may be applying it.
                held.append(control.sent_profile)
            rows.append(row)
            candidates.append(Candidate(
                # The EVSE's maximum, not the learned vehicle maximum: the site must stay within its
                # limit by what the charge points allow, whatever a vehicle seemed to take so far.
                new=row.profile, held=tuple(held), w_per_a=row.facts.w_per_a, max_w=row.evse_max_w,
                resend=control.accepted_profile is not None and resend_due(control.accepted_profile,
                                                                           settings, now=now),
                blocked=(control.backoff_until is not None and control.backoff_until > now)
                or self.store.commands.in_flight(key)))
        choices = select(candidates, limit_w=plan.limit_w, fixed_w=plan.fixed_load_w,
                         start=plan.start, slot_s=plan.slot_s, now=now,
                         settings=settings, lookahead_s=LOOKAHEAD_CYCLES * self.config.planning.interval_s)
        return list(zip(rows, choices, strict=True))

    async def dispatch(self, plans: Iterable[StoredPlan], now: datetime,
                       may_send: Callable[[Party, SessionKey], bool] | None = None) -> dict[str, int]:
        """Send what each site needs: its decreases first, its increases once those are applied.

        DESIGN.md step 5; `scsp.selection` decides which profiles go. A decrease that is refused or
        fails holds back its site's increases until a later cycle. `may_send`: a `send_gate` shared
        by the sites of one planning pass (read once per pass, not per site).
        """
        lower: list[Outgoing] = []
        other: list[Outgoing] = []
        held_sites: set[int] = set()
        outcomes: dict[str, int] = {}

        def count(name: str) -> None:
            outcomes[name] = outcomes.get(name, 0) + 1

        sites: dict[int, str] = {}
        if may_send is None:
            may_send = await asyncio.to_thread(self.send_gate)
        for plan in plans:
            sites[plan.id] = plan.site_id
            try:
                chosen = await asyncio.to_thread(self.choose, plan, now)
            except Exception as exc:  # noqa: BLE001 - one site's profiles never stop another's
                self.store.faults.site_failed(plan.site_id, PlanningStage.PROFILES, exc)
                continue
            for row, choice in chosen:
                if choice.held_back:
                    count("held_back")
                if not choice.send or row.profile is None:
                    continue
                party = await asyncio.to_thread(self.store.parties.get, row.key.party)
                if not await asyncio.to_thread(may_send, party, row.key):
                    count("unreachable")
                    if choice.lowers:
                        held_sites.add(plan.id)
                    continue
                (lower if choice.lowers else other).append(
                    Outgoing(party, row.key, row.profile, plan.id, plan.site_id, choice.reason))
        sent_lower = await self._send_batch(lower, now, outcomes)
        # A decrease that did not go (another set or clear of its session, such as an operator's release,
        # took the one slot after the selection ran; or the strict writer refused it) holds back its
        # site's increases exactly like a refused one: the charge point still applies the higher limit.
        held_sites.update(item.plan_id for item, command in zip(lower, sent_lower, strict=True)
                          if command is None)
        lowered = [c for c in sent_lower if c is not None]
        if lowered and other:
            # Applied first, not only sent first: an increase that lands before a decrease would take the
            # site over its limit for the time between the two.
            await self._wait_for_results(lowered)
        refused: set[int] = set()
        for command in lowered:
            current = await asyncio.to_thread(self.store.commands.get, command.id)
            if current is None or current.response != "ACCEPTED" or current.result not in (None, "ACCEPTED") \
                    or current.state in ("failed", "unknown"):
                refused.add(command.plan or 0)
        held_sites |= refused
        # The site was checked with every chosen profile applied. A decrease the CPO refused (TOO_OFTEN,
        # REJECTED, a failure) leaves its old limit in force, while the decreases that went may raise
        # limits later in their horizon: re-plan the site now, with what each charge point really holds,
        # rather than at the next cycle.
        for plan_id in refused:
            site = sites.get(plan_id)
            if site is not None:
                self.events.site_changed(site)
        released = [item for item in other if item.plan_id not in held_sites]
        for _ in range(len(other) - len(released)):
            count("held_back")
        await self._send_batch(released, now, outcomes)
        return outcomes

    async def _send_batch(self, batch: list[Outgoing], now: datetime,
                          outcomes: dict[str, int]) -> list[Command | None]:
        """Send one batch concurrently; count the outcomes; the command of each item (None: not sent)."""
        sent = await asyncio.gather(*(self.send_set(item.party, item.key, item.profile, item.plan_id, now,
                                                    reason=item.reason, site_id=item.site_id)
                                      for item in batch))
        for command in sent:
            name = "in_flight" if command is None else (command.response or command.state)
            outcomes[name] = outcomes.get(name, 0) + 1
        return list(sent)

    async def _wait_for_results(self, commands: list[Command]) -> None:
        """Wait until the accepted commands have their result, their timeout passed, or `DECREASE_WAIT_S`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DECREASE_WAIT_S
        waiting = {c.id for c in commands if c.state == CommandState.AWAITING_RESULT}
        while waiting and loop.time() < deadline:
            await asyncio.sleep(RESULT_POLL_S)
            for command_id in list(waiting):
                current = await asyncio.to_thread(self.store.commands.get, command_id)
                if current is None or current.state != CommandState.AWAITING_RESULT or (
                        current.timeout_at is not None and current.timeout_at <= datetime.now(UTC)):
                    waiting.discard(command_id)

    # -- requests -------------------------------------------------------------------------------
    def _receiver_url(self, party: Party, session_id: str) -> str:
        base = party.endpoint("chargingprofiles", "RECEIVER")
        if base is None:
            raise errors.PeerError(f"{party.handle} advertises no chargingprofiles endpoint")
        # ocpi-notes §10.3: `{url}{session_id}` joined with exactly one slash; the id is used verbatim,
        # percent-encoded only where a URL needs it.
        return join_url(base, quote(session_id, safe=""))

    def response_url(self, command_id: str) -> str:
        """The unique URL the CPO posts this command's result to."""
        return self.platform.url("chargingprofiles", "results", command_id)

    async def _send(self, kind: CommandKind, party: Party, key: SessionKey, now: datetime, *,
                    profile: ChargingProfile | None = None, plan_id: int | None = None,
                    duration_s: int | None = None, reason: str | None = None,
                    site_id: str | None = None) -> Command | None:
        command = Command(id=uuid.uuid4().hex, kind=kind, key=key, state=CommandState.PENDING, created_at=now,
                          plan=plan_id, profile=profile, reason=reason, site_id=site_id)
        if not await asyncio.to_thread(self.store.commands.create, command):
            return None  # at most one command in flight per session
        try:
            url = self._receiver_url(party, key.session_id)
            response_url = self.response_url(command.id)
            if kind == CommandKind.SET:
                assert profile is not None
                data, _ = await self.client.call(
                    party, "PUT", url, data_type=ChargingProfileResponse,
                    body=SetChargingProfile(charging_profile=profile, response_url=response_url),
                    routing_to=(key.country_code, key.party_id), correlation_id=command.id)
            elif kind == CommandKind.GET:
                # ocpi-notes §10.5: `duration` is required even though the sequence diagram omits it.
                data, _ = await self.client.call(
                    party, "GET", url, data_type=ChargingProfileResponse,
                    params={"duration": str(duration_s or self.config.readback.duration_s),
                            "response_url": response_url},
                    routing_to=(key.country_code, key.party_id), correlation_id=command.id)
            else:
                data, _ = await self.client.call(
                    party, "DELETE", url, data_type=ChargingProfileResponse, params={"response_url": response_url},
                    routing_to=(key.country_code, key.party_id), correlation_id=command.id)
        except errors.PeerError as exc:
            await asyncio.to_thread(self._failed, party, command, exc, now)
            return await asyncio.to_thread(self.store.commands.get, command.id)
        if data is None:
            await asyncio.to_thread(self.store.commands.record_failure, command.id,
                                    error="no ChargingProfileResponse in reply",
                                    now=datetime.now(UTC))
            return await asyncio.to_thread(self.store.commands.get, command.id)
        return await asyncio.to_thread(self._responded, command, data)

    async def send_set(self, party: Party, key: SessionKey, profile: ChargingProfile, plan_id: int | None,
                       now: datetime, *, reason: str | None = None, site_id: str | None = None) -> Command | None:
        """PUT SetChargingProfile; None when another command for the session is in flight.

        Strict writer: a profile that breaks the spec's shape (more than one decimal, a period not
        starting at 0, a DateTime without `Z`, ...) is never sent; that would be our bug, logged loudly.
        """
        problems = spec_violations(profile)
        if problems:
            log.error("refusing to send an invalid ChargingProfile", extra={"session": key.session_id,
                                                                             "problems": "; ".join(problems)})
            return None
        return await self._send(CommandKind.SET, party, key, now, profile=profile, plan_id=plan_id, reason=reason,
                                site_id=site_id)

    async def send_get(self, party: Party, key: SessionKey, now: datetime, duration_s: int | None = None,
                       reason: CommandReason = CommandReason.READBACK) -> Command | None:
        """GET ActiveChargingProfile (the result comes to our response_url)."""
        return await self._send(CommandKind.GET, party, key, now, duration_s=duration_s, reason=reason)

    async def send_clear(self, party: Party, key: SessionKey, now: datetime) -> Command | None:
        """DELETE: clear the profile we set on the session (an operator's release)."""
        return await self._send(CommandKind.CLEAR, party, key, now, reason=CommandReason.RELEASE)

    def _failed(self, party: Party, command: Command, exc: errors.PeerError, now: datetime) -> None:
        self.store.commands.record_failure(command.id, error=exc.message, now=now)
        if exc.unreachable or (exc.http_status is not None and exc.http_status >= 500):
            # transport_and_format "Offline behaviour": no queueing; resync by GET when it is back.
            state = self.store.sync.state(party.id)
            if state.unreachable_since is None:
                log.warning("CPO unreachable: traffic stops until it answers again",
                            extra={"party": party.handle, "error": exc.message})
                self.store.sync.unreachable(party.id, since=now, resync=True)
                replan_party(self.store, party.id, self.events.site_changed)
        else:
            self.store.commands.back_off(command.key, now + timedelta(seconds=RETRY_AFTER_S))
            log.warning("ChargingProfiles request failed", extra={"party": party.handle, "error": exc.message})

    def _responded(self, command: Command, data: ChargingProfileResponse) -> Command:
        now = datetime.now(UTC)
        control: ControlUpdate | None = None
        result = data.result
        retry = now + timedelta(seconds=RETRY_AFTER_S)
        if result == ChargingProfileResponseType.ACCEPTED:
            control = ControlUpdate(too_often=0, backoff_until=None)
        elif result == ChargingProfileResponseType.TOO_OFTEN:
            count = self.store.commands.control(command.key).too_often
            backoff_s = TOO_OFTEN_BACKOFF_S[min(count, len(TOO_OFTEN_BACKOFF_S) - 1)]
            control = ControlUpdate(too_often=count + 1, backoff_until=now + timedelta(seconds=backoff_s))
        elif result in (ChargingProfileResponseType.NOT_SUPPORTED, ChargingProfileResponseType.REJECTED):
            if command.kind == CommandKind.SET:
                # DESIGN.md: a session whose CPO answered NOT_SUPPORTED / REJECTED is planned as fixed load.
                reason = (NotSteered.CPO_NOT_SUPPORTED if result == ChargingProfileResponseType.NOT_SUPPORTED
                          else NotSteered.CPO_REJECTED)
                control = ControlUpdate(controllable=False, reason=reason)
            else:
                control = ControlUpdate(backoff_until=retry)
        elif result == ChargingProfileResponseType.UNKNOWN_SESSION:
            # The CPO does not know the session: over for planning until the CPO updates it again
            # (a session it only pushed a moment ago comes back with its next update).
            control = ControlUpdate(backoff_until=retry)
            self.store.commands.end(command.key, SessionEnd.UNKNOWN_SESSION, now)
        # ocpi-notes §10.9: `timeout` is required even when not ACCEPTED; only ACCEPTED waits for a result.
        timeout = data.timeout if data.timeout > 0 else DEFAULT_TIMEOUT_S
        updated = self.store.commands.record_response(command.id, response=result.value, timeout_s=timeout, now=now,
                                                      control=control)
        if (control is not None and control.controllable is False) or \
                result == ChargingProfileResponseType.UNKNOWN_SESSION:
            replan_session(self.store, command.key, self.events.site_changed)
        # Readback GETs come every few minutes per session: DEBUG; a profile sent or cleared is a domain event.
        log.log(logging.DEBUG if command.kind == CommandKind.GET else logging.INFO,
                "ChargingProfiles %s answered %s", command.kind, result.value,
                extra={"site": command.site_id, "session": command.key.session_id, "reason": command.reason,
                       "command": command.id})
        return updated

    async def read_back(self, now: datetime) -> int:
        """GET the ActiveChargingProfile of every session we manage; returns how many were asked.

        The results come to our response_urls (`scsp.dispatch.results`), where they are judged.
        """
        controls = await asyncio.to_thread(self.store.commands.all_control)
        may_send = await asyncio.to_thread(self.send_gate)
        asked = 0
        for key, control in controls.items():
            if not control.controllable or control.accepted_profile is None:
                continue
            stored = await asyncio.to_thread(self.store.sessions.get, key)
            if stored is None or stored.session.status != SessionStatus.ACTIVE:
                continue
            party = await asyncio.to_thread(self.store.parties.get, key.party)
            if not await asyncio.to_thread(may_send, party, key):
                continue
            if await self.send_get(party, key, now) is not None:
                asked += 1
        return asked

    # -- operator actions -----------------------------------------------------------------------
    async def release(self, key: SessionKey, now: datetime) -> Command | None:
        """Stop steering a session and clear our profile on it (DELETE); None if a request is in flight.

        mod_charging_profiles DELETE "Clears the ChargingProfile set by the eMSP [Sender] on the given
        session", e.g. when the driver wants maximum speed. The session is then planned as fixed load.
        """
        party = await asyncio.to_thread(self.store.parties.get, key.party)
        if await asyncio.to_thread(self.store.commands.in_flight, key):
            return None
        await asyncio.to_thread(self.store.commands.set_controllable, key, False, NotSteered.RELEASED)
        replan_session(self.store, key, self.events.site_changed)
        if not await asyncio.to_thread(self.may_send, party, key):
            raise errors.PeerError(f"{party.handle} is not reachable: the profile stays until it is back")
        return await self.send_clear(party, key, now)

    def resume(self, key: SessionKey) -> None:
        """Steer a released session again (the next plan sends it a profile)."""
        self.store.commands.set_controllable(key, True, None)
        replan_session(self.store, key, self.events.site_changed)
