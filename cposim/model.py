"""The simulated CPO's world: sites (Locations) with EVSEs, plugged EVs, charging physics, sessions, meters.

Pure and deterministic: no I/O, no clock, no locks. Every function that depends on time takes
`now` (aware UTC datetime); randomness comes from the `random.Random` the caller passes in. The
runtime (`cposim.runtime`) calls `CpoModel.step` every tick and turns the returned events
into OCPI pushes.

Physics (README "Charging"): an EV draws min(applied profile limit, vehicle maximum, EVSE maximum)
until its energy need is met, then 0 W while it stays plugged until its departure.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cposim.chargepoint import (
    Evse,
    Site,
    SiteMeter,
    expand_evses,
    floor1,
    profile_breakpoints,
    profile_limit_at,
    scaled_profile,
    whole_second,
)
from cposim.traffic import EvProfile, arrival_probability, draw_ev
from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.locations import (
    EvseStatus,
    GeoLocation,
    Location,
    PowerType,
)
from ocpi221.sessions import CdrDimension, CdrToken, ChargingPeriod, Session, SessionPatch, SessionStatus
from scsp import errors
from scsp.config import SimulatorConfig

# Below this remaining need (Wh) a battery counts as full: float noise must not keep an EV "charging".
FULL_EPSILON_WH = 1e-6






# -- sites -----------------------------------------------------------------------------------------








# -- metering --------------------------------------------------------------------------------------




# -- EVs and sessions ------------------------------------------------------------------------------


@dataclass
class Ev:
    """A plugged-in EV and its OCPI Session."""

    session_id: str
    location_id: str
    evse_uid: str
    token_uid: str
    plugged_at: datetime
    departure_at: datetime
    energy_need_kwh: float
    max_w: float
    phases: int
    min_a: float | None
    origin: str  # "random" (arrival process) or "control" (plugged in through the control API)
    kwh: float = 0.0
    power_w: float = 0.0
    limit_w: float | None = None  # the applied profile's limit now, W (None: no profile limit)
    accounted_at: datetime | None = None
    profile: ChargingProfile | None = None  # as applied (after APPLY_LOWER)
    requested_profile: ChargingProfile | None = None  # as the Sender asked
    applied_fraction: float = 1.0
    # Parties that successfully set a profile on this session: only they get ActiveChargingProfile
    # pushes (mod_charging_profiles: "SHALL NOT call this interface for any session where the Sender
    # has never, successfully called the charging profile Receiver PUT interface").
    profile_senders: set[int] = field(default_factory=set)
    last_profile_request_at: datetime | None = None
    status: SessionStatus = SessionStatus.ACTIVE
    end_at: datetime | None = None
    last_updated: datetime | None = None
    periods: list[ChargingPeriod] = field(default_factory=list)
    period_start: datetime | None = None
    period_start_kwh: float = 0.0

    @property
    def active(self) -> bool:
        """True while the session is ACTIVE (plugged in)."""
        return self.status == SessionStatus.ACTIVE

    @property
    def full(self) -> bool:
        """True once the energy need is met."""
        return (self.energy_need_kwh - self.kwh) * 1000 <= FULL_EPSILON_WH

    @property
    def profile_source(self) -> str:
        """Where the applied limit comes from: "none", "set" or "set x <fraction>" (APPLY_LOWER)."""
        if self.profile is None:
            return "none"
        return "set" if self.applied_fraction == 1.0 else f"set x {self.applied_fraction:g}"


# -- events the runtime turns into pushes -----------------------------------------------------------


@dataclass(frozen=True)
class EvseStatusChanged:
    """An EVSE changed status: PATCH it to Locations receivers."""

    location_id: str
    evse_uid: str
    status: EvseStatus
    last_updated: datetime


@dataclass(frozen=True)
class SessionStarted:
    """A session began: PUT it to Sessions receivers."""

    session: Session


@dataclass(frozen=True)
class SessionChanged:
    """A session progressed or ended: PATCH it (the full Session is the fallback PUT)."""

    session_id: str
    patch: SessionPatch
    final: bool


Event = EvseStatusChanged | SessionStarted | SessionChanged


# -- profile semantics (mod_charging_profiles.asciidoc "ChargingProfile") ---------------------------








# -- the model -------------------------------------------------------------------------------------


class CpoModel:
    """All simulated state of the CPO. Not thread-safe: the runtime holds a lock around every call."""

    def __init__(
        self,
        settings: SimulatorConfig,
        *,
        country_code: str,
        party_id: str,
        now: datetime,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.country_code = country_code
        self.party_id = party_id
        self.rng = rng or random.Random(settings.seed)
        self.sites: dict[str, Site] = {}
        stamp = whole_second(now)
        for config in settings.sites:
            if config.id in self.sites:
                raise ValueError(f"simulator.sites: location id {config.id!r} appears twice")
            evses: dict[str, Evse] = {}
            for uid, evse in expand_evses(config):
                if uid in evses or any(uid in s.evses for s in self.sites.values()):
                    raise ValueError(f"simulator.sites: EVSE uid {uid!r} appears twice")
                evses[uid] = Evse(
                    location_id=config.id,
                    uid=uid,
                    power_type=PowerType(evse.power_type),
                    max_voltage=evse.max_voltage,
                    max_amperage=evse.max_amperage,
                    max_electric_power=evse.max_electric_power,
                    capabilities=evse.capabilities,
                    standard=evse.standard,
                    format=evse.format,
                    status=EvseStatus.AVAILABLE,
                    last_updated=stamp,
                )
            self.sites[config.id] = Site(
                config=config,
                evses=evses,
                last_updated=stamp,
                meter=SiteMeter(window_s=float(settings.meter_window_s)),
            )
        # Every session, oldest first (the order of the Sessions Sender list); finished ones are
        # forgotten oldest first beyond `completed_sessions_kept`.
        self.sessions: OrderedDict[str, Ev] = OrderedDict()
        self._completed: deque[str] = deque()
        self._active: dict[str, Ev] = {}  # the ACTIVE ones, in plug-in order
        self._token_serial = 0
        self.last_tick: datetime = now
        self.last_session_update: datetime = now

    # -- lookups -----------------------------------------------------------------------------------
    def site(self, location_id: str) -> Site:
        """The site with this Location.id, or UnknownLocation (2003)."""
        site = self.sites.get(location_id)
        if site is None:
            raise errors.UnknownLocation(f"no location {location_id!r}")
        return site

    def evse(self, location_id: str, evse_uid: str) -> Evse:
        """One EVSE of a location, or NotFound."""
        evse = self.site(location_id).evses.get(evse_uid)
        if evse is None:
            raise errors.NotFound(f"no EVSE {evse_uid!r} at location {location_id!r}")
        return evse

    def evse_of(self, ev: Ev) -> Evse:
        """The EVSE an EV is plugged into."""
        return self.sites[ev.location_id].evses[ev.evse_uid]

    def active_ev(self, session_id: str) -> Ev | None:
        """The plugged-in EV of an ACTIVE session, or None (unknown or finished)."""
        return self._active.get(session_id)

    def active_evs(self) -> list[Ev]:
        """Every plugged-in EV, oldest session first."""
        return list(self._active.values())

    # -- OCPI views --------------------------------------------------------------------------------
    def location(self, location_id: str) -> Location:
        """The OCPI Location object."""
        site = self.site(location_id)
        c = site.config
        return Location(
            country_code=self.country_code,
            party_id=self.party_id,
            id=c.id,
            publish=True,
            name=c.name,
            address=c.address,
            city=c.city,
            postal_code=c.postal_code,
            country=c.country,
            coordinates=GeoLocation(latitude=c.latitude, longitude=c.longitude),
            time_zone=c.time_zone,
            parking_type="PARKING_LOT" if c.kind == "workplace" else "ON_STREET",
            evses=[e.ocpi(self.country_code, self.party_id) for e in site.evses.values()],
            last_updated=site.last_updated,
        )

    def locations(self) -> list[Location]:
        """Every Location, in configuration order."""
        return [self.location(site_id) for site_id in self.sites]

    def session(self, ev: Ev) -> Session:
        """The OCPI Session object of an EV (all charging periods so far)."""
        assert ev.last_updated is not None
        return Session(
            country_code=self.country_code,
            party_id=self.party_id,
            id=ev.session_id,
            start_date_time=ev.plugged_at,
            end_date_time=ev.end_at,
            kwh=round(ev.kwh, 4),
            cdr_token=CdrToken(
                country_code=self.country_code,
                party_id=self.party_id,
                uid=ev.token_uid,
                type="RFID",
                contract_id=f"{self.country_code}-{self.party_id}-C{ev.token_uid[-8:]}",
            ),
            auth_method="WHITELIST",
            location_id=ev.location_id,
            evse_uid=ev.evse_uid,
            connector_id="1",
            currency=self.settings.currency,
            charging_periods=list(ev.periods),
            status=ev.status,
            last_updated=ev.last_updated,
        )

    # -- plugging ----------------------------------------------------------------------------------
    def plug_in(
        self,
        location_id: str,
        evse_uid: str,
        *,
        energy_kwh: float,
        max_w: float,
        departure_at: datetime,
        now: datetime,
        min_a: float | None = None,
        phases: int | None = None,
        origin: str = "control",
    ) -> tuple[Ev, list[Event]]:
        """Plug an EV into a free EVSE: the session starts ACTIVE and the EVSE becomes CHARGING."""
        evse = self.evse(location_id, evse_uid)
        if evse.session_id is not None:
            raise errors.Conflict(f"EVSE {evse_uid!r} is occupied by session {evse.session_id}")
        if evse.status != EvseStatus.AVAILABLE:
            raise errors.Conflict(f"EVSE {evse_uid!r} is {evse.status}, not AVAILABLE")
        self._token_serial += 1
        stamp = whole_second(now)
        # uuid4, not drawn from the seeded generator: a restarted simulator must never reuse a session id.
        ev = Ev(
            session_id=str(uuid.uuid4()),
            location_id=location_id,
            evse_uid=evse_uid,
            token_uid=f"SIM{self._token_serial:09d}",
            plugged_at=stamp,
            departure_at=departure_at,
            energy_need_kwh=energy_kwh,
            max_w=max_w,
            phases=evse.phases if phases is None else phases,
            min_a=min_a,
            origin=origin,
            accounted_at=now,
            last_updated=stamp,
            period_start=now,
        )
        self.sessions[ev.session_id] = ev
        self._active[ev.session_id] = ev
        evse.session_id = ev.session_id
        self._update_power(ev, now)
        return ev, [self._set_status(evse, EvseStatus.CHARGING, now), SessionStarted(self.session(ev))]

    def unplug(self, session_id: str, now: datetime) -> tuple[Ev, list[Event]]:
        """The EV leaves: the session becomes COMPLETED and the EVSE AVAILABLE again."""
        ev = self.active_ev(session_id)
        if ev is None:
            raise errors.NotFound(f"no active session {session_id!r}")
        self._accrue(ev, now)
        period = self._close_period(ev, now)
        stamp = whole_second(now)
        ev.status, ev.end_at, ev.last_updated = SessionStatus.COMPLETED, stamp, stamp
        ev.power_w, ev.limit_w = 0.0, None
        del self._active[ev.session_id]
        evse = self.evse_of(ev)
        evse.session_id = None
        patch = SessionPatch(
            last_updated=stamp,
            status=SessionStatus.COMPLETED,
            end_date_time=stamp,
            kwh=round(ev.kwh, 4),
            charging_periods=[period] if period else [],
        )
        self._completed.append(ev.session_id)
        while len(self._completed) > self.settings.completed_sessions_kept:
            self.sessions.pop(self._completed.popleft(), None)
        return ev, [
            SessionChanged(ev.session_id, patch, final=True),
            self._set_status(evse, EvseStatus.AVAILABLE, now),
        ]

    def _set_status(self, evse: Evse, status: EvseStatus, now: datetime) -> EvseStatusChanged:
        stamp = whole_second(now)
        evse.status, evse.last_updated = status, stamp
        # mod_locations: a child's change also updates its parent's last_updated.
        self.sites[evse.location_id].last_updated = stamp
        return EvseStatusChanged(evse.location_id, evse.uid, status, stamp)

    # -- profiles ----------------------------------------------------------------------------------
    def apply_profile(self, ev: Ev, profile: ChargingProfile, *, fraction: float, now: datetime) -> None:
        """The charge point applies a profile (limits x `fraction`; 1.0 = as asked)."""
        self._accrue(ev, now)
        ev.requested_profile = profile
        ev.profile = scaled_profile(profile, fraction)
        ev.applied_fraction = fraction
        self._update_power(ev, now)

    def clear_profile(self, ev: Ev, now: datetime) -> bool:
        """The charge point drops the profile; returns whether there was one."""
        had = ev.profile is not None
        self._accrue(ev, now)
        ev.profile = ev.requested_profile = None
        ev.applied_fraction = 1.0
        self._update_power(ev, now)
        return had

    def active_profile(self, ev: Ev, now: datetime, duration_s: int) -> ActiveChargingProfile:
        """The ActiveChargingProfile the charge point computes now for `duration_s` seconds.

        mod_charging_profiles: `start_date_time` is the calculation time and periods are relative
        to it; "If there is no longer any charging profile active, the ActiveChargingProfile SHALL
        reflect this by showing the maximum charging capacity of the EVSE." Limits are the applied
        profile's, capped by the EVSE maximum, in the profile's unit (A for AC, W for DC without one).
        """
        evse = self.evse_of(ev)
        calc = whole_second(now)
        end = calc + timedelta(seconds=duration_s)
        profile = ev.profile
        unit = (
            profile.charging_rate_unit
            if profile
            else (ChargingRateUnit.W if evse.is_dc else ChargingRateUnit.A)
        )
        evse_max = evse.max_in(unit)
        instants = [calc]
        if profile is not None:
            instants += [b for b in profile_breakpoints(profile, ev.plugged_at) if calc < b < end]
        periods: list[ChargingProfilePeriod] = []
        for instant in instants:
            limit = profile_limit_at(profile, instant, ev.plugged_at) if profile else None
            value = floor1(evse_max if limit is None else min(limit, evse_max))
            start_period = math.ceil((instant - calc).total_seconds())
            if periods and periods[-1].limit == value:
                continue  # equal neighbours merge
            if periods and start_period <= periods[-1].start_period:
                periods[-1] = ChargingProfilePeriod(start_period=periods[-1].start_period, limit=value)
                continue
            periods.append(ChargingProfilePeriod(start_period=start_period, limit=value))
        rate = profile.min_charging_rate if profile is not None else None
        return ActiveChargingProfile(
            start_date_time=calc,
            charging_profile=ChargingProfile(
                start_date_time=calc,
                duration=duration_s,
                charging_rate_unit=unit,
                min_charging_rate=rate,
                charging_profile_period=periods,
            ),
        )

    # -- physics -----------------------------------------------------------------------------------
    def limit_w_at(self, ev: Ev, t: datetime) -> tuple[float | None, bool]:
        """The applied profile's limit in W at `t` (None: no limit) and whether it stops the EV.

        A limit below a known minimum rate (the profile's non-zero `min_charging_rate`, or the
        vehicle's `min_a` on AC) stops charging: the EV cannot charge that slowly (IEC 61851-1: about 6 A).
        """
        if ev.profile is None:
            return None, False
        limit = profile_limit_at(ev.profile, t, ev.plugged_at)
        if limit is None:
            return None, False
        evse = self.evse_of(ev)
        unit = ev.profile.charging_rate_unit
        limit_w = evse.to_w(limit, unit, ev.phases)
        rate = ev.profile.min_charging_rate
        if limit <= 0 or (rate and limit < rate):
            return limit_w, True
        if ev.min_a and not evse.is_dc:
            per_phase_a = (
                limit
                if unit == ChargingRateUnit.A
                else limit / (evse.max_voltage * min(ev.phases, evse.phases))
            )
            if per_phase_a < ev.min_a:
                return limit_w, True
        return limit_w, False

    def _update_power(self, ev: Ev, now: datetime) -> None:
        """Set the power the EV draws from `now` on: min(limit, vehicle maximum, EVSE maximum)."""
        evse = self.evse_of(ev)
        limit_w, stopped = self.limit_w_at(ev, now)
        ev.limit_w = limit_w
        remaining_wh = (ev.energy_need_kwh - ev.kwh) * 1000
        if stopped or remaining_wh <= FULL_EPSILON_WH:
            ev.power_w = 0.0
            return
        power = min(ev.max_w, evse.max_w(ev.phases))
        if limit_w is not None:
            power = min(power, limit_w)
        # Taper in the last tick so the battery ends exactly full instead of overshooting.
        power = min(power, remaining_wh * 3600 / self.settings.tick_s)
        ev.power_w = max(power, 0.0)

    def _accrue(self, ev: Ev, now: datetime) -> None:
        """Add the energy drawn since the last accounting: power x elapsed time, capped at the need."""
        if ev.accounted_at is None:
            ev.accounted_at = now
            return
        dt = (now - ev.accounted_at).total_seconds()
        ev.accounted_at = now
        if dt <= 0 or ev.power_w <= 0:
            return
        wh = min(ev.power_w * dt / 3600, max((ev.energy_need_kwh - ev.kwh) * 1000, 0.0))
        ev.kwh += wh / 1000
        self.sites[ev.location_id].meter.energy_wh += wh

    def _close_period(self, ev: Ev, now: datetime) -> ChargingPeriod | None:
        """End the running ChargingPeriod at `now` (ENERGY kWh and average POWER kW) and start the next."""
        start = ev.period_start or now
        seconds = (now - start).total_seconds()
        energy = ev.kwh - ev.period_start_kwh
        ev.period_start, ev.period_start_kwh = now, ev.kwh
        if seconds < 1 and energy <= 0:
            return None
        period = ChargingPeriod(
            start_date_time=whole_second(start),
            dimensions=[
                CdrDimension(type="ENERGY", volume=round(energy, 4)),
                CdrDimension(
                    type="POWER", volume=round(energy / (seconds / 3600) if seconds > 0 else 0.0, 4)
                ),
            ],
        )
        ev.periods.append(period)
        return period

    # -- one tick ----------------------------------------------------------------------------------
    def step(self, now: datetime) -> list[Event]:
        """Advance to `now`: energy flows, EVs leave and arrive, power follows the limits, meters sample."""
        events: list[Event] = []
        for ev in self.active_evs():
            self._accrue(ev, now)
        for ev in self.active_evs():
            if ev.departure_at <= now:
                events += self.unplug(ev.session_id, now)[1]
        if self.settings.arrivals and self.settings.arrival_rate_scale > 0:
            events += self._arrivals(now)
        for ev in self.active_evs():
            self._update_power(ev, now)
        t = now.timestamp()
        loads = {site_id: 0.0 for site_id in self.sites}
        for ev in self.active_evs():
            loads[ev.location_id] += ev.power_w
        for site_id, load in loads.items():
            self.sites[site_id].meter.record(t, load)
        if (now - self.last_session_update).total_seconds() >= self.settings.session_update_s:
            self.last_session_update = now
            events += self._session_updates(now)
        self.last_tick = now
        return events

    def _session_updates(self, now: datetime) -> list[Event]:
        """One new ChargingPeriod per active session, as a PATCH (mod_sessions: PATCH appends periods)."""
        events: list[Event] = []
        stamp = whole_second(now)
        for ev in self.active_evs():
            period = self._close_period(ev, now)
            ev.last_updated = stamp
            patch = SessionPatch(
                last_updated=stamp, kwh=round(ev.kwh, 4), charging_periods=[period] if period else []
            )
            events.append(SessionChanged(ev.session_id, patch, final=False))
        return events

    def _arrivals(self, now: datetime) -> list[Event]:
        """Random arrivals at free EVSEs (README "Traffic"); an EV finding its EVSE busy goes elsewhere."""
        dt = max((now - self.last_tick).total_seconds(), 0.0)
        if dt <= 0:
            return []
        events: list[Event] = []
        for site in self.sites.values():
            for evse in site.evses.values():
                if evse.session_id is not None or evse.status != EvseStatus.AVAILABLE:
                    continue
                pattern_kind = "dc" if evse.is_dc else site.config.kind
                chance = arrival_probability(
                    pattern_kind, now, site.config.time_zone, dt, self.settings.arrival_rate_scale
                )
                if self.rng.random() >= chance:
                    continue
                drawn: EvProfile = draw_ev(self.rng, pattern_kind, now, site.config.time_zone, evse.is_dc)
                events += self.plug_in(
                    site.id,
                    evse.uid,
                    energy_kwh=drawn.energy_kwh,
                    max_w=drawn.max_w,
                    departure_at=now + timedelta(seconds=drawn.dwell_s),
                    now=now,
                    min_a=drawn.min_a,
                    phases=drawn.phases,
                    origin="random",
                )[1]
        return events
