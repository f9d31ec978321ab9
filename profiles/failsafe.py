"""Failsafe shares: how a site's failsafe limit is split among the sessions we steer (safety-critical).

After the failsafe time a charge point that lost us applies the tail of its profile; the tails of
a site together must stay within the site's failsafe limit (and each phase's budget). The rule,
in whole-vehicle shares (`failsafe_shares_w`):
  1. a session gets either 0 or at least its minimum (`profiles.build.min_sendable_w`: the
     smallest share its profile does not send as 0, e.g. 6 A on its phases for AC); a session
     whose maximum is below its minimum gets 0;
  2. the minimums are granted in ascending order of minimum, ties in the given order, to every
     session whose minimum still fits every budget (the site total and each phase); this gives
     the minimum to as many sessions as possible;
  3. the rest is water-filled (max-min fair, progressive filling): the sessions granted a minimum
     rise together from their minimums, none above its own maximum; when a budget is used up, the
     sessions drawing on it stop, the others go on.
The shares on each budget therefore sum to at most that budget: after the failsafe time the
profiles together never allow more than the site total, and no more current on a phase than its
budget. A session's draw is P/(3V) on each phase for 3-phase AC and DC, P/(2V) on L1 and L2 for
2-phase, P/V on its `phase` for 1-phase (`phase_draw_a_per_w`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from optimizer import Evse, Phase

__all__ = ["FIT_SLACK", "PhaseDraw", "failsafe_shares_w", "phase_draw_a_per_w"]

FloatArray = npt.NDArray[np.float64]
PhaseDraw = tuple[float, float, float]


FIT_SLACK = 1e-12
"""Relative slack (dimensionless) when testing whether one more minimum fits a budget. Float sums
of up to ~10^4 shares (and A-per-W factors like 1/690) err by ~1e-16 relative per term; 1e-12
absorbs that, so minimums that fit exactly are granted, and stays 1000x below the 1e-9 by which
`build_profile`'s rounding may already exceed a share (`profiles.build.REL_EPS`)."""


def phase_draw_a_per_w(evse: Evse, voltage_v: float) -> PhaseDraw:
    """The current (A per W of the session's power) an EVSE draws on L1, L2 and L3.

    Args:
        evse: the EVSE (`phases`, `phase`, `dc`).
        voltage_v: the site's line-to-neutral voltage (V).

    Returns:
        The optimizer's model: 1/(3V) on each phase for 3-phase AC and DC (a balanced load),
        1/(2V) on L1 and L2 for 2-phase, 1/V on its `phase` for 1-phase.
    """
    if evse.dc or evse.phases == 3:
        return (1.0 / (3.0 * voltage_v),) * 3
    if evse.phases == 2:
        return (1.0 / (2.0 * voltage_v), 1.0 / (2.0 * voltage_v), 0.0)
    on = 1.0 / voltage_v
    return (
        on if evse.phase == Phase.L1 else 0.0,
        on if evse.phase == Phase.L2 else 0.0,
        on if evse.phase == Phase.L3 else 0.0,
    )


def _level_reaching(
    target: float, weights: FloatArray, low: FloatArray, high: FloatArray, start: float
) -> float:
    """The least level L >= start with `sum(weights * clip(L, low, high)) >= target` (inf if none).

    The sum is piecewise linear and non-decreasing in L with breaks at `low` and `high`. It is
    evaluated at every break with sorted prefix sums (O(n log n)), then interpolated linearly
    inside the segment where it reaches `target`.
    """
    points = np.unique(np.concatenate(([start], low[low > start], high[high > start])))
    by_high = np.argsort(high, kind="stable")
    by_low = np.argsort(low, kind="stable")
    # At a level b each session is capped (high <= b), still at its minimum (low > b), or at b.
    capped = np.searchsorted(high[by_high], points, side="right")
    at_high = np.concatenate(([0.0], np.cumsum(weights[by_high] * high[by_high])))[capped]
    weight_capped = np.concatenate(([0.0], np.cumsum(weights[by_high])))[capped]
    rising = np.searchsorted(low[by_low], points, side="right")
    at_low_sums = np.concatenate(([0.0], np.cumsum(weights[by_low] * low[by_low])))
    at_low = at_low_sums[-1] - at_low_sums[rising]
    weight_low_sums = np.concatenate(([0.0], np.cumsum(weights[by_low])))
    weight_low = weight_low_sums[-1] - weight_low_sums[rising]
    weight_free = np.maximum(weights.sum() - weight_capped - weight_low, 0.0)
    used = at_high + at_low + points * weight_free
    reached = np.flatnonzero(used >= target)
    if reached.size == 0:
        return math.inf
    k = int(reached[0])
    if k == 0:
        return float(points[0])
    # Between two breaks the sum rises by the free weight (its slope) per unit of level.
    slope = float(weight_free[k - 1])
    if slope <= 0:  # flat in exact arithmetic: `used` crossed `target` by rounding only
        return float(points[k])
    return min(float(points[k]), float(points[k - 1]) + (target - float(used[k - 1])) / slope)


def failsafe_shares_w(
    total_w: float,
    caps_w: Sequence[float],
    mins_w: Sequence[float],
    *,
    draws_a_per_w: Sequence[PhaseDraw] | None = None,
    phase_budget_a: float | None = None,
) -> list[float]:
    """Split a failsafe budget in whole-vehicle shares: 0 or at least the minimum, then max-min fair.

    The rule (module docstring): minimums go, in ascending order of minimum and then the given
    order, to every session whose minimum still fits every budget; the rest is water-filled from
    the minimums up, none above its cap, and the sessions on a budget that is used up stop rising.

    Args:
        total_w: the site total to share (W), at least 0.
        caps_w: each session's maximum (W), at least 0.
        mins_w: each session's minimum non-zero share (W), at least 0 (0: any share is usable).
        draws_a_per_w: each session's current on L1, L2, L3 per W of its share (A/W), with
            `phase_budget_a`; `phase_draw_a_per_w` gives it for an EVSE.
        phase_budget_a: the current (A) the shares may draw on each phase together; None: no limit.

    Returns:
        One share per session (W), in the given order: each 0 or in [min, cap]; their sum is at
        most `total_w`, and their current on each phase at most `phase_budget_a` (both up to float
        rounding, `FIT_SLACK`).

    Raises:
        ValueError: when the sequences differ in length, or only one of `draws_a_per_w` and
            `phase_budget_a` is given.
    """
    n = len(caps_w)
    if len(mins_w) != n or (draws_a_per_w is not None and len(draws_a_per_w) != n):
        raise ValueError("caps_w, mins_w and draws_a_per_w need one value per session")
    if (draws_a_per_w is None) != (phase_budget_a is None):
        raise ValueError("draws_a_per_w and phase_budget_a go together")
    caps = np.maximum(np.asarray(caps_w, dtype=np.float64).reshape(n), 0.0)
    mins = np.maximum(np.asarray(mins_w, dtype=np.float64).reshape(n), 0.0)
    # One row per budget: the site total (1 W per W), then L1, L2, L3 (A per W) when limited.
    weights = np.ones((1, n))
    budgets = [max(total_w, 0.0)]
    if draws_a_per_w is not None and phase_budget_a is not None:
        weights = np.vstack((weights, np.asarray(draws_a_per_w, dtype=np.float64).reshape(n, 3).T))
        budgets += [max(phase_budget_a, 0.0)] * 3
    capacity = np.asarray(budgets)
    slack = capacity * FIT_SLACK

    granted = np.zeros(n, dtype=bool)
    used = np.zeros(len(budgets))
    for i in sorted(range(n), key=lambda k: (mins[k], k)):  # rule 2: smallest minimums first
        need = weights[:, i] * mins[i]
        if mins[i] <= caps[i] and bool(np.all(used + need <= capacity + slack)):
            granted[i] = True
            used += need

    shares = np.where(granted, mins, 0.0)
    rising = granted & (caps > mins)
    level = 0.0
    while rising.any():  # rule 3: a pass ends when a budget is used up or every share is at its cap
        fixed = np.where(rising, 0.0, shares)
        reach = [
            _level_reaching(float(capacity[r] - weights[r] @ fixed), weights[r, rising],
                            mins[rising], caps[rising], level)
            if bool(np.any(weights[r, rising] > 0)) else math.inf
            for r in range(len(budgets))
        ]
        level = min(reach)
        if math.isinf(level):
            shares = np.where(rising, caps, shares)
            break
        shares = np.where(rising, np.clip(level, mins, caps), shares)
        for r, at in enumerate(reach):
            if at == level:
                rising &= weights[r] <= 0
        rising &= caps > level
    return [float(share) for share in shares]

