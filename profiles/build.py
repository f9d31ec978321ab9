"""Build the OCPI ChargingProfile for one session from its planned power per slot (pure).

The rules, in the order they are applied (README.md of this package has the worked example):

1. Unit: A per phase for AC (`limit = W / (voltage_v * phases)`), W for DC; a party may demand W
   for AC (`ProfileSettings.ac_charging_rate_unit`).
2. Each slot's planned power is clipped to [0, EVSE maximum] and rounded DOWN to one decimal of the
   unit, so a limit never allows more than the plan (the site sum stays within the site plan).
3. Minimum rate: a non-zero limit below the lowest rate the charge point can honour (the IEC 61851
   6 A floor for AC, the vehicle/EVSE minimum when known) is sent as 0. A charge point given such a
   limit either pauses or raises it silently to the minimum, above the plan; 0 is the value it
   will honour. It never rounds up to the minimum: that would allow more than the plan.
4. Failsafe tail: from `failsafe_time` (start + `failsafe_delay_s`, or the horizon end if earlier)
   the last period, without `duration`, holds the session's share of the site failsafe limit.
5. Equal neighbouring periods merge; then, above `max_periods`, neighbours merge into the smaller
   limit, choosing the merges that lose the least energy (`coarsen_periods`). No limit is raised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from ocpi221.types import to_ocpi_datetime
from profiles.model import ElectricalFacts, ProfileSettings

__all__ = [
    "LIMIT_STEP",
    "REL_EPS",
    "build_profile",
    "ceil_to_step",
    "coarsen_periods",
    "failsafe_time",
    "floor_to_step",
    "lost_energy",
    "min_sendable_w",
    "profile_unit",
    "w_per_unit",
]

FloatArray = npt.NDArray[np.float64]

LIMIT_STEP = 0.1
"""Resolution of `limit` and `min_charging_rate` (A or W): "Accepts at most one digit fraction"."""

REL_EPS = 1e-9
"""Relative slack (dimensionless) before flooring/ceiling to `LIMIT_STEP`. W / (V x phases) of a
whole-tenth current may land a few ulps (~1e-16 relative) below it (16.0 A -> 15.999999999999998);
1e-9 absorbs that by seven orders of magnitude and is itself far below one step (0.1 A of 600 A is
1.7e-4). A floored limit exceeds its input by at most this fraction."""


def floor_to_step(values: npt.ArrayLike) -> FloatArray:
    """Round non-negative values down to one decimal, robust to float error just below a step.

    Args:
        values: non-negative numbers in A or W.

    Returns:
        Multiples of 0.1 (each the double nearest `k / 10`), at most `value * (1 + REL_EPS)`.
    """
    tenths = np.floor(np.asarray(values, dtype=np.float64) * 10.0 * (1.0 + REL_EPS))
    return np.asarray(tenths / 10.0, dtype=np.float64)


def ceil_to_step(values: npt.ArrayLike) -> FloatArray:
    """Round non-negative values up to one decimal, robust to float error just above a step.

    Args:
        values: non-negative numbers in A or W.

    Returns:
        Multiples of 0.1, at least `value * (1 - REL_EPS)`.
    """
    tenths = np.ceil(np.asarray(values, dtype=np.float64) * 10.0 * (1.0 - REL_EPS))
    return np.asarray(tenths / 10.0, dtype=np.float64)


def profile_unit(facts: ElectricalFacts, settings: ProfileSettings) -> ChargingRateUnit:
    """Choose the ChargingRateUnit: W for DC, the party's AC unit (A unless overridden) for AC.

    Args:
        facts: the session's electrical facts.
        settings: the party's settings.

    Returns:
        The unit every limit of the session's profile is expressed in.
    """
    return ChargingRateUnit.W if facts.dc else settings.ac_charging_rate_unit


def w_per_unit(unit: ChargingRateUnit, facts: ElectricalFacts) -> float:
    """Watts per unit of limit: 1 for W; `voltage_v * phases` for A (mod_charging_profiles "A").

    Args:
        unit: the profile's unit.
        facts: the session's electrical facts (voltage, phases).

    Returns:
        The factor that turns a limit in `unit` into W.
    """
    return 1.0 if unit is ChargingRateUnit.W else facts.w_per_a


def failsafe_time(start: datetime, *, slot_s: int, n_slots: int, settings: ProfileSettings) -> datetime:
    """When the failsafe tail begins: `start + failsafe_delay_s`, or the horizon end if earlier.

    Args:
        start: the start of the slot grid (the profile's start).
        slot_s: slot length (s).
        n_slots: number of planned slots.
        settings: the party's settings (`failsafe_delay_s`).

    Returns:
        The instant from which a profile built with these arguments holds the failsafe limit.
    """
    return start + timedelta(seconds=min(settings.failsafe_delay_s, n_slots * slot_s))


def _quantise_w(
    power_w: FloatArray, *, unit: ChargingRateUnit, facts: ElectricalFacts, settings: ProfileSettings
) -> FloatArray:
    """Turn powers (W) into sendable limits in `unit`: clip, round down, apply the minimum rule."""
    per = w_per_unit(unit, facts)
    values = np.clip(power_w, 0.0, None) / per
    if facts.max_power_w is not None:
        values = np.minimum(values, facts.max_power_w / per)
    limits = floor_to_step(values)
    floor = _zero_below(unit, facts, settings)
    if floor > 0:
        # Rule 3 (module docstring): never send a non-zero limit the charge point would raise.
        limits = np.where(limits < floor, 0.0, limits)
    return limits


def _zero_below(unit: ChargingRateUnit, facts: ElectricalFacts, settings: ProfileSettings) -> float:
    """The smallest non-zero limit we send, in `unit` (a multiple of 0.1; 0 when there is none)."""
    per = w_per_unit(unit, facts)
    minimums = [] if facts.dc else [settings.ac_floor_a * facts.w_per_a]
    if facts.known_min_power_w is not None:
        minimums.append(facts.known_min_power_w)
    return float(ceil_to_step(max(minimums) / per)) if minimums else 0.0


def min_sendable_w(facts: ElectricalFacts, settings: ProfileSettings) -> float:
    """The smallest non-zero power a limit of this session can carry (W); 0 when there is no minimum.

    A share of power below it becomes a limit of 0 (rule 3 of the module docstring); a share of
    exactly this value survives rounding down as the minimum itself. Callers that split a budget
    (the failsafe shares) give each session either 0 or at least this, so no capacity is spent on
    a limit that is then sent as 0.

    Args:
        facts: the session's electrical facts (phases, voltage, DC, known minimum).
        settings: the party's settings (unit, `ac_floor_a`).

    Returns:
        The minimum rule's threshold in the profile's unit, converted to W.
    """
    unit = profile_unit(facts, settings)
    return _zero_below(unit, facts, settings) * w_per_unit(unit, facts)


def _min_charging_rate(unit: ChargingRateUnit, facts: ElectricalFacts) -> float | None:
    """`min_charging_rate` in `unit`, rounded UP: a minimum stated lower than the truth would invite
    a local algorithm to offer the EV a rate it cannot take."""
    known = facts.known_min_power_w
    return None if known is None else float(ceil_to_step(known / w_per_unit(unit, facts)))


def _merge_equal(starts: list[int], limits: list[float]) -> tuple[list[int], list[float]]:
    """Drop every period whose limit equals the one before it."""
    out_s, out_l = [starts[0]], [limits[0]]
    for start, limit in zip(starts[1:], limits[1:], strict=True):
        if limit != out_l[-1]:
            out_s.append(start)
            out_l.append(limit)
    return out_s, out_l


def lost_energy(
    starts: Sequence[int], limits: Sequence[float], new_starts: Sequence[int], new_limits: Sequence[float]
) -> float:
    """Integral of (old limit - new limit) over time, in limit units x s; inf if the tail dropped.

    Args:
        starts: `start_period` of the original periods (first 0, increasing).
        limits: their limits.
        new_starts: `start_period` of the coarsened periods.
        new_limits: their limits.

    Returns:
        The lost allowance (A x s or W x s), `inf` when the last (open-ended) limit is lower.
    """
    if new_limits[-1] < limits[-1]:
        return math.inf
    points = sorted(set(starts) | set(new_starts))
    old_at = np.asarray(limits)[np.searchsorted(starts, points, side="right") - 1]
    new_at = np.asarray(new_limits)[np.searchsorted(new_starts, points, side="right") - 1]
    return float(np.sum((old_at - new_at)[:-1] * np.diff(points)))


def coarsen_periods(
    starts: Sequence[int], limits: Sequence[float], max_periods: int
) -> tuple[list[int], list[float]]:
    """Merge neighbouring periods into the smaller limit until at most `max_periods` remain.

    The grouping is optimal: among all ways of merging contiguous periods into their minimum it
    loses the least allowance (limit x time, i.e. energy for a fixed unit), by dynamic programming
    over group ends (O(max_periods x n^2), vectorised per end). The last period lasts forever, so
    it is never lowered unless `max_periods == 1` (then the single limit is the minimum of all);
    it may extend backwards over neighbours that are not lower.

    Args:
        starts: `start_period` of each period (first 0, strictly increasing).
        limits: limit of each period; no two neighbours equal.
        max_periods: the budget, at least 1.

    Returns:
        The coarsened starts and limits; every limit is one of the input limits and at every time
        the new limit is at most the old one.
    """
    m = len(limits)
    if m <= max_periods:
        return list(starts), list(limits)
    if max_periods == 1:
        return [starts[0]], [min(limits)]
    finite = np.asarray(limits[:-1], dtype=np.float64)
    durations = np.diff(np.asarray(starts, dtype=np.float64))
    tail = limits[-1]
    n, groups = m - 1, max_periods - 1  # `groups` periods for what is not merged into the tail
    cum_ld = np.concatenate(([0.0], np.cumsum(finite * durations)))
    cum_d = np.concatenate(([0.0], np.cumsum(durations)))
    # best[g, p]: least loss for the first p finite periods in exactly g groups; cut[g, p]: where
    # the last of those groups starts.
    best = np.full((groups + 1, n + 1), np.inf)
    best[0, 0] = 0.0
    cut = np.zeros((groups + 1, n + 1), dtype=np.int64)
    rows = np.arange(groups)
    for end in range(n):
        group_min = np.minimum.accumulate(finite[end::-1])[::-1]  # min(finite[i..end]) for each i
        cost = (cum_ld[end + 1] - cum_ld[: end + 1]) - group_min * (cum_d[end + 1] - cum_d[: end + 1])
        total = best[:groups, : end + 1] + cost[None, :]
        first = np.argmin(total, axis=1)
        best[1:, end + 1] = total[rows, first]
        cut[1:, end + 1] = first
    # The tail group: finite periods j.. merged into the tail, allowed only where none is lower.
    suffix_min = np.minimum.accumulate(finite[::-1])[::-1]
    tail_cost = np.where(
        np.concatenate((suffix_min >= tail, [True])),
        (cum_ld[n] - cum_ld) - tail * (cum_d[n] - cum_d),
        np.inf,
    )
    total = best + tail_cost[None, :]
    g, j = (int(k) for k in np.unravel_index(int(np.argmin(total)), total.shape))
    out_s: list[int] = [int(starts[j])]
    out_l: list[float] = [tail]
    p = j
    for level in range(g, 0, -1):
        i = int(cut[level, p])
        out_s.append(int(starts[i]))
        out_l.append(float(finite[i:p].min()))
        p = i
    return _merge_equal(out_s[::-1], out_l[::-1])


def build_profile(
    power_w: Sequence[float],
    *,
    start: datetime,
    slot_s: int,
    facts: ElectricalFacts,
    failsafe_w: float,
    settings: ProfileSettings,
) -> ChargingProfile:
    """Build the absolute ChargingProfile that caps a session at its plan, then at its failsafe share.

    Args:
        power_w: planned power per slot (W), on the grid `start + k * slot_s`. Negative values
            (discharge) are sent as 0: a 2.2.1 ChargingProfile can only cap charging.
        start: start of the grid; the profile's `start_date_time`. A fraction of a second is
            dropped from `start_date_time` (OCPI DateTime); the slot boundaries then fall between
            whole seconds and each is placed on the side where the lower limit applies longer.
        slot_s: slot length (s), at least 1.
        facts: the EVSE/vehicle facts (phases, DC, voltage, maximum, minimum).
        failsafe_w: this session's share of the site failsafe limit (W), at least 0.
        settings: the party's settings (unit, `max_periods`, `failsafe_delay_s`, AC floor).

    Returns:
        A profile with `start_date_time` set, no `duration`, periods starting at 0 and strictly
        increasing, limits with one decimal, at most `settings.max_periods` periods, and
        `min_charging_rate` when the facts give a minimum.

    Raises:
        ValueError: on a non-positive or non-integer `slot_s`, a non-finite power or a negative or
            non-finite `failsafe_w`.
    """
    if isinstance(slot_s, bool) or not isinstance(slot_s, int) or slot_s < 1:
        raise ValueError(f"slot_s must be a positive int, got {slot_s!r}")
    if not (math.isfinite(failsafe_w) and failsafe_w >= 0):
        raise ValueError(f"failsafe_w must be a non-negative finite number, got {failsafe_w!r}")
    plan = np.asarray(power_w, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(plan)):
        raise ValueError("power_w must be finite")
    unit = profile_unit(facts, settings)
    tail_offset = min(settings.failsafe_delay_s, len(plan) * slot_s)
    used = -(-tail_offset // slot_s)  # slots before the tail, the last maybe cut short
    slot_limits = _quantise_w(plan[:used], unit=unit, facts=facts, settings=settings).tolist()
    tail_limit = float(_quantise_w(np.array([failsafe_w]), unit=unit, facts=facts, settings=settings)[0])
    offsets = [k * slot_s for k in range(used)] + [tail_offset]
    limits = [*slot_limits, tail_limit]

    start_utc = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    anchor = to_ocpi_datetime(start_utc)
    if start_utc != anchor:
        # The grid starts a fraction of a second after the anchor, so boundary k lies inside the
        # whole second [offset, offset + 1): that second gets the lower of the two limits around
        # the boundary. The first slot extends back to the anchor.
        starts, values = [0], [limits[0]]
        for k in range(1, len(limits)):
            for at, value in ((offsets[k], min(limits[k - 1], limits[k])), (offsets[k] + 1, limits[k])):
                if at == starts[-1]:
                    values[-1] = value  # a one-second segment: the later, lower-or-equal value wins
                else:
                    starts.append(at)
                    values.append(value)
    else:
        starts, values = offsets, limits
    starts, values = _merge_equal(starts, values)
    starts, values = coarsen_periods(starts, values, settings.max_periods)
    return ChargingProfile(
        start_date_time=anchor,
        charging_rate_unit=unit,
        min_charging_rate=_min_charging_rate(unit, facts),
        charging_profile_period=[
            ChargingProfilePeriod(start_period=int(s), limit=float(v))
            for s, v in zip(starts, values, strict=True)
        ],
    )
