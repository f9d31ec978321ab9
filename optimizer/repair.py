"""Make an LP relaxation respect minimum rates without breaking any limit (the LP+repair route).

1. Every pair whose power lies strictly between 0 and its session's minimum is set to 0. Safe:
   every hard limit is an upper bound on a sum of non-negative powers.
2. Those pairs are then turned back on at exactly their minimum, highest LP power first (ties:
   session priority, then slot), wherever the minimum still fits in every row the pair belongs to
   (site, its circuits, its phases, its EVSE) and in its session's remaining need.

The caller then re-solves the LP with this on/off pattern fixed, so the powers that are on can
grow into the capacity the rounding freed.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from optimizer.arrays import FloatArray, SiteArrays
from optimizer.check import loads

__all__ = ["round_to_minimum"]


def round_to_minimum(arrays: SiteArrays, pairs_kw: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Apply the repair rule to (P,) pair powers; return the repaired powers and which pairs are on.

    Args:
        arrays: The problem's arrays.
        pairs_kw: (P,) powers within [0, max] that satisfy every limit but maybe not the minimum rates.

    Returns:
        (P,) powers that are 0 or at least the minimum and satisfy every limit, and the (P,) mask
        of pairs that are on (power > 0).
    """
    pair_min = arrays.min_kw[arrays.pair_session]
    between = (pairs_kw > 0) & (pairs_kw < pair_min)
    repaired = np.where(between, 0.0, pairs_kw)
    candidates = np.flatnonzero(between)
    if candidates.size:
        power = np.zeros((arrays.n_sessions, arrays.n_slots))
        power[arrays.pair_session, arrays.pair_slot] = repaired
        load = loads(arrays, power)
        site_slack = arrays.site_cap_kw - load.site_kw
        circuit_slack = arrays.circuit_cap_kw - load.circuit_kw
        phase_slack = None if arrays.phase_cap_kw is None else arrays.phase_cap_kw - load.phase_kw
        evse_slack = arrays.evse_max_kw[:, None] - load.evse_kw
        need_slack = arrays.need_kwh - load.energy_kwh
        circuits_of = arrays.circuit_session.tocsc()
        priority = arrays.priority()
        sessions = arrays.pair_session[candidates]
        order = np.lexsort((arrays.pair_slot[candidates], -priority[sessions], -pairs_kw[candidates]))
        # One candidate at a time: each acceptance uses slack the next ones compete for.
        for j in candidates[order]:
            i, t = int(arrays.pair_session[j]), int(arrays.pair_slot[j])
            kw = float(pair_min[j])
            circuits = circuits_of.indices[circuits_of.indptr[i] : circuits_of.indptr[i + 1]]
            share = arrays.phase_share[i]
            e = int(arrays.evse_index[i])
            fits = (
                kw <= site_slack[t]
                and bool(np.all(kw <= circuit_slack[circuits, t]))
                and (phase_slack is None or bool(np.all(kw * share <= phase_slack[:, t])))
                and kw <= evse_slack[e, t]
                and kw * arrays.slot_h <= need_slack[i]
            )
            if fits:
                repaired[j] = kw
                site_slack[t] -= kw
                circuit_slack[circuits, t] -= kw
                if phase_slack is not None:
                    phase_slack[:, t] -= kw * share
                evse_slack[e, t] -= kw
                need_slack[i] -= kw * arrays.slot_h
    return repaired, repaired > 0
