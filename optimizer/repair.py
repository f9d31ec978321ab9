"""Make an LP relaxation respect minimum rates without breaking any limit (the LP+repair route).

The route is a dive: solve the LP relaxation, then repeat

1. every pair whose power lies strictly between 0 and its session's minimum is decided
   (`fix_below_minimum`): it is fixed on (lower bound = the minimum), highest LP power first
   (ties: session priority, then slot), wherever the minimums fixed so far plus this one fit every
   row the pair belongs to (site, its circuits, its phases, its EVSE) and its session's reachable
   energy; otherwise it is fixed off (upper bound 0). A pair already at or above its minimum keeps
   the minimum as lower bound, so a pair that is on stays on;
2. the LP is solved again with those bounds, so the other powers move into the capacity the
   decisions freed or took,

until no power is left between 0 and its minimum. Fixing a pair on never makes the LP infeasible:
the fixed minimums alone fit every row and every session's energy row (its shortfall takes the
rest), and every other power may be 0. Each round decides every pair that is still in between, and
a decided pair stays decided; the rounds are capped (`SolveOptions.repair_rounds`) and what is
left after the last one is rounded by `round_to_minimum`. `trim_to_limits` then takes back what
solver tolerances leave above a limit.

`round_to_minimum` is the one-shot rule, safe on any power vector within the limits: every pair
between 0 and its minimum is set to 0 (safe: every hard limit is an upper bound on a sum of
non-negative powers), then turned back on at exactly its minimum, highest power first, wherever the
minimum still fits in every row of the pair and in its session's remaining need.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from optimizer.arrays import FloatArray, SiteArrays
from optimizer.check import loads

__all__ = ["MIN_RATE_TOLERANCE", "below_minimum", "fix_below_minimum", "round_to_minimum", "trim_to_limits"]

# A power this close under its minimum (relative) counts as at the minimum: solver noise on a pair
# whose lower bound is the minimum, lifted to it exactly by the caller.
MIN_RATE_TOLERANCE = 1e-7


def below_minimum(arrays: SiteArrays, pairs_kw: FloatArray) -> npt.NDArray[np.bool_]:
    """(P,) mask of the pairs whose power is above 0 but below its session's minimum rate."""
    pair_min = arrays.min_kw[arrays.pair_session]
    return (pairs_kw > 0) & (pairs_kw < pair_min * (1.0 - MIN_RATE_TOLERANCE))


class _Room:
    """What is left of every limit for the pairs still to place: taken one pair at a time."""

    def __init__(self, arrays: SiteArrays, power_kw: FloatArray, energy_cap_kwh: FloatArray) -> None:
        load = loads(arrays, power_kw)
        self.arrays = arrays
        self.site = arrays.site_cap_kw - load.site_kw
        self.circuit = arrays.circuit_cap_kw - load.circuit_kw
        self.phase = None if arrays.phase_cap_kw is None else arrays.phase_cap_kw - load.phase_kw
        self.evse = arrays.evse_max_kw[:, None] - load.evse_kw
        self.energy = energy_cap_kwh - load.energy_kwh
        self.circuits_of = arrays.circuit_session.tocsc()

    def take(self, pair: int, kw: float) -> bool:
        """Place `kw` on `pair` if it fits every row of the pair and its session's energy."""
        arrays = self.arrays
        i, t = int(arrays.pair_session[pair]), int(arrays.pair_slot[pair])
        circuits = self.circuits_of.indices[self.circuits_of.indptr[i] : self.circuits_of.indptr[i + 1]]
        share = arrays.phase_share[i]
        e = int(arrays.evse_index[i])
        fits = (
            kw <= self.site[t]
            and bool(np.all(kw <= self.circuit[circuits, t]))
            and (self.phase is None or bool(np.all(kw * share <= self.phase[:, t])))
            and kw <= self.evse[e, t]
            and kw * arrays.slot_h <= self.energy[i]
        )
        if fits:
            self.site[t] -= kw
            self.circuit[circuits, t] -= kw
            if self.phase is not None:
                self.phase[:, t] -= kw * share
            self.evse[e, t] -= kw
            self.energy[i] -= kw * arrays.slot_h
        return fits


def _by_power(arrays: SiteArrays, pairs: npt.NDArray[np.intp], pairs_kw: FloatArray) -> npt.NDArray[np.intp]:
    """`pairs` highest power first; ties: session priority, then slot."""
    priority = arrays.priority()
    order = np.lexsort((arrays.pair_slot[pairs], -priority[arrays.pair_session[pairs]], -pairs_kw[pairs]))
    return pairs[order]


def fix_below_minimum(
    arrays: SiteArrays, pairs_kw: FloatArray, lb_kw: FloatArray, ub_kw: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """One round of the dive: fix every pair between 0 and its minimum on or off.

    Args:
        arrays: The problem's arrays.
        pairs_kw: (P,) LP powers (noise already cleared).
        lb_kw: (P,) the pairs' lower bounds so far (0, or the minimum of a pair fixed on).
        ub_kw: (P,) the pairs' upper bounds so far (0 for a pair fixed off).

    Returns:
        The new (P,) lower and upper bounds.
    """
    pair_min = arrays.min_kw[arrays.pair_session]
    lb, ub = lb_kw.copy(), ub_kw.copy()
    between = np.flatnonzero(below_minimum(arrays, pairs_kw))
    # Powers at or above their minimum keep it as lower bound: a pair that is on stays on, so no
    # later round can push it back below its minimum and the dive ends in a few rounds.
    on = (pairs_kw >= pair_min * (1.0 - MIN_RATE_TOLERANCE)) & (pair_min > 0)
    lb[on] = np.maximum(lb[on], pair_min[on])
    room = _Room(arrays, arrays.matrix(lb), arrays.reach_kwh)
    for j in _by_power(arrays, between, pairs_kw):
        if room.take(int(j), float(pair_min[j])):
            lb[j] = pair_min[j]
        else:
            ub[j] = 0.0
    return lb, ub


def round_to_minimum(arrays: SiteArrays, pairs_kw: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Apply the one-shot rule to (P,) pair powers; return the repaired powers and which pairs are on.

    Args:
        arrays: The problem's arrays.
        pairs_kw: (P,) powers within [0, max] that satisfy every limit but maybe not the minimum rates.

    Returns:
        (P,) powers that are 0 or at least the minimum and satisfy every limit, and the (P,) mask
        of pairs that are on (power > 0).
    """
    pair_min = arrays.min_kw[arrays.pair_session]
    between = below_minimum(arrays, pairs_kw)
    repaired = np.where(between, 0.0, pairs_kw)
    candidates = np.flatnonzero(between)
    if candidates.size:
        room = _Room(arrays, arrays.matrix(repaired), arrays.need_kwh)
        # One candidate at a time: each acceptance uses room the next ones compete for.
        for j in _by_power(arrays, candidates, pairs_kw):
            if room.take(int(j), float(pair_min[j])):
                repaired[j] = pair_min[j]
    return repaired, repaired > 0


def _factor(load: FloatArray, cap: FloatArray, head: FloatArray) -> FloatArray:
    """Per row, the share of its members' headroom to keep so the row fits: 1 where it fits."""
    excess = np.maximum(load - cap, 0.0)
    keep = np.ones_like(load)
    over = excess > 0
    keep[over] = np.clip(1.0 - excess[over] / np.maximum(head[over], 1e-300), 0.0, 1.0)
    return keep


def trim_to_limits(arrays: SiteArrays, power_kw: FloatArray) -> FloatArray:
    """Take back the rounding a solver's tolerances leave above a limit, keeping every minimum.

    A power that a solver returned a hair under its minimum (within `MIN_RATE_TOLERANCE`) is lifted
    to it, and an LP's rows hold only to its feasibility tolerance, so a row can end a few mW
    above its limit. The plan must not: every row (site, circuits, phases, EVSEs, each session's
    need) still above its limit gives up that excess from its members' power above their floor
    (the minimum of a power that is on, else 0), in proportion to it. A pair in several such rows
    keeps the smallest share any of them allows, so every row ends within its limit; powers only
    go down, so no other row is pushed over.

    Args:
        arrays: The problem's arrays.
        power_kw: (N, T) powers, each 0 or at least its minimum.

    Returns:
        (N, T) powers within every limit up to floating-point rounding.
    """
    power = power_kw
    floor = np.where(power > 0, np.minimum(arrays.min_kw[:, None], power), 0.0)
    head = power - floor
    load, room = loads(arrays, power), loads(arrays, head)  # what each row carries, what it may give
    keep = np.ones_like(power)
    keep = np.minimum(keep, _factor(load.site_kw, arrays.site_cap_kw, room.site_kw)[None, :])
    circuit_keep = _factor(load.circuit_kw, arrays.circuit_cap_kw, room.circuit_kw)
    members = arrays.circuit_session.tocsr()
    for c in np.flatnonzero((circuit_keep < 1.0).any(axis=1)):
        sessions = members.indices[members.indptr[c] : members.indptr[c + 1]]
        keep[sessions] = np.minimum(keep[sessions], circuit_keep[c][None, :])
    if arrays.phase_cap_kw is not None:
        phase_keep = _factor(load.phase_kw, arrays.phase_cap_kw, room.phase_kw)
        for phase in range(3):
            on_phase = arrays.phase_share[:, phase] > 0
            keep[on_phase] = np.minimum(keep[on_phase], phase_keep[phase][None, :])
    evse_cap = np.broadcast_to(arrays.evse_max_kw[:, None], load.evse_kw.shape)
    keep = np.minimum(keep, _factor(load.evse_kw, evse_cap, room.evse_kw)[arrays.evse_index])
    keep = np.minimum(keep, _factor(load.energy_kwh, arrays.need_kwh, room.energy_kwh)[:, None])
    if (keep >= 1.0).all():
        return power
    return np.asarray(floor + head * keep, dtype=np.float64)
