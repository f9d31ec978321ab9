"""Is a plan energy-maximal? An exact check by max-flow / min-cut when the limits form a network.

The solver (`optimizer.solve`) first solves the LP with a small energy weight, which HiGHS' dual
simplex finishes several times faster on large congested sites, and keeps that answer only if it
also delivers the most energy the limits allow: then it is optimal for the full weight as well
(see `optimizer/README.md`, "Solving large sites"). This module decides the second condition.

When every limit row is a sum of powers with coefficient 1 and the rows of one slot are nested or
disjoint (the site contains its circuits, a circuit its EVSEs; phase rows with 2- or 3-phase
chargers, coefficients 1/2 and 1/3, are not of this kind), the set of power matrices within the
limits is the set of flows of a network, per slot: source -> session i (capacity: what it still
may take, reach[i] / slot_h over the horizon) -> pair (i, t) (0 <= p <= ub) -> its smallest
limit row -> the next larger one -> ... -> sink. A flow is maximal exactly when the residual
network has no path from the source to the sink (Ford-Fulkerson), found with one breadth-first
search (`scipy.sparse.csgraph`), no loop per variable in Python.

Tolerance: a residual capacity up to `RESIDUAL_TOL_KW` counts as saturated. If no path is found,
the cut at the searched set proves that no plan delivers more than this one plus
(crossing edges) x RESIDUAL_TOL_KW x slot_h; with 1e-9 kW that is below 0.1 Wh for a
5,000-session site (about 400,000 edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from optimizer.arrays import FloatArray, IntArray, SiteArrays
from optimizer.constraints import Columns, RowBlock

__all__ = ["RESIDUAL_TOL_KW", "Network", "energy_is_maximal", "network_rows"]

# Residual capacity (kW) that counts as none: the simplex returns nonbasic powers exactly at their
# bounds and row activities to ~1e-12 kW, so 1e-9 kW separates "saturated" from "has room" without
# accepting a real augmenting path of more than a microwatt.
RESIDUAL_TOL_KW = 1e-9

# Families that do not limit the power sums: the energy rows (handled as the source edges) and the
# switching rows (u >= p[t] - p[t-1] with u unbounded above never restricts p).
_NOT_LIMITS = ("session_energy", "switching")


@dataclass(frozen=True, slots=True)
class Network:
    """The limit rows of an LP as a forest (see the module docstring).

    Attributes:
        member: (R, P) 0/1 matrix: pair j counts in row r.
        cap_kw: (R,) row limits (kW).
        parent: (R,) the smallest row strictly containing row r; R for none (the sink).
        first: (P,) the smallest row containing pair j; R for none (the pair goes to the sink).
    """

    member: sp.csr_array
    cap_kw: FloatArray
    parent: IntArray
    first: IntArray


def network_rows(blocks: tuple[RowBlock, ...], n_pairs: int) -> Network | None:
    """The limit rows as a forest, or None when they are not a network.

    None when a row has a coefficient other than 1 or a finite lower bound, or when the rows of a
    pair are not nested (two rows share a pair but neither contains the other).
    """
    limits = [b for b in blocks if b.name not in _NOT_LIMITS and b.n_rows]
    if any(bool((b.value != 1.0).any()) or bool(np.isfinite(b.lower).any()) for b in limits):
        return None
    offsets = np.cumsum([0] + [b.n_rows for b in limits])
    n_rows = int(offsets[-1])
    empty = np.zeros(0, dtype=np.int64)
    row = np.concatenate([empty] + [b.row + off for b, off in zip(limits, offsets, strict=False)])
    col = np.concatenate([empty] + [b.col for b in limits])
    cap = np.concatenate([np.zeros(0)] + [b.upper for b in limits])
    size = np.bincount(row, minlength=n_rows)
    # Each pair's rows from the smallest to the largest (ties by index: equal member sets nest
    # either way); consecutive rows of one pair must be child -> parent for every pair.
    order = np.lexsort((row, size[row], col))
    row_sorted, col_sorted = row[order], col[order]
    last_of_pair = np.ones(row_sorted.size, dtype=np.bool_)
    last_of_pair[:-1] = col_sorted[1:] != col_sorted[:-1]
    nxt = np.full(row_sorted.size, n_rows, dtype=np.int64)
    nxt[:-1] = np.where(last_of_pair[:-1], n_rows, row_sorted[1:])
    parent = np.full(n_rows, n_rows, dtype=np.int64)
    parent[row_sorted] = nxt
    if (parent[row_sorted] != nxt).any():  # some row has two different successors: not nested
        return None
    first_of_pair = np.ones(row_sorted.size, dtype=np.bool_)
    first_of_pair[1:] = last_of_pair[:-1]
    first = np.full(n_pairs, n_rows, dtype=np.int64)
    first[col_sorted[first_of_pair]] = row_sorted[first_of_pair]
    member = sp.csr_array((np.ones(row.size), (row, col)), shape=(n_rows, n_pairs))
    return Network(member=member, cap_kw=cap, parent=parent, first=first)


def energy_is_maximal(
    arrays: SiteArrays,
    cols: Columns,
    net: Network,
    x: FloatArray,
    lb: FloatArray,
    ub: FloatArray,
) -> bool:
    """True if the LP solution `x` delivers the most energy the limits and bounds allow.

    Args:
        arrays: The site.
        cols: The LP's column layout.
        net: The LP's limit rows as a network (`network_rows`).
        x: A solution of the LP (powers first).
        lb: The column lower bounds it was solved with (a repair re-solve fixes some powers).
        ub: The column upper bounds it was solved with.

    Returns:
        True when the residual network has no augmenting path (energy-maximal within
        `RESIDUAL_TOL_KW` per crossing edge), False when it has one.
    """
    n, n_rows = cols.n_sessions, net.cap_kw.size
    p = x[: cols.n_pairs]
    tol = RESIDUAL_TOL_KW
    # Nodes: 0 source, 1..n sessions, n+1..n+R rows, n+R+1 sink (row index R maps to the sink).
    sink = n + n_rows + 1
    session_node = 1 + arrays.pair_session
    first_node = n + 1 + net.first
    up_node = n + 1 + net.parent
    row_node = n + 1 + np.arange(n_rows)
    room_kw = arrays.reach_kwh / arrays.slot_h - np.bincount(arrays.pair_session, weights=p, minlength=n)
    activity = net.member @ p
    sources = np.flatnonzero(room_kw > tol)
    forward = ub[: cols.n_pairs] - p > tol  # session -> its first row (or the sink)
    backward = (p - lb[: cols.n_pairs] > tol) & (net.first < n_rows)  # first row -> session
    has_room = net.cap_kw - activity > tol  # row -> its parent (or the sink)
    carries = (activity > tol) & (net.parent < n_rows)  # parent -> row
    tail = np.concatenate(
        [np.zeros(sources.size, dtype=np.int64), session_node[forward], first_node[backward],
         row_node[has_room], up_node[carries]]
    )
    head = np.concatenate(
        [1 + sources, first_node[forward], session_node[backward], up_node[has_room], row_node[carries]]
    )
    graph = sp.csr_array((np.ones(tail.size), (tail, head)), shape=(sink + 1, sink + 1))
    reached = breadth_first_order(graph, 0, directed=True, return_predecessors=False)
    return not bool(np.isin(sink, reached))
