"""Gather: everything one site's plan depends on, read from the store (DESIGN.md "The planning cycle", step 1)."""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
import numpy as np

import optimizer
from ocpi221.chargingprofiles import ChargingProfile
from ocpi221.locations import PowerType
from profiles import ElectricalFacts, w_per_unit
from profiles.model import phase_count
from profiles.timeline import profile_steps, value_at
from scsp.config import Config, PlanningConfig
from scsp.faults import PlanningStage
from scsp.planning import evidence
from scsp.planning.vehicle import PROFILE_HISTORY, profiles_in_force, vehicle_cap_w
from scsp.records.commands import CommandKind, NotSteered, SessionControl
from scsp.records.grid import ArrivalReserve, SignalKind, SignalPoint, SiteSettings
from scsp.records.parties import Party, PartyStatus, SyncState
from scsp.records.plans import StoredPlan
from scsp.records.sessions import EPOCH, PLANNED_STATUSES, EvseFacts, SessionKey, StoredSession, site_id
from scsp.store import Store

log = logging.getLogger("scsp.planner")


class PlannedSession(msgspec.Struct, frozen=True, kw_only=True):
    """A session as the planner sees it: identity, facts, whether we control it, its demand."""

    key: SessionKey
    evse_uid: str
    facts: ElectricalFacts
    max_w: float
    # The EVSE's own maximum (W): what a charge point may let the session draw whatever the vehicle
    # seemed to take. `max_w` is at most this, lower once the vehicle's maximum is learned.
    evse_max_w: float
    controllable: bool
    # Why not controllable (EVSE not capable, CPO refused, party unreachable), for the plan's detail.
    reason: NotSteered | None
    departure_slot: int
    need_kwh: float
    min_w: float
    profile_type: str
    # The phase a single-phase AC EVSE is wired to (site settings; L1 unless said).
    phase: optimizer.Phase
    # What the site's previous plan gave this session on this plan's grid (W per slot), if anything.
    previous_w: list[float] | None = None
    # For sessions we cannot steer: the power they may draw per slot (W), planned as fixed load.
    fixed_w: list[float] | None = None


class SiteInput(msgspec.Struct, frozen=True, kw_only=True):
    """Everything gathered for one site: the optimizer problem and how to map its result back."""

    site_id: str
    start: datetime
    slot_s: int
    n_slots: int
    limit_w: list[float]
    fixed_load_w: list[float]
    failsafe_w: float
    voltage_v: float
    phase_limit_a: float | None
    price: list[float] | None
    carbon: list[float] | None
    sessions: list[PlannedSession]
    # Kept free for EVs that arrive before their first profile (W, every slot): the optimizer plans
    # within the limit minus this.
    reserve_w: float = 0.0


def slot_grid(config: Config, now: datetime) -> tuple[datetime, int, int]:
    """Start, slot length (s) and slot count of the planning horizon.

    The grid is aligned to whole slots of UTC time (12:00, 12:15, ...), so the plans of consecutive
    cycles line up and an unchanged plan yields the same profile (not re-sent). The current slot has
    partly elapsed: its energy is counted as if the whole slot remained, which the next cycle corrects
    from the metered energy; limits are power, so the grid limit is unaffected.
    """
    slot_s = int(config.planning.slot_minutes * 60)
    now_ts = int(now.timestamp())
    start_ts = now_ts - now_ts % slot_s
    horizon_s = config.planning.horizon_h * 3600 + (now_ts - start_ts)
    n_slots = max(1, math.ceil(horizon_s / slot_s))
    return datetime.fromtimestamp(start_ts, UTC), slot_s, n_slots


def default_facts(config: Config) -> EvseFacts:
    """Facts assumed for an EVSE whose Location we do not know (config `[defaults]`)."""
    d = config.defaults
    power_type = {1: PowerType.AC_1_PHASE, 2: PowerType.AC_2_PHASE, 3: PowerType.AC_3_PHASE}[d.phases]
    return EvseFacts(party=0, country_code="", party_id="", location_id="", uid="", status="UNKNOWN", capable=True,
                     power_type=power_type, phases=d.phases, voltage_v=d.voltage_v, max_amperage_a=d.max_amperage_a,
                     max_power_w=d.voltage_v * d.max_amperage_a * d.phases)


def electrical_facts(evse: EvseFacts, min_current_a: float = 0.0) -> ElectricalFacts:
    """The profile builder's view of an EVSE (with the AC minimum current, when one is configured)."""
    dc = evse.power_type == PowerType.DC
    return ElectricalFacts(phases=phase_count(PowerType(evse.power_type)), dc=dc, voltage_v=evse.voltage_v,
                           max_amperage_a=evse.max_amperage_a, max_electric_power_w=evse.max_power_w,
                           min_current_a=min_current_a if not dc and min_current_a > 0 else None)


def resample(points: Sequence[SignalPoint], start: datetime, slot_s: int, n_slots: int, *, how: str
             ) -> list[float | None]:
    """A signal on the slot grid: `min` over overlapping points (limits: never raised), or the time-weighted
    mean of the most recently submitted source (prices, carbon). None where nothing covers the slot."""
    out: list[float | None] = []
    start_ts = start.timestamp()
    spans = [(p.start.timestamp(), p.end.timestamp()) for p in points]
    for k in range(n_slots):
        lo, hi = start_ts + k * slot_s, start_ts + (k + 1) * slot_s
        covering = [(p, a, b) for p, (a, b) in zip(points, spans, strict=True) if a < hi and b > lo]
        if not covering:
            out.append(None)
        elif how == "min":
            out.append(min(p.value for p, _, _ in covering))
        else:
            newest = max(p.submitted_at for p, _, _ in covering)
            chosen = [(p, a, b) for p, a, b in covering if p.submitted_at == newest]
            weights = [min(hi, b) - max(lo, a) for _, a, b in chosen]
            out.append(sum(w * p.value for w, (p, _, _) in zip(weights, chosen, strict=True)) / sum(weights))
    return out


def _fill(values: list[float | None]) -> list[float] | None:
    """Fill uncovered slots with the mean of the covered ones (a neutral value); None if none covered."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    mean = sum(known) / len(known)
    return [mean if v is None else v for v in values]


def profile_power_w(profile: ChargingProfile, facts: ElectricalFacts, *, start: datetime, slot_s: int,
                    n_slots: int, otherwise_w: float) -> list[float]:
    """The most a profile lets a session draw in each slot (W); `otherwise_w` where it does not apply."""
    anchor = profile.start_date_time
    steps = profile_steps(profile, anchor=anchor, ref=start) if anchor is not None else None
    if steps is None:
        return [otherwise_w] * n_slots
    per_unit = w_per_unit(profile.charging_rate_unit, facts)
    out = []
    for k in range(n_slots):
        lo, hi = k * slot_s, (k + 1) * slot_s
        times = np.concatenate(([lo], steps.starts[(steps.starts > lo) & (steps.starts < hi)]))
        values = value_at(steps, times)
        values = np.where(np.isnan(values), otherwise_w / per_unit, values)
        out.append(min(otherwise_w, float(values.max()) * per_unit))
    return out


def gather(store: Store, config: Config, now: datetime, *, only: set[str] | None = None) -> list[SiteInput]:
    """Collect every site with planned sessions (or only the sites in `only`).

    A site whose gathering fails is logged, counted (`store.faults`) and left out; the others are not.
    """
    start, slot_s, n_slots = slot_grid(config, now)
    stale_before = now - timedelta(hours=config.planning.stale_session_h)
    stored, _ = store.sessions.find(statuses=tuple(PLANNED_STATUSES), updated_from=stale_before)
    by_site: dict[str, list[StoredSession]] = defaultdict(list)
    for row in stored:
        by_site[row.site].append(row)
    if only is not None:
        for name in only:
            by_site.setdefault(name, [])
    parties = {p.id: p for p in store.parties.all()}
    states = {p: store.sync.state(p) for p in parties}
    controls = store.commands.all_control()
    offline = store.sync.offline_parties()
    known = store.plans.site_ids()
    owners = store.sessions.site_owners()
    sites = []
    for name, rows in sorted(by_site.items()):
        if (only is not None and name not in only) or name not in known:
            continue
        try:
            rows = _owners_rows(name, rows, owners.get(name), parties)
            sites.append(_gather_site(store, config, name, rows, parties, states, controls, offline, start=start,
                                      slot_s=slot_s, n_slots=n_slots, now=now))
        except Exception as exc:  # noqa: BLE001 - one site's bad data never stops the others
            # Left out of this pass: the site keeps its previous plan and the profiles in force.
            store.faults.site_failed(name, PlanningStage.GATHER, exc)
    return sites


def _owners_rows(name: str, rows: list[StoredSession], owner: int | None, parties: dict[int, Party]
                 ) -> list[StoredSession]:
    """The site's sessions that came through its owner (or an unregistered connection it succeeded).

    Two live connections never meet inside one site: the store refuses the second one's writes, and
    rows stored before that rule are left out of the plan here.
    """
    if owner is None:
        return rows
    kept = []
    for row in rows:
        party = parties.get(row.party)
        if row.party == owner or party is None or party.status == PartyStatus.UNREGISTERED:
            kept.append(row)
        else:
            log.warning("a session of another connection at this site is not planned",
                        extra={"site": name, "session": str(row.key)})
    return kept


def _reachable(party: Party | None, row: StoredSession, offline: set[tuple[int, str, str]]) -> bool:
    """We can send to this session's CPO: registered and not reported offline by a Hub."""
    if party is None or not party.reachable:
        return False
    s = row.session
    return (party.id, s.country_code.upper(), s.party_id.upper()) not in offline


def _gather_site(store: Store, config: Config, name: str, rows: list[StoredSession], parties: dict[int, Party],
                 states: dict[int, SyncState], controls: dict[SessionKey, SessionControl],
                 offline: set[tuple[int, str, str]], *, start: datetime, slot_s: int, n_slots: int,
                 now: datetime) -> SiteInput:
    end = start + timedelta(seconds=slot_s * n_slots)
    settings = store.grid.settings(name)
    grid_w = (settings.import_limit_w if settings and settings.import_limit_w is not None
              else config.defaults.site_limit_w)
    limits = resample(store.grid.signals(name, SignalKind.IMPORT_LIMIT, start=start, end=end, now=now),
                      start, slot_s, n_slots, how="min")
    # DESIGN.md: the limit at t is the minimum of the grid connection and every valid import_limit signal.
    limit_w = [grid_w if v is None else min(grid_w, v) for v in limits]
    price = _fill(resample(store.grid.signals(name, SignalKind.PRICE, start=start, end=end, now=now),
                           start, slot_s, n_slots, how="newest"))
    carbon = _fill(resample(store.grid.signals(name, SignalKind.CARBON, start=start, end=end, now=now),
                            start, slot_s, n_slots, how="newest"))
    voltage_v = settings.voltage_v if settings and settings.voltage_v else config.defaults.voltage_v
    failsafe_w = (settings.failsafe_w if settings and settings.failsafe_w is not None
                  else config.defaults.failsafe_fraction * grid_w)
    # EVSE uids are CiStrings: the assignment is looked up without case.
    phases = {uid.upper(): phase for uid, phase in (settings.phase_assignment if settings else {}).items()}
    # One query per location of the site (normally one), whether or not its EVSEs are known.
    evses: dict[tuple[int, str, str, str], EvseFacts] = {
        (f.party, f.country_code, f.party_id, f.uid.upper()): f
        for location_id in {row.session.location_id for row in rows}
        for f in store.sessions.evses(location_id=location_id)
        # Only this site's: another CPO's location may carry the same id.
        if site_id(f.country_code, f.party_id, f.location_id) == name}
    # The EVSE's newest facts whatever connection reported them (an old registration's included).
    by_uid: dict[tuple[str, str], EvseFacts] = {}
    for f in evses.values():
        uid = (f.location_id.upper(), f.uid.upper())
        held = by_uid.get(uid)
        if held is None or (f.last_updated or EPOCH) >= (held.last_updated or EPOCH):
            by_uid[uid] = f
    fallback = default_facts(config)
    previous = _previous_power(store.plans.latest(name), start, slot_s, n_slots)
    planned: list[PlannedSession] = []
    fixed_load = np.zeros(n_slots)
    plan_cfg = config.planning
    current = [r for r in evidence.newest_per_evse(rows)
               if not evidence.ended_by_cpo(r, controls.get(r.key))
               and not evidence.ended_by_evse(r, by_uid.get((r.session.location_id.upper(),
                                                             r.session.evse_uid.upper())))]
    for row in sorted(current, key=lambda r: (r.session.start_date_time, r.session.id)):
        s = row.session
        key = row.key
        party = parties.get(row.party)
        lost_at = evidence.connection_lost_at(party, states.get(row.party))
        if party is None:
            lost_at = row.received_at
        if lost_at is not None and evidence.orphan_expired(lost_at, row, now, plan_cfg.orphan_session_h):
            continue
        evse = evses.get((row.party, key.country_code, key.party_id, s.evse_uid.upper()), fallback)
        facts = electrical_facts(evse, config.planning.min_current_a)
        control = controls.get(key)
        prefs = store.grid.preferences(key.country_code, key.party_id, s.id)
        departure = (prefs.departure if prefs and prefs.departure
                     else s.start_date_time + timedelta(hours=config.planning.default_departure_h))
        departure_slot = max(1, math.ceil((departure - start).total_seconds() / slot_s))
        need = (prefs.energy_kwh if prefs and prefs.energy_kwh is not None else config.planning.default_energy_kwh)
        reason: NotSteered | None = None
        if evse is not fallback and not evse.capable:
            reason = NotSteered.EVSE_NOT_CAPABLE
        elif control is not None and not control.controllable:
            reason = control.reason or NotSteered.CPO_REFUSED
        elif party is None or party.status != PartyStatus.REGISTERED or (
                row.party in states and states[row.party].refused_since is not None):
            reason = NotSteered.CPO_GONE
        elif lost_at is not None or not _reachable(party, row, offline):
            reason = NotSteered.CPO_UNREACHABLE
        elif not config.planning.dispatch:
            reason = NotSteered.DISPATCH_DISABLED
        max_w = evse.max_power_w
        if reason is None:
            # Only for sessions we steer: one we cannot stays fixed load at the EVSE's maximum, since
            # nothing we send keeps it below what it showed so far.
            history = store.commands.find(key=key, kinds=(CommandKind.SET, CommandKind.CLEAR), limit=PROFILE_HISTORY)
            learned = vehicle_cap_w(s, profiles_in_force(history, complete=len(history) < PROFILE_HISTORY), facts)
            if learned is not None:
                max_w = min(max_w, learned)
        min_w = 0.0
        if evse.power_type != PowerType.DC and config.planning.min_current_a > 0:
            min_w = min(max_w, config.planning.min_current_a * facts.w_per_a)
        need_kwh = max(0.0, need - max(0.0, s.kwh))
        if 0 < need_kwh < min_w * slot_s / 3.6e6:
            # A last bit of energy smaller than one slot at the minimum rate could never be planned
            # (power is 0 or >= the minimum for a whole slot); a profile is a maximum, not a target,
            # and the vehicle stops by itself when full, so plan one slot at the minimum rate.
            need_kwh = min_w * slot_s / 3.6e6
        accepted = control.accepted_profile if control is not None else None
        allowed_w = max_w
        if accepted is not None:
            allowed_w = profile_power_w(accepted, facts, start=start, slot_s=slot_s, n_slots=1,
                                        otherwise_w=max_w)[0]
        # Metered evidence: allowed power (by our profile, in force for the whole window, or by no
        # profile of ours at all), yet its energy did not grow: it draws nothing.
        accepted_at = control.accepted_at if control is not None else None
        window_start = now - timedelta(minutes=plan_cfg.idle_session_min)
        is_idle = (allowed_w > 0 and evidence.idle(row, now, plan_cfg.idle_session_min)
                   and (accepted is None or accepted_at is None or accepted_at <= window_start))
        fixed_w: list[float] | None = None
        if reason is not None:
            # Planned as fixed load so the others stay within the limit: at its maximum, or at what its
            # last accepted profile allows when its CPO is out of reach or gone (what the charge point
            # does without us: its profile's failsafe tail included).
            if is_idle:
                fixed_w = [0.0] * n_slots
            elif reason in (NotSteered.CPO_UNREACHABLE, NotSteered.CPO_GONE) and accepted is not None:
                fixed_w = profile_power_w(accepted, facts, start=start, slot_s=slot_s, n_slots=n_slots,
                                          otherwise_w=max_w)
            else:
                fixed_w = [max_w] * n_slots
            fixed_w = [w if k < departure_slot else 0.0 for k, w in enumerate(fixed_w)]
            fixed_load += np.asarray(fixed_w)
        elif is_idle:
            # Steered and idle: held at its minimum rate (AC 6 A), so a vehicle that resumes shows it;
            # the rest of its share goes to the others.
            max_w = min_w
        planned.append(PlannedSession(
            key=key, evse_uid=s.evse_uid, facts=facts, max_w=max_w, evse_max_w=evse.max_power_w,
            controllable=reason is None, reason=reason,
            departure_slot=departure_slot, need_kwh=need_kwh, min_w=min_w,
            profile_type=(prefs.profile_type if prefs else config.planning.default_profile_type),
            phase=_phase(phases.get(s.evse_uid.upper())), fixed_w=fixed_w, previous_w=previous.get(key)))
    busy = {(p.key.party, p.evse_uid.upper()) for p in planned}
    idle_evses = [f for f in evses.values() if f.capable and (f.party, f.uid.upper()) not in busy]
    reserve_w = arrival_reserve_w(settings, plan_cfg, idle_evses)
    return SiteInput(site_id=name, start=start, slot_s=slot_s, n_slots=n_slots, limit_w=limit_w,
                     fixed_load_w=fixed_load.tolist(), failsafe_w=failsafe_w, voltage_v=voltage_v,
                     phase_limit_a=settings.phase_limit_a if settings else None, price=price, carbon=carbon,
                     sessions=planned, reserve_w=reserve_w)


def arrival_reserve_w(settings: SiteSettings | None, planning: PlanningConfig, idle_evses: Sequence[EvseFacts]
                      ) -> float:
    """What a site keeps free for arrivals (W), by its own setting or the configured default.

    OCPI 2.2.1 has no profile for an idle EVSE: a new EV draws its EVSE's maximum until its first
    profile reaches it (the time from the Session push to our SetChargingProfile plus the CPO's
    delivery). `largest_idle_evse` keeps that maximum free for one arrival at a time; `fixed` a
    number of watts; `none` nothing (the site may go over its limit for that time).
    """
    mode = (settings.arrival_reserve if settings and settings.arrival_reserve is not None
            else ArrivalReserve(planning.arrival_reserve))
    if mode == ArrivalReserve.LARGEST_IDLE_EVSE:
        return max((f.max_power_w for f in idle_evses), default=0.0)
    if mode == ArrivalReserve.FIXED:
        fixed = settings.arrival_reserve_w if settings and settings.arrival_reserve_w is not None else None
        return fixed if fixed is not None else planning.arrival_reserve_w
    return 0.0


def _phase(name: str | None) -> optimizer.Phase:
    """The phase a site's settings name for an EVSE; L1 when they name none (or none we know)."""
    try:
        return optimizer.Phase(name or "L1")
    except ValueError:
        return optimizer.Phase.L1


def _previous_power(plan: StoredPlan | None, start: datetime, slot_s: int, n_slots: int
                    ) -> dict[SessionKey, list[float]]:
    """The previous plan's power per session, moved onto the new grid (0 where it did not reach)."""
    shift_s = int((start - plan.start).total_seconds()) if plan is not None else 0
    if plan is None or plan.slot_s != slot_s or shift_s % slot_s:
        return {}
    offset = shift_s // slot_s
    out = {}
    for row in plan.sessions:
        if row.controllable:
            moved = row.power_w[offset:offset + n_slots] if offset >= 0 else []
            out[row.key] = moved + [0.0] * (n_slots - len(moved))
    return out

