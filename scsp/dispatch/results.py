"""What CPOs send back: results posted to our response_urls, ActiveChargingProfiles, and their compliance.

mod_charging_profiles.asciidoc: the CPO POSTs the charge point's result to the `response_url` we
gave, which carries the command id (ocpi-notes §10.8: the result bodies have no type tag, so the URL
tells them apart), and PUTs a session's ActiveChargingProfile to our Sender interface. Each
ActiveChargingProfile is judged against the plan the charge point was asked to follow.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import msgspec

from ocpi221.chargingprofiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfileResult,
    ChargingProfileResultType,
    ClearProfileResult,
)
from profiles import ElectricalFacts, assess_compliance
from scsp import errors
from scsp.config import Config
from scsp.events import SiteEvents
from scsp.platform.transport import Caller
from scsp.records.commands import ActiveProfileRecord, Command
from scsp.records.plans import hard_max_w
from scsp.records.sessions import SessionKey, site_id
from scsp.store import Store

log = logging.getLogger("scsp.dispatch")

RESULT_TYPES: dict[str, type[msgspec.Struct]] = {
    "set": ChargingProfileResult,
    "get": ActiveChargingProfileResult,
    "clear": ClearProfileResult,
}


def _unix(now: datetime) -> int:
    return int(now.timestamp())


class Readback:
    """Takes the CPO's results and ActiveChargingProfiles, and records compliance with the plan."""

    def __init__(self, *, store: Store, config: Config, events: SiteEvents) -> None:
        self.store = store
        self.config = config
        self.events = events

    def _replan(self, command: Command) -> None:
        for stored in self.store.sessions.by_id(command.party, command.session_id):
            s = stored.session
            self.events.site_changed(site_id(s.country_code, s.party_id, s.location_id))

    # -- what the CPO sends us ------------------------------------------------------------------
    def on_result(self, caller: Caller, command_id: str, body: Any, now: datetime) -> None:
        """A result POSTed to one of our response_urls (bare object or, tolerantly, an envelope)."""
        command = self.store.commands.get(command_id)
        if command is None or command.party != caller.party.id:
            raise errors.NotFound(f"no request {command_id!r} awaits a result from you")
        if isinstance(body, dict) and "status_code" in body and isinstance(body.get("data"), dict):
            body = body["data"]  # ocpi-notes §10.7: some peers wrap the result in the envelope
        try:
            result = msgspec.convert(body, RESULT_TYPES[command.kind])
        except msgspec.ValidationError as exc:
            raise errors.InvalidParameters(str(exc)) from None
        value: ChargingProfileResultType = result.result  # type: ignore[attr-defined]
        key = SessionKey(party=command.party, country_code=command.country_code, party_id=command.party_id,
                         session_id=command.session_id)
        control: dict[str, Any] = {}
        # A late result (after the timeout made the command `unknown`, ocpi-notes §10.9) of a set or
        # clear that a newer one replaced is recorded, but says nothing of what is in force now.
        newest = next(iter(self.store.commands.find(key=key, kinds=("set", "clear"), limit=1)), None)
        in_force = newest is not None and newest.id == command.id
        if in_force and command.kind == "set" and value == ChargingProfileResultType.ACCEPTED:
            control = {"accepted_profile": command.profile, "accepted_at": _unix(now)}
        elif in_force and command.kind == "set" and value == ChargingProfileResultType.REJECTED:
            control = {"controllable": 0, "reason": "the charge point rejected the profile"}
        elif in_force and command.kind == "clear" and value == ChargingProfileResultType.ACCEPTED:
            control = {"accepted_profile": None, "accepted_at": None}
        self.store.commands.record_result(command_id, result=value.value, now=_unix(now), control=control)
        if "controllable" in control:
            self._replan(command)
        if isinstance(result, ActiveChargingProfileResult) and result.profile is not None \
                and value == ChargingProfileResultType.ACCEPTED:
            self.record_active(key, result.profile, source="get", now=now)

    def _accepted_plan(self, key: SessionKey) -> int | None:
        """The plan behind the newest profile the charge point accepted for the session, if any."""
        for command in self.store.commands.find(key=key, kinds=("set", "clear"), limit=50):
            if command.kind == "set" and command.result == "ACCEPTED" and command.plan is not None:
                return command.plan
            if command.kind == "clear" and command.result == "ACCEPTED":
                return None
        return None

    def on_active_push(self, caller: Caller, session_id: str, active: ActiveChargingProfile,
                       owner: tuple[str, str] | None, now: datetime) -> None:
        """The CPO's PUT of a session's ActiveChargingProfile (our Sender interface)."""
        matches = self.store.sessions.by_id(caller.party.id, session_id)
        if owner is not None:
            matches = [m for m in matches if (m.session.country_code.upper(), m.session.party_id.upper()) == owner]
        if not matches:
            raise errors.NotFound(f"no session {session_id!r}")
        s = matches[0].session
        key = SessionKey(party=caller.party.id, country_code=s.country_code.upper(), party_id=s.party_id.upper(),
                         session_id=s.id)
        self.record_active(key, active, source="push", now=now)

    def record_active(self, key: SessionKey, active: ActiveChargingProfile, *, source: str, now: datetime) -> None:
        """Store an ActiveChargingProfile with its compliance against the plan we asked the charge point to follow.

        That is the plan of the newest profile the charge point accepted: newer plans whose small changes
        were not worth a request (`scsp.selection`) are not what it was asked to apply.
        """
        found = self.store.plans.row(key, plan_id=self._accepted_plan(key))
        verdict = worst = fraction = None
        detail: dict[str, Any] = {}
        plan_id = None
        if found is not None:
            plan, row = found
            plan_id = plan.id
            info = plan.detail.get("sessions", {}).get(f"{key.party}/{key.country_code}/{key.party_id}/"
                                                       f"{key.session_id}", {})
            phases = int(info.get("phases", 3))
            facts = ElectricalFacts(phases=phases if phases in (1, 2) else 3,  # type: ignore[arg-type]
                                    dc=bool(info.get("dc", False)),
                                    voltage_v=float(info.get("voltage_v", 230.0)),
                                    max_electric_power_w=hard_max_w(info, None))
            compliance = assess_compliance(
                active, row.power_w, start=datetime.fromtimestamp(plan.start_ts, UTC), slot_s=plan.slot_s,
                facts=facts, failsafe_w=float(info.get("failsafe_w", 0.0)),
                settings=self.config.profile_settings_for(key.country_code, key.party_id))
            verdict, worst, fraction = (compliance.verdict.value, compliance.worst_excess_w,
                                        compliance.compliant_fraction)
            detail = {"first_slot": compliance.first_slot, "applied_w": compliance.applied_w,
                      "excess_w": compliance.excess_w, "shows_evse_maximum": compliance.shows_evse_maximum}
        self.store.commands.save_active_profile(ActiveProfileRecord(
            id=0, party=key.party, country_code=key.country_code, party_id=key.party_id, session_id=key.session_id,
            source=source, received_at=_unix(now), profile=active, plan=plan_id, verdict=verdict,
            worst_excess_w=worst, compliance=fraction, detail=detail))
        if verdict == "OVER_PLAN":
            log.warning("charge point applies more than planned",
                        extra={"session": key.session_id, "worst_excess_w": worst})
