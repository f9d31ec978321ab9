"""What an EV shows of itself: the profiles in force over time and the vehicle maximum learned from metering."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfileResultType
from ocpi221.sessions import Session
from profiles import ElectricalFacts, w_per_unit
from profiles.timeline import profile_steps, value_at
from scsp.records.commands import Command, CommandKind

# An EV that draws less than this fraction of the limit in force is limited by itself (its on-board
# charger, its battery), not by us.
VEHICLE_LIMITED_RATIO = 0.85
# Its learned maximum is the most it drew so limited, plus this margin for meter noise and averaging.
VEHICLE_CAP_MARGIN = 1.10
# Charging periods needed before we trust what an EV showed.
VEHICLE_CAP_PERIODS = 2
# How far back (s) from its newest charging period a vehicle's behaviour counts. Once planned at its
# learned maximum the vehicle draws near the limit and shows nothing new; the memory keeps the
# maximum from flipping back to the EVSE's at the next cycle (a profile every cycle), and its end
# lets a vehicle that can take more (a warmer battery) show it half an hour later.
VEHICLE_CAP_MEMORY_S = 1800
# Set and clear requests of a session read to place its periods under the profile then in force.
PROFILE_HISTORY = 50


class InForce(NamedTuple):
    """A stretch of time in which we know which of our profiles the charge point applied."""

    start_ts: float
    end_ts: float
    profile: ChargingProfile | None  # None: no profile of ours (before the first, after a clear)


def profiles_in_force(commands: Sequence[Command], *, complete: bool = True) -> list[InForce]:
    """When each profile we sent was surely in force, from the session's set and clear requests.

    A profile is surely in force from its accepted result until the next request was sent (that one
    may apply from the moment it leaves); before the first request no profile of ours applies, when
    `commands` is the `complete` history. The time between a request and its result is nobody's:
    the charge point may apply it at any moment.
    """
    ordered = sorted(commands, key=lambda c: c.created_at)
    sent = [c.created_at.timestamp() for c in ordered]
    stretches = [InForce(-math.inf, sent[0] if sent else math.inf, None)] if complete else []
    for i, command in enumerate(ordered):
        if command.result != ChargingProfileResultType.ACCEPTED or command.result_at is None:
            continue
        until = sent[i + 1] if i + 1 < len(sent) else math.inf
        if command.result_at.timestamp() < until:
            profile = command.profile if command.kind == CommandKind.SET else None
            stretches.append(InForce(command.result_at.timestamp(), until, profile))
    return stretches


def vehicle_cap_w(session: Session, in_force: Sequence[InForce], facts: ElectricalFacts) -> float | None:
    """The most this vehicle seems to take (W), learned from its metered charging periods; None if unknown.

    OCPI tells us the EVSE's maximum, not the vehicle's. An 11 kW car on a 22 kW EVSE would keep
    11 kW of the site's capacity unused if planned at 22 kW. Charging periods (POWER / MAX_POWER
    dimensions, kW) of the last `VEHICLE_CAP_MEMORY_S` that lie wholly within a stretch of
    `in_force`, in which the car drew clearly below the lowest limit in force (or with no limit of
    ours at all), show its own maximum.
    """
    periods = sorted(session.charging_periods or [], key=lambda p: p.start_date_time)
    if not periods:
        return None
    recent_ts = periods[-1].start_date_time.timestamp() - VEHICLE_CAP_MEMORY_S
    limited: list[float] = []
    for i, period in enumerate(periods):
        # mod_sessions ChargingPeriod: "A period ends when the next period starts"; the last one runs
        # at least until the session's last update.
        start_ts = period.start_date_time.timestamp()
        end_ts = (periods[i + 1].start_date_time.timestamp() if i + 1 < len(periods)
                  else max(start_ts, session.last_updated.timestamp()))
        drawn = [d.volume * 1000.0 for d in period.dimensions if d.type in ("POWER", "MAX_POWER")]
        if start_ts < recent_ts or not drawn or max(drawn) <= 0:
            continue
        # Whole seconds on both sides: a period must start after the second its profile was accepted.
        stretch = next((f for f in in_force if f.start_ts < start_ts and end_ts <= f.end_ts), None)
        if stretch is None:
            continue  # it straddles a change of profile: its average says nothing of the vehicle
        limit_w = _lowest_limit_w(stretch.profile, start_ts, end_ts, facts)
        # POWER is the period's average: compared with the lowest limit over the whole period, a
        # limit that fell mid-period (a slot boundary) does not pass for the vehicle's own maximum.
        if limit_w is None or max(drawn) < VEHICLE_LIMITED_RATIO * limit_w:
            limited.append(max(drawn))
    if len(limited) < VEHICLE_CAP_PERIODS:
        return None
    return max(limited) * VEHICLE_CAP_MARGIN


def _lowest_limit_w(profile: ChargingProfile | None, start_ts: float, end_ts: float,
                    facts: ElectricalFacts) -> float | None:
    """The lowest limit (W) a profile sets over [start_ts, end_ts); None where it sets none."""
    if profile is None or profile.start_date_time is None:
        return None
    anchor = profile.start_date_time.timestamp()
    steps = profile_steps(profile, anchor=profile.start_date_time, ref=profile.start_date_time)
    if steps is None:
        return None
    start, end = start_ts - anchor, end_ts - anchor
    limits = value_at(steps, [start, *(float(t) for t in steps.starts if start < t < end)])
    if np.isnan(limits).all():
        return None
    return float(np.nanmin(limits)) * w_per_unit(profile.charging_rate_unit, facts)

