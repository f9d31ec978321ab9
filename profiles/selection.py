"""Which new profiles of a site to send: enough to keep the site safe, no more (no needless switching).

Each session's charge point holds a profile (the last one accepted, or one we sent whose outcome is
not known yet); the new plan gives it a new one. Sending every small change would re-send most
profiles every cycle (plans shift a little as energy flows), and CPOs answer TOO_OFTEN. Sending only
changes larger than a threshold is not safe on its own: a small decrease left unsent while another
session's increase goes out can add up above the site limit.

So, per site:
1. a session is *wanted* when it has no profile yet, its unit changes, a re-send is due (the failsafe
   tail comes near), its failsafe tail goes down, or, within the look-ahead (the next planning
   cycles), its limit moves by more than `material_a` / `material_w` (or `MATERIAL_RATIO` of its
   maximum, whichever is larger) for longer than `material_s`. Changes further ahead wait: every
   cycle re-plans, and the check below covers the whole horizon;
2. the site is then checked as it would be after the dispatch: wanted sessions at their new
   profiles, the others at what they hold. Wherever that sum exceeds the plan's limit minus the fixed
   load, the unsent session that gives back most at that moment is added, until it fits;
3. if it still does not fit (a decrease that cannot go now: a request in flight, a backoff), the
   increases that cause it are held back for a later cycle.
Limits are compared in W: A x voltage x phases for AC (the profile builder's conversion), W for DC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import msgspec
import numpy as np
import numpy.typing as npt

from ocpi221.chargingprofiles import ChargingProfile, ChargingRateUnit
from profiles import ProfileSettings
from profiles.timeline import profile_steps, value_at

FloatArray = npt.NDArray[np.float64]

# Watts by which a site's sum may exceed its limit before it counts (float noise of A -> W conversion).
SITE_TOLERANCE_W = 1.0
# Limits closer than this (W) are equal.
EQUAL_W = 1.0
# A change smaller than this fraction of the session's maximum is not worth a request (dimensionless):
# 500 W is material on an 11 kW AC point, not on a 150 kW DC charger, whose plan moves by kilowatts
# every cycle as energy flows.
MATERIAL_RATIO = 0.05


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    """One controllable session of a site, as the selection sees it."""

    new: ChargingProfile
    # Profiles the charge point may be applying now (accepted, or sent without a known outcome).
    held: tuple[ChargingProfile, ...]
    # W per unit of the profiles' limits (A -> W for AC, 1 for W).
    w_per_a: float
    max_w: float
    resend: bool = False
    blocked: bool = False


class SendReason(StrEnum):
    """Why a profile is sent (the value is what people read in the commands log)."""

    FIRST = "first profile of the session"
    UNIT = "charging rate unit changed"
    RESEND = "re-send due: the failsafe tail comes near"
    INCREASE = "plan raises the limit materially"
    DECREASE = "plan lowers the limit materially"
    TAIL = "failsafe tail goes down"
    SITE = "site limit: others' changes need this one"


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    """What to do with one candidate."""

    send: bool
    # The new profile's first change from what is held is a decrease (it goes in the first batch of
    # a dispatch, before any increase): lower now and higher later lowers; higher now and lower later
    # does not, since its increase would take effect at once beside the site's other decreases.
    lowers: bool
    held_back: bool = False  # wanted, but its increase would take the site over while a decrease waits
    reason: SendReason | None = None  # why it is wanted (None: not wanted)


def _allowed_w(profile: ChargingProfile, times: FloatArray, now: datetime, w_per_a: float, max_w: float
               ) -> FloatArray:
    """What a profile lets the session draw at each time (s from now), in W; the maximum where it says nothing."""
    if profile.start_date_time is None:
        return np.full(times.shape, max_w)
    steps = profile_steps(profile, anchor=profile.start_date_time, ref=now)
    if steps is None:
        return np.full(times.shape, max_w)
    per_unit = 1.0 if profile.charging_rate_unit == ChargingRateUnit.W else w_per_a
    values = value_at(steps, times) * per_unit
    return np.minimum(np.where(np.isnan(values), max_w, values), max_w)


def _starts(profile: ChargingProfile, now: datetime) -> list[float]:
    if profile.start_date_time is None:
        return []
    steps = profile_steps(profile, anchor=profile.start_date_time, ref=now)
    return [] if steps is None else [float(t) for t in steps.starts]


def select(candidates: list[Candidate], *, limit_w: list[float], fixed_w: list[float], start: datetime,
           slot_s: int, now: datetime, settings: ProfileSettings, lookahead_s: float) -> list[Choice]:
    """Decide, for every candidate of one site, whether to send its new profile now (module docstring)."""
    if not candidates:
        return []
    offset = (now - start).total_seconds()
    end = len(limit_w) * slot_s - offset
    points = {0.0}
    points.update(k * slot_s - offset for k in range(len(limit_w)) if k * slot_s - offset > 0)
    for c in candidates:
        for profile in (c.new, *c.held):
            points.update(t for t in _starts(profile, now) if 0.0 <= t)
    times = np.array(sorted(points), dtype=np.float64)
    # Durations of the segments [times[k], times[k+1]); the last one lasts to the end of the plan (or 1 s).
    durations = np.diff(np.append(times, max(end, float(times[-1]) + 1.0)))
    inside = times < end
    slot = np.clip(((times + offset) // slot_s).astype(np.int64), 0, len(limit_w) - 1)
    cap = np.asarray(limit_w)[slot] - np.asarray(fixed_w)[slot]

    new = np.array([_allowed_w(c.new, times, now, c.w_per_a, c.max_w) for c in candidates])
    held = np.array([
        np.max([_allowed_w(p, times, now, c.w_per_a, c.max_w) for p in c.held], axis=0) if c.held
        else np.full(times.shape, c.max_w)
        for c in candidates])
    diff = new - held

    wanted = np.zeros(len(candidates), dtype=bool)
    reasons: list[SendReason | None] = [None] * len(candidates)
    for i, c in enumerate(candidates):
        if not c.held or c.resend or any(p.charging_rate_unit != c.new.charging_rate_unit for p in c.held):
            wanted[i] = True
            reasons[i] = SendReason.FIRST if not c.held else SendReason.RESEND if c.resend else SendReason.UNIT
            continue
        step_w = max(settings.material_w if c.new.charging_rate_unit == ChargingRateUnit.W
                     else settings.material_a * c.w_per_a, MATERIAL_RATIO * c.max_w)
        near = times < lookahead_s
        up = float(np.sum(durations[near & (diff[i] > step_w)]))
        down = float(np.sum(durations[near & (diff[i] < -step_w)]))
        # On short slots a change may never last `material_s` (the rest of the current slot is all a
        # small remaining need gets): half a slot is long enough to be worth a request.
        lasting = min(float(settings.material_s), slot_s / 2)
        # The open-ended tail is what the charge point keeps if we vanish: never leave it higher.
        tail_down = bool(diff[i, -1] < -EQUAL_W)
        wanted[i] = up > lasting or down > lasting or tail_down
        if down > lasting:
            reasons[i] = SendReason.DECREASE
        elif up > lasting:
            reasons[i] = SendReason.INCREASE
        elif tail_down:
            reasons[i] = SendReason.TAIL
    blocked = np.array([c.blocked for c in candidates])
    send = wanted & ~blocked

    def excess() -> FloatArray:
        total = np.where(send[:, None], new, held).sum(axis=0)
        return np.where(inside, total - cap, -np.inf)

    held_back = np.zeros(len(candidates), dtype=bool)
    for _ in range(2 * len(candidates)):
        over = excess()
        worst = int(np.argmax(over))
        if over[worst] <= SITE_TOLERANCE_W:
            break
        # Who gives back most at the worst moment, among those we can still send?
        gain = np.where(~send & ~blocked, held[:, worst] - new[:, worst], -np.inf)
        best = int(np.argmax(gain))
        if gain[best] > EQUAL_W:
            send[best] = True
            reasons[best] = reasons[best] or SendReason.SITE
            continue
        # Nothing left to lower there: hold back the largest increase at that moment.
        rise = np.where(send, new[:, worst] - held[:, worst], -np.inf)
        best = int(np.argmax(rise))
        if rise[best] <= EQUAL_W:
            break
        send[best] = False
        held_back[best] = True
    changed = np.abs(diff) > EQUAL_W
    first = np.argmax(changed, axis=1)  # the first moment each profile differs from what is held
    lowers = changed.any(axis=1) & (diff[np.arange(len(candidates)), first] < 0)
    return [Choice(send=bool(send[i]), lowers=bool(lowers[i] or not candidates[i].held),
                   held_back=bool(held_back[i]), reason=reasons[i] if send[i] or held_back[i] else None)
            for i in range(len(candidates))]
