"""Warm starts between planning cycles: an LP's optimal basis keyed so it maps onto the next LP.

Every column and row of the site LP gets a stable key that does not depend on where it sits in
the column vector or on which rows the builder left out:

| family | owner | key |
|---|---|---|
| power `p[i,t]` (column) | session id | absolute start of slot t (unix s) |
| shortfall `s[i,k]` (column) | session id | segment k |
| switching `u[i,t]` (column) | session id | absolute start of slot t |
| `session_energy[i]` | session id | 0 |
| `site_power_limit[t]` | - | absolute start of slot t |
| `circuit_power_limit[c,t]` | circuit id | absolute start of slot t |
| `phase_current_limit[phase,t]` | phase index | absolute start of slot t |
| `evse_shared_limit[e,t]` | EVSE id | absolute start of slot t |
| `switching[i,t]` (row) | session id | absolute start of slot t |

(absolute slot start = `problem.start` + t x slot length, in unix seconds.)

`capture` stores the basis in a `WarmStart`: the owner ids once, then runs of consecutive keys
(family, owner, first key, count: a session's power columns are one run) and one status byte per
entry, so it is a few bytes per column and encodes compactly with msgspec (JSON or msgpack).

`restore` maps a `WarmStart` onto the next cycle's LP: a column or row whose key it holds gets its
old status; a new column is nonbasic at its lower bound (a new session starts at 0, as a cold
start does) and a new row basic (its slack takes it, so the count of basic variables is unchanged
by it). Removed columns and rows can leave too few or too many basic variables; the count is
restored (a basis needs exactly one per row): too few, and the energy rows of the sessions that
lost a basic column become basic (that session starts over from its slack, like a cold start),
then other rows; too many, and basic power columns become nonbasic at 0, then basic rows
nonbasic. A singular basis is HiGHS' to repair when it factorises, and `optimizer.highs` solves
from cold when HiGHS rejects the basis or the warm solve does not end optimal: the basis only
ever costs time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from optimizer.arrays import IntArray, SiteArrays
from optimizer.constraints import RowBlock
from optimizer.highs import BASIC, LOWER, UPPER, Basis
from optimizer.model import BasisRuns, SiteProblem, WarmStart

__all__ = ["capture", "restore"]

# Family codes (stored in WarmStart, so never renumber).
POWER, SHORTFALL, SWITCH_COL = 0, 1, 2
ENERGY_ROW, SITE_ROW, CIRCUIT_ROW, PHASE_ROW, EVSE_ROW, SWITCH_ROW = 10, 11, 12, 13, 14, 15
_ROW_FAMILY = {
    "session_energy": ENERGY_ROW,
    "site_power_limit": SITE_ROW,
    "circuit_power_limit": CIRCUIT_ROW,
    "phase_current_limit": PHASE_ROW,
    "evse_shared_limit": EVSE_ROW,
    "switching": SWITCH_ROW,
}
# Families whose key is an absolute slot start, and which owner table each family uses.
_SLOT_FAMILIES = (POWER, SWITCH_COL, SITE_ROW, CIRCUIT_ROW, PHASE_ROW, EVSE_ROW, SWITCH_ROW)
_BY_SESSION = (POWER, SHORTFALL, SWITCH_COL, ENERGY_ROW, SWITCH_ROW)
# Which owner table a family's owner indexes (0 sessions, 1 circuits, 2 EVSEs; -1 none).
_TABLE = np.full(16, -1, dtype=np.int64)
_TABLE[list(_BY_SESSION)] = 0
_TABLE[CIRCUIT_ROW] = 1
_TABLE[EVSE_ROW] = 2


@dataclass(frozen=True, slots=True)
class _Keys:
    """(family, owner index, key) of every entry of one side (columns or rows) of an LP.

    `key` is a slot index for the slot families (not yet absolute), the segment k or 0 otherwise.
    """

    family: IntArray
    owner: IntArray
    key: IntArray


def _slot_grid(problem: SiteProblem) -> tuple[int, int] | None:
    """(unix seconds of slot 0, slot length in s), or None when either is not whole seconds."""
    start = problem.start.timestamp()
    slot_s = problem.slot_minutes * 60.0
    if start != int(start) or slot_s != int(slot_s) or slot_s <= 0:
        return None
    return int(start), int(slot_s)


def _lp_keys(
    arrays: SiteArrays, n_segments: int, switch_pairs: IntArray, blocks: tuple[RowBlock, ...]
) -> tuple[_Keys, _Keys]:
    """The keys of an LP's columns and rows, in LP order (slot families by slot index)."""
    n = arrays.n_sessions
    cols = _Keys(
        family=np.concatenate([
            np.full(arrays.n_pairs, POWER), np.full(n * n_segments, SHORTFALL), np.full(switch_pairs.size, SWITCH_COL)
        ]).astype(np.int64),
        owner=np.concatenate([
            arrays.pair_session, np.repeat(np.arange(n, dtype=np.int64), n_segments), arrays.pair_session[switch_pairs]
        ]).astype(np.int64),
        key=np.concatenate([
            arrays.pair_slot, np.tile(np.arange(n_segments, dtype=np.int64), n), arrays.pair_slot[switch_pairs]
        ]).astype(np.int64),
    )
    families, owners, keys = [], [], []
    for block in blocks:
        block_keys = np.asarray(block.keys, dtype=np.int64)
        m = block_keys.shape[0]
        family = _ROW_FAMILY[block.name]
        families.append(np.full(m, family, dtype=np.int64))
        if family == ENERGY_ROW:
            owners.append(block_keys[:, 0])
            keys.append(np.zeros(m, dtype=np.int64))
        elif family == SITE_ROW:
            owners.append(np.zeros(m, dtype=np.int64))
            keys.append(block_keys[:, 0])
        else:
            owners.append(block_keys[:, 0])
            keys.append(block_keys[:, 1])
    empty = np.zeros(0, dtype=np.int64)
    rows = _Keys(
        family=np.concatenate([empty, *families]),
        owner=np.concatenate([empty, *owners]),
        key=np.concatenate([empty, *keys]),
    )
    return cols, rows


def _is_slot(family: IntArray) -> npt.NDArray[np.bool_]:
    """Which entries belong to a family keyed by slot."""
    return np.isin(family, _SLOT_FAMILIES)


def _runs(keys: _Keys, absolute: IntArray, status: np.ndarray) -> BasisRuns:
    """Run-length form of entries in LP order: a run continues while family and owner stay and
    the key steps by one slot (or one segment)."""
    size = keys.family.size
    step_ok = np.zeros(size, dtype=np.bool_)
    if size > 1:
        step_ok[1:] = (
            (keys.family[1:] == keys.family[:-1])
            & (keys.owner[1:] == keys.owner[:-1])
            & (keys.key[1:] == keys.key[:-1] + 1)
        )
    starts = np.flatnonzero(~step_ok)
    counts = np.diff(np.append(starts, size))
    return BasisRuns(
        family=keys.family[starts].astype(np.int8).tobytes(),
        owner=keys.owner[starts].astype("<i4").tobytes(),
        first=absolute[starts].astype("<i8").tobytes(),
        count=counts.astype("<i4").tobytes(),
        status=np.asarray(status, dtype=np.int8).tobytes(),
    )


def _absolute(keys: _Keys, start_s: int, slot_s: int) -> IntArray:
    """The keys with slot indices turned into absolute slot starts (unix s)."""
    return np.where(_is_slot(keys.family), start_s + keys.key * slot_s, keys.key)


def capture(
    problem: SiteProblem,
    arrays: SiteArrays,
    n_segments: int,
    switch_pairs: IntArray,
    blocks: tuple[RowBlock, ...],
    basis: Basis,
    *,
    warm: bool,
) -> WarmStart | None:
    """The basis of an LP as a `WarmStart`; None when the slot grid is not in whole seconds."""
    grid = _slot_grid(problem)
    if grid is None:
        return None
    start_s, slot_s = grid
    cols, rows = _lp_keys(arrays, n_segments, switch_pairs, blocks)
    if cols.family.size != basis.col.size or rows.family.size != basis.row.size:
        return None
    return WarmStart(
        start_s=start_s,
        slot_s=slot_s,
        sessions=tuple(s.id for s in problem.sessions),
        circuits=tuple(c.id for c in problem.circuits),
        evses=tuple(e.id for e in problem.evses),
        columns=_runs(cols, _absolute(cols, start_s, slot_s), basis.col),
        rows=_runs(rows, _absolute(rows, start_s, slot_s), basis.row),
        warm=warm,
    )


def _expand(runs: BasisRuns, slot_s: int) -> tuple[IntArray, IntArray, IntArray, np.ndarray]:
    """(family, owner, key, status) per entry of stored runs: the key steps by one slot (`slot_s`
    seconds) in the slot families, by 1 in the others."""
    family = np.frombuffer(runs.family, dtype=np.int8).astype(np.int64)
    owner = np.frombuffer(runs.owner, dtype="<i4").astype(np.int64)
    first = np.frombuffer(runs.first, dtype="<i8").astype(np.int64)
    count = np.frombuffer(runs.count, dtype="<i4").astype(np.int64)
    status = np.frombuffer(runs.status, dtype=np.int8)
    if not (family.size == owner.size == first.size == count.size) or int(count.sum()) != status.size:
        raise ValueError("inconsistent basis runs")
    within = np.arange(status.size, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    family = np.repeat(family, count)
    step = np.where(_is_slot(family), slot_s, 1)
    return family, np.repeat(owner, count), np.repeat(first, count) + within * step, status


def _owner_map(old: tuple[str, ...], new: tuple[str, ...]) -> IntArray:
    """For each old owner id, its index among the new ones (-1: gone)."""
    where = {ident: i for i, ident in enumerate(new)}
    return np.array([where.get(ident, -1) for ident in old], dtype=np.int64)


def _remap(ids: IntArray, table: IntArray) -> IntArray:
    """`table[ids]`, -1 where an id is outside the table."""
    out = np.full(ids.size, -1, dtype=np.int64)
    known = (ids >= 0) & (ids < table.size)
    out[known] = table[ids[known]]
    return out


def _pack(family: IntArray, owner: IntArray, key: IntArray) -> IntArray:
    """One int64 per (family, owner, key): family in 8 bits, owner in 24, key (offset) in 32."""
    return (family << 56) | (owner << 32) | (key + (1 << 31))


@dataclass(frozen=True, slots=True)
class _Stored:
    """Stored entries expanded, with owners and keys in the new LP's terms."""

    family: IntArray
    owner: IntArray  # index in the new problem, -1: gone
    key: IntArray  # new slot index (slot families), else the stored key
    status: np.ndarray


def _stored(runs: BasisRuns, warm: WarmStart, start_s: int, maps: tuple[IntArray, IntArray, IntArray]) -> _Stored:
    """Expand stored runs and translate them to the new LP (`maps`: old -> new session, circuit
    and EVSE indices)."""
    family, owner, key, status = _expand(runs, warm.slot_s)
    # Slot keys: absolute starts -> the new LP's slot index (whole, as the grids were checked).
    key = np.where(_is_slot(family), (key - start_s) // warm.slot_s, key)
    new_owner = owner.copy()  # site and phase rows: the owner is an index, the same in every LP
    table = _TABLE[np.clip(family, 0, _TABLE.size - 1)]
    for which, mapping in enumerate(maps):
        pick = table == which
        new_owner[pick] = _remap(owner[pick], mapping)
    return _Stored(family=family, owner=new_owner, key=key, status=status)


def _mapped(stored: _Stored, new: _Keys, fill: int) -> np.ndarray:
    """The new entries' statuses from the stored ones, `fill` where there is none."""
    keep = (stored.owner >= 0) & (stored.owner < (1 << 24)) & (np.abs(stored.key) < (1 << 31))
    old_packed = _pack(stored.family[keep], stored.owner[keep], stored.key[keep])
    new_packed = _pack(new.family, new.owner, new.key)
    out = np.full(new.family.size, fill, dtype=np.int8)
    _, new_at, old_at = np.intersect1d(new_packed, old_packed, assume_unique=False, return_indices=True)
    out[new_at] = stored.status[keep][old_at]
    return out


def restore(
    warm: WarmStart,
    problem: SiteProblem,
    arrays: SiteArrays,
    n_segments: int,
    switch_pairs: IntArray,
    blocks: tuple[RowBlock, ...],
    ub: np.ndarray,
    row_upper: np.ndarray,
) -> Basis | None:
    """The stored basis mapped onto this LP (a consistent count of basic variables), or None when
    the slot grids do not line up (another slot length, a start off the old grid) or the stored
    runs are malformed."""
    grid = _slot_grid(problem)
    if grid is None or grid[1] != warm.slot_s or (warm.start_s - grid[0]) % warm.slot_s:
        return None
    start_s = grid[0]
    cols, rows = _lp_keys(arrays, n_segments, switch_pairs, blocks)
    maps = (
        _owner_map(warm.sessions, tuple(s.id for s in problem.sessions)),
        _owner_map(warm.circuits, tuple(c.id for c in problem.circuits)),
        _owner_map(warm.evses, tuple(e.id for e in problem.evses)),
    )
    try:
        stored_cols = _stored(warm.columns, warm, start_s, maps)
        col = _mapped(stored_cols, cols, LOWER)
        row = _mapped(_stored(warm.rows, warm, start_s, maps), rows, BASIC)
    except ValueError:
        return None
    if int(col.max(initial=0)) > UPPER or int(col.min(initial=0)) < 0 or int(row.max(initial=0)) > UPPER or (
        int(row.min(initial=0)) < 0
    ):
        return None
    # At an upper bound only where there is a finite one.
    col[(col == UPPER) & ~np.isfinite(ub)] = LOWER
    row[(row == UPPER) & ~np.isfinite(row_upper)] = LOWER
    # Sessions some of whose basic columns are gone (in practice: their first slot passed).
    gone = (stored_cols.status == BASIC) & (stored_cols.key < 0) & (stored_cols.family != SHORTFALL)
    lost = np.unique(stored_cols.owner[gone & (stored_cols.owner >= 0)])
    _balance(col, row, cols, rows, lost)
    return Basis(col=col, row=row)


def _balance(col: np.ndarray, row: np.ndarray, cols: _Keys, rows: _Keys, lost: IntArray) -> None:
    """Make the number of basic variables equal the number of rows (in place); `lost`: the
    sessions that lost a basic column."""
    missing = row.size - int(np.count_nonzero(col == BASIC) + np.count_nonzero(row == BASIC))
    if missing > 0:
        # Sessions that lost a basic column (or whose columns are new) restart from their
        # energy row's slack first; then any nonbasic row, the latest first.
        energy = (rows.family == ENERGY_ROW) & (row != BASIC)
        first = np.flatnonzero(energy & np.isin(rows.owner, lost))
        rest = np.flatnonzero((row != BASIC) & ~np.isin(np.arange(row.size), first))[::-1]
        promote = np.concatenate([first, rest])[:missing]
        row[promote] = BASIC
    elif missing < 0:
        excess = -missing
        basic_power = np.flatnonzero((col == BASIC) & (cols.family == POWER))[::-1][:excess]
        col[basic_power] = LOWER
        excess -= basic_power.size
        if excess > 0:
            basic_rows = np.flatnonzero((row == BASIC) & (rows.family != ENERGY_ROW))[::-1][:excess]
            row[basic_rows] = UPPER
            excess -= basic_rows.size
        if excess > 0:
            other = np.flatnonzero(col == BASIC)[::-1][:excess]
            col[other] = LOWER
