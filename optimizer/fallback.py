"""The deterministic FALLBACK plan: an equal share within every limit, slot by slot.

Rule, for each slot t in order:

1. Each present session may take `cap = min(session max, EVSE max, remaining need / slot_h)`.
2. Every limit row of the slot (site, each circuit, each phase, each shared EVSE) gets the
   highest level L at which giving each of its members min(cap, L) (times its phase share for a
   phase row) fits: classic water-filling, solved exactly by sorting the members' caps.
3. Each session draws min(cap, the lowest level of the rows it belongs to). Every row then holds
   by construction: its members get at most its own level.
4. Minimum rates: while some share is above 0 but below its session's minimum, the lower-priority
   half of those sessions (priority: leaving sooner first, see `SiteArrays.priority`; at least
   one) get 0 in this slot and the levels are recomputed for the rest, which can only rise.

No solver, no iteration limit that could leave a slot unplanned: it always returns a plan within
every hard constraint. It is also the benchmark's "equal share" baseline.
"""

from __future__ import annotations

import numpy as np

from optimizer.arrays import FloatArray, IntArray, SiteArrays
from optimizer.constraints import (
    Columns,
    RowBlock,
    circuit_power_limit,
    evse_shared_limit,
    phase_current_limit,
    site_power_limit,
)

__all__ = ["equal_share", "water_levels"]


def water_levels(row: IntArray, coef: FloatArray, cap: FloatArray, limit: FloatArray) -> FloatArray:
    """Per row r, the largest L with sum over its entries of coef * min(cap, L) <= limit[r].

    Args:
        row: (nnz,) row of each entry (0 <= row < len(limit)).
        coef: (nnz,) positive coefficient of each entry.
        cap: (nnz,) the entry's own cap (>= 0).
        limit: (R,) row limits (>= 0).

    Returns:
        (R,) levels; +inf where every entry fits at its cap (or the row has no entries).
    """
    n_rows = limit.size
    levels = np.full(n_rows, np.inf)
    if row.size == 0:
        return levels
    order = np.lexsort((cap, row))
    r, a, c = row[order], coef[order], cap[order]
    size = np.bincount(r, minlength=n_rows)
    start = np.cumsum(size) - size
    total_a = np.bincount(r, weights=a, minlength=n_rows)
    cum_ac = np.cumsum(a * c)
    cum_a = np.cumsum(a)
    # Inclusive sums within each row: subtract what the rows before it contributed.
    before_ac = np.concatenate([[0.0], cum_ac])[start]
    before_a = np.concatenate([[0.0], cum_a])[start]
    in_ac = cum_ac - before_ac[r]
    rest_a = total_a[r] - (cum_a - before_a[r])
    # Load if the level were the k-th smallest cap of the row: increasing in k.
    fits = in_ac + c * rest_a <= limit[r]
    n_fit = np.bincount(r, weights=fits, minlength=n_rows).astype(np.int64)
    partial = (n_fit < size) & (n_fit > 0)
    none = (n_fit == 0) & (size > 0)
    k = start[partial] + n_fit[partial] - 1
    levels[partial] = (limit[partial] - in_ac[k]) / rest_a[k]
    levels[none] = limit[none] / total_a[none]
    return np.asarray(np.maximum(levels, 0.0), dtype=np.float64)


def _entries(arrays: SiteArrays) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """All limit rows on the power columns as (row, pair, coef) entries and the row limits."""
    cols = Columns(n_pairs=arrays.n_pairs, n_sessions=arrays.n_sessions, n_segments=0, n_switch=0)
    blocks: list[RowBlock] = [
        site_power_limit(arrays, cols),
        circuit_power_limit(arrays, cols),
        phase_current_limit(arrays, cols),
        evse_shared_limit(arrays, cols),
    ]
    rows, pairs, coefs, limits = [], [], [], []
    offset = 0
    for block in blocks:
        rows.append(block.row + offset)
        pairs.append(block.col)
        coefs.append(block.value)
        limits.append(block.upper)
        offset += block.n_rows
    return np.concatenate(rows), np.concatenate(pairs), np.concatenate(coefs), np.concatenate(limits)


def equal_share(arrays: SiteArrays) -> FloatArray:
    """The FALLBACK plan as an (N, T) power matrix (kW); see the module docstring for the rule."""
    n, n_slots, slot_h = arrays.n_sessions, arrays.n_slots, arrays.slot_h
    power = np.zeros((n, n_slots))
    if arrays.n_pairs == 0:
        return power
    row, pair, coef, limit = _entries(arrays)
    # Group entries and pairs by slot so each slot is a handful of vector operations.
    entry_order = np.argsort(arrays.pair_slot[pair], kind="stable")
    row, pair, coef = row[entry_order], pair[entry_order], coef[entry_order]
    entry_bounds = np.searchsorted(arrays.pair_slot[pair], np.arange(n_slots + 1))
    pair_order = np.argsort(arrays.pair_slot, kind="stable")
    pair_bounds = np.searchsorted(arrays.pair_slot[pair_order], np.arange(n_slots + 1))
    # Position of each pair within its slot, to index per-slot vectors.
    local = np.empty(arrays.n_pairs, dtype=np.int64)
    local[pair_order] = np.arange(arrays.n_pairs) - pair_bounds[arrays.pair_slot[pair_order]]

    priority = arrays.priority()
    remaining_kwh = arrays.need_kwh.copy()
    for t in range(n_slots):
        slot_pairs = pair_order[pair_bounds[t] : pair_bounds[t + 1]]
        if slot_pairs.size == 0:
            continue
        sessions = arrays.pair_session[slot_pairs]
        cap = np.minimum(arrays.ub_kw[sessions], remaining_kwh[sessions] / slot_h)
        minimum = arrays.min_kw[sessions]
        cap = np.where(cap < minimum, 0.0, cap)
        e_row = row[entry_bounds[t] : entry_bounds[t + 1]]
        e_pos = local[pair[entry_bounds[t] : entry_bounds[t + 1]]]
        e_coef = coef[entry_bounds[t] : entry_bounds[t + 1]]
        rows, e_row = np.unique(e_row, return_inverse=True)
        while True:
            levels = water_levels(e_row, e_coef, cap[e_pos], limit[rows])
            level = np.full(slot_pairs.size, np.inf)
            np.minimum.at(level, e_pos, levels[e_row])
            share = np.minimum(cap, level)
            too_low = np.flatnonzero((share > 0) & (share < minimum))
            if too_low.size == 0:
                break
            # Drop the lower-priority half (at least one): every pass removes one, so it ends.
            by_priority = too_low[np.argsort(priority[sessions[too_low]], kind="stable")]
            cap[by_priority[: max(1, too_low.size // 2)]] = 0.0
        power[sessions, t] = share
        remaining_kwh[sessions] = np.maximum(remaining_kwh[sessions] - share * slot_h, 0.0)
    return power
