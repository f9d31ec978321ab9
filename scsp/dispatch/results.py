"""What CPOs send back: results posted to our response_urls, ActiveChargingProfiles, and their compliance.

mod_charging_profiles.asciidoc: the CPO POSTs the charge point's result to the `response_url` we
gave, which carries the command id (ocpi-notes §10.8: the result bodies have no type tag, so the URL
tells them apart), and PUTs a session's ActiveChargingProfile to our Sender interface. Each
ActiveChargingProfile is judged against the plan the charge point was asked to follow.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import msgspec

from ocpi221.chargingprofiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfileResult,
    ChargingProfileResultType,
    ClearProfileResult,
)
from profiles import ComplianceVerdict, ElectricalFacts, active_anchor, assess_compliance
from scsp import errors
from scsp.config import Config
from scsp.events import SiteEvents
from scsp.ingest.sessions import replan_session
from scsp.platform.transport import Caller
from scsp.records.commands import (
    ActiveProfileRecord,
    CommandKind,
    ComplianceDetail,
    ControlUpdate,
    NotSteered,
    ProfileSource,
    SessionEnd,
)
from scsp.records.sessions import SessionKey
from scsp.store import Store

log = logging.getLogger("scsp.dispatch")

AnyResult = ChargingProfileResult | ActiveChargingProfileResult | ClearProfileResult

# The body posted to a response_url is one of three untagged objects; the command's kind says which.
RESULT_TYPES: dict[CommandKind, type[AnyResult]] = {
    CommandKind.SET: ChargingProfileResult,
    CommandKind.GET: ActiveChargingProfileResult,
    CommandKind.CLEAR: ClearProfileResult,
}
# How many of a session's newest set/clear requests are read to find the plan it was asked to follow.
ACCEPTED_HISTORY = 50


class Readback:
    """Takes the CPO's results and ActiveChargingProfiles, and records compliance with the plan."""

    def __init__(self, *, store: Store, config: Config, events: SiteEvents) -> None:
        self.store = store
        self.config = config
        self.events = events

    def on_result(self, caller: Caller, command_id: str, body: Any, now: datetime) -> None:
        """A result POSTed to one of our response_urls (bare object or, tolerantly, an envelope)."""
        command = self.store.commands.get(command_id)
        if command is None or command.key.party != caller.party.id:
            raise errors.NotFound(f"no request {command_id!r} awaits a result from you")
        if isinstance(body, dict) and "status_code" in body and isinstance(body.get("data"), dict):
            body = body["data"]  # ocpi-notes §10.7: some peers wrap the result in the envelope
        if isinstance(body, dict) and body.get("result") == "UNKNOWN_SESSION":
            # Not a ChargingProfileResultType, but what some charge points answer through their CPO
            # for a session they no longer run: the session is over for planning (tolerant reader).
            self.store.commands.record_result(command_id, result="UNKNOWN_SESSION", now=now)
            self.store.commands.end(command.key, SessionEnd.UNKNOWN_SESSION, now)
            replan_session(self.store, command.key, self.events.site_changed)
            return
        try:
            result = msgspec.convert(body, RESULT_TYPES[command.kind])
        except msgspec.ValidationError as exc:
            raise errors.InvalidParameters(str(exc)) from None
        value = result.result
        key = command.key
        control: ControlUpdate | None = None
        # A late result (after the timeout made the command `unknown`, ocpi-notes §10.9) of a set or
        # clear that a newer one replaced is recorded, but says nothing of what is in force now.
        newest = next(iter(self.store.commands.find(key=key, kinds=(CommandKind.SET, CommandKind.CLEAR), limit=1)),
                      None)
        if newest is not None and newest.id == command.id:
            if command.kind == CommandKind.SET and value == ChargingProfileResultType.ACCEPTED:
                control = ControlUpdate(accepted_profile=command.profile, accepted_at=now)
            elif command.kind == CommandKind.SET and value == ChargingProfileResultType.REJECTED:
                control = ControlUpdate(controllable=False, reason=NotSteered.CHARGE_POINT_REJECTED)
            elif command.kind == CommandKind.CLEAR and value == ChargingProfileResultType.ACCEPTED:
                control = ControlUpdate(accepted_profile=None, accepted_at=None)
        self.store.commands.record_result(command_id, result=value.value, now=now, control=control)
        log.log(logging.DEBUG if command.kind == CommandKind.GET else logging.INFO,
                "charge point answered %s %s", command.kind, value.value,
                extra={"site": command.site_id, "session": key.session_id, "command": command_id})
        if control is not None and control.controllable is False:
            replan_session(self.store, key, self.events.site_changed)
        if isinstance(result, ActiveChargingProfileResult) and result.profile is not None \
                and value == ChargingProfileResultType.ACCEPTED:
            self.record_active(key, result.profile, source=ProfileSource.GET, now=now)

    def _accepted_plan(self, key: SessionKey) -> int | None:
        """The plan behind the newest profile the charge point accepted for the session, if any."""
        for command in self.store.commands.find(key=key, kinds=(CommandKind.SET, CommandKind.CLEAR),
                                                limit=ACCEPTED_HISTORY):
            if command.result != ChargingProfileResultType.ACCEPTED:
                continue
            return command.plan if command.kind == CommandKind.SET else None
        return None

    def on_active_push(self, caller: Caller, session_id: str, active: ActiveChargingProfile,
                       owner: tuple[str, str] | None, now: datetime) -> None:
        """The CPO's PUT of a session's ActiveChargingProfile (our Sender interface)."""
        matches = self.store.sessions.by_id(caller.party.id, session_id)
        if owner is not None:
            matches = [m for m in matches if (m.session.country_code.upper(), m.session.party_id.upper()) == owner]
        if not matches:
            raise errors.NotFound(f"no session {session_id!r}")
        self.record_active(matches[0].key, active, source=ProfileSource.PUSH, now=now)

    def record_active(self, key: SessionKey, active: ActiveChargingProfile, *, source: ProfileSource,
                      now: datetime) -> None:
        """Store an ActiveChargingProfile with its compliance against the plan we asked the charge point to follow.

        That is the plan of the newest profile the charge point accepted: newer plans whose small changes
        were not worth a request (`profiles.selection`) are not what it was asked to apply.
        """
        found = self.store.plans.row(key, plan_id=self._accepted_plan(key))
        record = ActiveProfileRecord(id=0, key=key, source=source, received_at=now, profile=active)
        if found is not None:
            plan, row = found
            # Judged by what the charge point may let the session draw (its EVSE's maximum), not by
            # what the vehicle seemed to take.
            facts = ElectricalFacts(phases=row.facts.phases, dc=row.facts.dc, voltage_v=row.facts.voltage_v,
                                    max_electric_power_w=row.evse_max_w)
            control = self.store.commands.control(key)
            sent = [p for p in (control.accepted_profile, control.sent_profile, row.profile) if p is not None]
            compliance = assess_compliance(
                active, row.power_w, start=plan.start, slot_s=plan.slot_s, facts=facts,
                failsafe_w=row.failsafe_w or 0.0,
                settings=self.config.profile_settings_for(key.country_code, key.party_id),
                anchor=active_anchor(active, sent))
            record = msgspec.structs.replace(
                record, plan=plan.id, verdict=compliance.verdict, worst_excess_w=compliance.worst_excess_w,
                compliance=compliance.compliant_fraction,
                detail=ComplianceDetail(first_slot=compliance.first_slot, applied_w=compliance.applied_w,
                                        excess_w=compliance.excess_w,
                                        shows_evse_maximum=compliance.shows_evse_maximum))
        previous = self.store.commands.latest_active_profiles([key]).get(key)
        self.store.commands.save_active_profile(record)
        if record.verdict is not None and (previous is None or previous.verdict != record.verdict):
            log.info("compliance verdict changed", extra={
                "session": key.session_id, "verdict": record.verdict.value,
                "before": previous.verdict.value if previous is not None and previous.verdict else None})
        if record.verdict == ComplianceVerdict.OVER_PLAN:
            log.warning("charge point applies more than planned",
                        extra={"session": key.session_id, "worst_excess_w": record.worst_excess_w})
