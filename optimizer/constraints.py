"""The LP's constraint families, one function each, built vectorised with `scipy.sparse`.

Columns (see `Columns`): the power `p[j]` (kW) of every present (session, slot) pair `j`, then K
shortfall segments `s[i, k]` (kWh) per session, then one switching variable `u[j]` (kW) per pair
that has a predecessor in the same session.

Each family returns a `RowBlock`: `lower <= A @ x <= upper` with a name and a key per row, so a
row reads as `site_power_limit[t=12]`. Every family takes the same `(arrays, cols)` arguments;
the limit families only touch the power columns, which come first, so their column index is
the pair index whatever the rest of the layout. Rows that can never bind (even with every pair at its upper
bound the sum stays within the limit) are left out: that keeps small sites tiny. The plan checker
(`optimizer.check`) re-checks every limit on the final plan independently of these rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from optimizer.arrays import FloatArray, IntArray, SiteArrays

__all__ = [
    "Columns",
    "RowBlock",
    "circuit_power_limit",
    "evse_shared_limit",
    "phase_current_limit",
    "session_energy",
    "site_power_limit",
    "switching",
    "switching_pairs",
]


@dataclass(frozen=True, slots=True)
class Columns:
    """Where each kind of variable sits in the LP's column vector."""

    n_pairs: int
    n_sessions: int
    n_segments: int
    n_switch: int

    @property
    def shortfall_start(self) -> int:
        """Index of s[0, 0]; s[i, k] is at shortfall_start + i * n_segments + k."""
        return self.n_pairs

    @property
    def switch_start(self) -> int:
        """Index of the first switching variable."""
        return self.n_pairs + self.n_sessions * self.n_segments

    @property
    def total(self) -> int:
        """Number of columns."""
        return self.switch_start + self.n_switch


@dataclass(frozen=True, slots=True)
class RowBlock:
    """One named family of rows: lower <= A @ x <= upper, A given as COO triplets.

    Triplets rather than a sparse matrix: the LP stacks every block into one matrix with a single
    conversion, which matters for small sites where each scipy.sparse construction costs ~50 us.

    Attributes:
        name: Family name, e.g. `site_power_limit`.
        row: (nnz,) row of each entry, 0 <= row < m.
        col: (nnz,) column of each entry.
        value: (nnz,) coefficient of each entry.
        lower: (m,) lower bounds (-inf for none).
        upper: (m,) upper bounds.
        key_names: Names of the row keys, e.g. ("c", "t").
        keys: (m, len(key_names)) integer keys of each row.
    """

    name: str
    row: IntArray
    col: IntArray
    value: FloatArray
    lower: FloatArray
    upper: FloatArray
    key_names: tuple[str, ...]
    keys: IntArray

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.upper.shape[0])

    def matrix(self, n_cols: int) -> sp.csr_array:
        """The block as an (m, n_cols) CSR matrix."""
        return sp.csr_array((self.value, (self.row, self.col)), shape=(self.n_rows, n_cols))

    def label(self, row: int) -> str:
        """Human name of one row, e.g. `circuit_power_limit[c=2, t=40]`."""
        keys = ", ".join(f"{k}={int(v)}" for k, v in zip(self.key_names, self.keys[row], strict=True))
        return f"{self.name}[{keys}]"


def _limit_block(
    name: str,
    key_names: tuple[str, ...],
    row_id: IntArray,
    col: IntArray,
    coef: FloatArray,
    cap_by_row_id: FloatArray,
    pair_ub_kw: FloatArray,
) -> RowBlock:
    """Rows `sum coef * p[col] <= cap` grouped by `row_id`, dropping rows that can never bind.

    Args:
        name: Family name.
        key_names: Names of the row keys; `row_id` decodes to them in mixed radix of `cap_by_row_id`
            shape.
        row_id: (nnz,) flat id of each entry's row (an index into `cap_by_row_id.ravel()`).
        col: (nnz,) pair index of each entry.
        coef: (nnz,) coefficient of each entry.
        cap_by_row_id: Limit of each possible row (any shape; flattened).
        pair_ub_kw: (P,) pair upper bounds, to find rows that cannot bind.
    """
    cap = cap_by_row_id.ravel()
    # Over every possible row at once (ids are bounded by the cap array; counting beats sorting).
    most = np.bincount(row_id, weights=coef * pair_ub_kw[col], minlength=cap.size)
    # Keep a row only if its members could exceed it: others are implied by the variable bounds.
    # A row without members has most = 0 <= cap, so it is never kept.
    binding = most > cap
    new_index = np.cumsum(binding) - 1
    keep = binding[row_id]
    kept_rows = np.flatnonzero(binding)
    keys = np.stack(np.unravel_index(kept_rows, cap_by_row_id.shape), axis=1).astype(np.int64)
    return RowBlock(
        name=name,
        row=new_index[row_id[keep]],
        col=col[keep],
        value=coef[keep],
        lower=np.full(kept_rows.size, -np.inf),
        upper=cap[kept_rows],
        key_names=key_names,
        keys=keys.reshape(kept_rows.size, len(key_names)),
    )


def _empty_block(name: str, key_names: tuple[str, ...]) -> RowBlock:
    """A family without rows (nothing it could bind)."""
    none = np.zeros(0, dtype=np.int64)
    return RowBlock(
        name=name, row=none, col=none, value=np.zeros(0), lower=np.zeros(0), upper=np.zeros(0),
        key_names=key_names, keys=np.zeros((0, len(key_names)), dtype=np.int64),
    )


def site_power_limit(arrays: SiteArrays, cols: Columns) -> RowBlock:
    """Per slot t: sum over sessions of p[i, t] <= site limit[t] - fixed load[t] (kW)."""
    pairs = np.arange(arrays.n_pairs, dtype=np.int64)
    return _limit_block(
        "site_power_limit",
        ("t",),
        arrays.pair_slot,
        pairs,
        np.ones(arrays.n_pairs),
        arrays.site_cap_kw,
        arrays.pair_ub_kw,
    )


def circuit_power_limit(arrays: SiteArrays, cols: Columns) -> RowBlock:
    """Per circuit c and slot t: sum over sessions on c's EVSEs of p[i, t] <= limit[c, t] (kW)."""
    if arrays.n_circuits == 0:
        return _empty_block("circuit_power_limit", ("c", "t"))
    circuit = np.repeat(np.arange(arrays.n_circuits, dtype=np.int64), np.diff(arrays.circuit_indptr))
    session = arrays.circuit_member
    # Expand every (circuit, session) membership to that session's pairs.
    count = arrays.pair_offset[session + 1] - arrays.pair_offset[session]
    entry_circuit = np.repeat(circuit, count)
    starts = np.repeat(arrays.pair_offset[session], count)
    within = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    pair = starts + within
    return _limit_block(
        "circuit_power_limit",
        ("c", "t"),
        entry_circuit * arrays.n_slots + arrays.pair_slot[pair],
        pair,
        np.ones(pair.size),
        arrays.circuit_cap_kw,
        arrays.pair_ub_kw,
    )


def phase_current_limit(arrays: SiteArrays, cols: Columns) -> RowBlock:
    """Per phase L and slot t: sum of share[i, L] * p[i, t] <= phase limit x V - fixed/3 (kW).

    The phase current limit (A) becomes power through the nominal voltage: I = P / V per phase.
    """
    if arrays.phase_cap_kw is None:
        return _empty_block("phase_current_limit", ("phase", "t"))
    caps = arrays.phase_cap_kw
    share = arrays.phase_share[arrays.pair_session]
    phase, pair = np.nonzero(share.T)
    return _limit_block(
        "phase_current_limit",
        ("phase", "t"),
        phase.astype(np.int64) * arrays.n_slots + arrays.pair_slot[pair],
        pair.astype(np.int64),
        share[pair, phase],
        caps,
        arrays.pair_ub_kw,
    )


def evse_shared_limit(arrays: SiteArrays, cols: Columns) -> RowBlock:
    """Per EVSE e and slot t with several sessions present: sum of their p[i, t] <= EVSE max (kW).

    One EVSE serves one vehicle at a time, but stale or overlapping session data may put two on
    it; the EVSE's own maximum then bounds their sum.
    """
    if arrays.n_sessions and int(np.bincount(arrays.evse_index).max()) <= 1:
        # One session per EVSE: each row would hold one pair, whose bound is within the EVSE's.
        return _empty_block("evse_shared_limit", ("evse", "t"))
    evse = arrays.evse_index[arrays.pair_session]
    caps = np.broadcast_to(arrays.evse_max_kw[:, None], (arrays.evse_max_kw.size, arrays.n_slots))
    return _limit_block(
        "evse_shared_limit",
        ("evse", "t"),
        evse * arrays.n_slots + arrays.pair_slot,
        np.arange(arrays.n_pairs, dtype=np.int64),
        np.ones(arrays.n_pairs),
        np.ascontiguousarray(caps),
        arrays.pair_ub_kw,
    )


def session_energy(arrays: SiteArrays, cols: Columns) -> RowBlock:
    """Per session i: slot_h * sum over t of p[i, t] + sum over k of s[i, k] = reach[i] (kWh).

    `reach[i]` is the need capped at what the session could take alone, so the shortfall
    segments `0 <= s[i, k] <= reach[i] / K` absorb exactly what the shared limits deny it; the
    delivered energy stays at most the need and the LP is always feasible.
    """
    n, k = cols.n_sessions, cols.n_segments
    seg_rows = np.repeat(np.arange(n, dtype=np.int64), k)
    rows = np.concatenate([arrays.pair_session, seg_rows])
    columns = np.concatenate(
        [np.arange(cols.n_pairs, dtype=np.int64), cols.shortfall_start + np.arange(n * k)]
    )
    values = np.concatenate([np.full(cols.n_pairs, arrays.slot_h), np.ones(n * k)])
    return RowBlock(
        name="session_energy",
        row=rows,
        col=columns,
        value=values,
        lower=arrays.reach_kwh.copy(),
        upper=arrays.reach_kwh.copy(),
        key_names=("i",),
        keys=np.arange(n, dtype=np.int64).reshape(n, 1),
    )


def switching_pairs(arrays: SiteArrays) -> IntArray:
    """Pairs that have a predecessor slot in the same session (they get a switching variable)."""
    has_previous = np.ones(arrays.n_pairs, dtype=np.bool_)
    firsts = arrays.pair_offset[:-1][arrays.pair_offset[:-1] < arrays.pair_offset[1:]]
    has_previous[firsts] = False
    return np.flatnonzero(has_previous).astype(np.int64)


def switching(arrays: SiteArrays, cols: Columns, pairs: IntArray) -> RowBlock:
    """Per pair j with a predecessor j-1 in its session: p[j] - p[j-1] - u[j] <= 0 (kW).

    With u >= 0 penalised, u[j] is the increase of power from one slot to the next; a session's
    first slot is free, so one on/off block costs nothing and only re-switching is penalised.
    """
    q = pairs.size
    rows = np.repeat(np.arange(q, dtype=np.int64), 3)
    columns = np.empty((q, 3), dtype=np.int64)  # per row: p[j], p[j-1], u[j]
    columns[:, 0] = pairs
    columns[:, 1] = pairs - 1
    columns[:, 2] = np.arange(cols.switch_start, cols.switch_start + q, dtype=np.int64)
    values = np.empty((q, 3))
    values[:, 0], values[:, 1:] = 1.0, -1.0
    return RowBlock(
        name="switching",
        row=rows,
        col=columns.ravel(),
        value=values.ravel(),
        lower=np.full(q, -np.inf),
        upper=np.zeros(q),
        key_names=("i", "t"),
        keys=np.stack([arrays.pair_session[pairs], arrays.pair_slot[pairs]], axis=1),
    )
