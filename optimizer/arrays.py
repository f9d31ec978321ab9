"""A validated `SiteProblem` as numpy arrays: the one place that reads the Structs.

The LP builder (`constraints`, `objective`), the plan checker (`check`) and the fallback all work
on these arrays, so they agree on what every limit means. Index conventions: `T` slots, `N`
sessions in problem order, `C` circuits, `P` present (session, slot) pairs ordered by session and
then slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from optimizer.model import PerSlot, ProfileType, SiteProblem

__all__ = ["PROFILE_CODES", "SiteArrays", "site_arrays"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Integer codes of the profile types inside the arrays.
PROFILE_CODES: dict[ProfileType, int] = {
    ProfileType.REGULAR: 0,
    ProfileType.FAST: 1,
    ProfileType.CHEAP: 2,
    ProfileType.GREEN: 3,
}
_PHASE_INDEX = {"L1": 0, "L2": 1, "L3": 2}


@dataclass(frozen=True, slots=True)
class SiteArrays:
    """The numeric content of a problem.

    Attributes:
        n_slots: T, slots in the horizon.
        slot_h: Slot length (h).
        ub_kw: (N,) most a session may draw: min(session max, EVSE max); 0 where its minimum rate
            is above that (it cannot charge at all).
        min_kw: (N,) minimum rate while charging (kW), 0 for none.
        need_kwh: (N,) energy asked for (kWh).
        reach_kwh: (N,) min(need, ub_kw x slots present x slot_h): what the session could take
            alone (kWh).
        first_slot: (N,) first slot present, clipped to the horizon.
        end_slot: (N,) first slot gone, clipped to the horizon (end_slot >= first_slot).
        evse_index: (N,) index of the session's EVSE.
        evse_max_kw: (E,) EVSE maxima (kW).
        phase_share: (N, 3) fraction of the session's power drawn on L1, L2, L3.
        profile: (N,) profile type codes (`PROFILE_CODES`).
        pair_session: (P,) session of each present pair.
        pair_slot: (P,) slot of each present pair.
        pair_offset: (N + 1,) pairs of session i are pair_offset[i]:pair_offset[i + 1].
        site_cap_kw: (T,) site limit minus fixed load, floored at 0 (kW): room for the sessions.
        circuit_indptr: (C + 1,) the sessions of circuit c are circuit_member[circuit_indptr[c]:
            circuit_indptr[c + 1]] (ascending): session i charges on one of c's EVSEs.
        circuit_member: Those session indices, circuit after circuit.
        circuit_cap_kw: (C, T) circuit limits (kW).
        phase_cap_kw: (3, T) phase limit x voltage minus a third of the fixed load, floored at 0
            (kW), or None without a phase limit.
        price_per_kwh: (T,) prices or None.
        co2_g_per_kwh: (T,) carbon intensity or None.
        continuity: (P,) the previous plan's power in each pair as a fraction of the pair's maximum
            (0..1; 0 without a previous plan).
        warnings: Problems that make a limit impossible to meet; the plan gives 0 there.
    """

    n_slots: int
    slot_h: float
    ub_kw: FloatArray
    min_kw: FloatArray
    need_kwh: FloatArray
    reach_kwh: FloatArray
    first_slot: IntArray
    end_slot: IntArray
    evse_index: IntArray
    evse_max_kw: FloatArray
    phase_share: FloatArray
    profile: IntArray
    pair_session: IntArray
    pair_slot: IntArray
    pair_offset: IntArray
    site_cap_kw: FloatArray
    circuit_indptr: IntArray
    circuit_member: IntArray
    circuit_cap_kw: FloatArray
    phase_cap_kw: FloatArray | None
    price_per_kwh: FloatArray | None
    co2_g_per_kwh: FloatArray | None
    continuity: FloatArray
    warnings: tuple[str, ...]

    @property
    def n_sessions(self) -> int:
        """N, the number of sessions."""
        return int(self.ub_kw.shape[0])

    @property
    def n_pairs(self) -> int:
        """P, the number of present (session, slot) pairs."""
        return int(self.pair_session.shape[0])

    @property
    def pair_ub_kw(self) -> FloatArray:
        """(P,) upper bound of each pair's power (kW)."""
        return self.ub_kw[self.pair_session]

    def priority(self) -> FloatArray:
        """(N,) 1 for the session leaving first, 0 for the last (then by arrival, then order).

        Used wherever the optimizer must prefer one session over an equal other: the objective's
        tie-break and the fallback's minimum-rate admission.
        """
        n = self.n_sessions
        by_departure = np.lexsort((np.arange(n), self.first_slot, self.end_slot))
        rank = np.empty(n)
        rank[by_departure] = np.linspace(1.0, 0.0, n) if n > 1 else 1.0
        return rank

    @property
    def n_circuits(self) -> int:
        """C, the number of circuits."""
        return int(self.circuit_indptr.shape[0]) - 1

    @property
    def circuit_session(self) -> sp.csr_array:
        """(C, N) 0/1 sparse: session i charges on circuit c."""
        return sp.csr_array(
            (np.ones(self.circuit_member.size), self.circuit_member, self.circuit_indptr),
            shape=(self.n_circuits, self.n_sessions),
        )

    def circuit_sum(self, per_session: FloatArray) -> FloatArray:
        """(C, T) sum over each circuit's sessions of an (N, T) matrix."""
        return _group_sum(per_session[self.circuit_member], self.circuit_indptr, per_session.shape[1])

    def evse_sum(self, per_session: FloatArray) -> FloatArray:
        """(E, T) sum over each EVSE's sessions of an (N, T) matrix."""
        per_evse = np.bincount(self.evse_index, minlength=self.evse_max_kw.size)
        if per_evse.size and int(per_evse.max()) <= 1:  # one session per EVSE: a copy, no sums
            out = np.zeros((per_evse.size, per_session.shape[1]))
            out[self.evse_index] = per_session
            return out
        order = np.argsort(self.evse_index, kind="stable")
        indptr = np.zeros(per_evse.size + 1, dtype=np.int64)
        np.cumsum(per_evse, out=indptr[1:])
        return _group_sum(per_session[order], indptr, per_session.shape[1])

    def matrix(self, pairs_kw: FloatArray) -> FloatArray:
        """(P,) pair powers as the (N, T) power matrix (0 outside presence)."""
        power = np.zeros((self.n_sessions, self.n_slots))
        power[self.pair_session, self.pair_slot] = pairs_kw
        return power

    def presence(self) -> npt.NDArray[np.bool_]:
        """(N, T) True where the session is present."""
        slots = np.arange(self.n_slots)
        return (slots[None, :] >= self.first_slot[:, None]) & (slots[None, :] < self.end_slot[:, None])


def _group_sum(rows: FloatArray, indptr: IntArray, n_slots: int) -> FloatArray:
    """(G, T): the sums of the consecutive row groups `rows[indptr[g]:indptr[g + 1]]` (0 if empty).

    One `np.add.reduceat` over the non-empty groups: a C loop over contiguous rows, several times
    faster than a weighted bincount over every (group, slot) cell on large sites.
    """
    n_groups = indptr.size - 1
    out = np.zeros((n_groups, n_slots))
    nonempty = np.flatnonzero(indptr[1:] > indptr[:-1])
    if nonempty.size:
        out[nonempty] = np.add.reduceat(rows, indptr[nonempty], axis=0)
    return out


def per_slot(value: PerSlot | None, n_slots: int, default: float = 0.0) -> FloatArray:
    """One number or `n_slots` numbers (None: `default`) as a (T,) float array."""
    if value is None:
        return np.full(n_slots, default, dtype=np.float64)
    if isinstance(value, tuple | list):
        return np.asarray(value, dtype=np.float64)
    return np.full(n_slots, float(value), dtype=np.float64)


def _slots_text(mask: npt.NDArray[np.bool_]) -> str:
    """'3 slots (first t=12)' for a (T,) mask."""
    where = np.flatnonzero(mask)
    return f"{where.size} slot{'s' if where.size != 1 else ''} (first t={int(where[0])})"


def _circuit_sessions(
    problem: SiteProblem, evse_pos: dict[str, int], evse_index: IntArray
) -> tuple[IntArray, IntArray]:
    """(indptr, sessions): the sessions on each circuit's EVSEs, ascending (an EVSE listed twice in
    a circuit counts once). CSR arrays made directly: the scipy matrices and product this replaces
    were a third of a small site's array time."""
    n_circuits, n_evses = len(problem.circuits), len(problem.evses)
    member = np.array(
        [c * n_evses + evse_pos[e] for c, circuit in enumerate(problem.circuits) for e in circuit.evses],
        dtype=np.int64,
    )
    member = np.unique(member)  # (circuit, EVSE) once each, by circuit then EVSE
    circuit, evse = member // max(n_evses, 1), member % max(n_evses, 1)
    by_evse = np.argsort(evse_index, kind="stable")
    per_evse = np.bincount(evse_index, minlength=n_evses)
    evse_start = np.cumsum(per_evse) - per_evse
    count = per_evse[evse]
    within = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    session = by_evse[np.repeat(evse_start[evse], count) + within]
    entry_circuit = np.repeat(circuit, count)
    order = np.lexsort((session, entry_circuit))
    indptr = np.zeros(n_circuits + 1, dtype=np.int64)
    np.cumsum(np.bincount(entry_circuit, minlength=n_circuits), out=indptr[1:])
    return indptr, session[order].astype(np.int64)


def site_arrays(problem: SiteProblem) -> SiteArrays:
    """Turn a validated problem into arrays (see `SiteArrays`).

    Args:
        problem: A problem that passed `validate_problem`.

    Returns:
        Its arrays, with warnings for limits that cannot be met (fixed load above a limit, a
        minimum rate above the maximum).
    """
    n_slots = problem.n_slots
    slot_h = problem.slot_minutes / 60.0
    warnings: list[str] = []

    evse_pos = {e.id: i for i, e in enumerate(problem.evses)}
    evse_max_kw = np.array([e.max_kw for e in problem.evses], dtype=np.float64)
    # Grid-side share of an EVSE's power on L1, L2, L3 (contract: 3-phase P/3 each, 2-phase P/2 on
    # L1 and L2, 1-phase all on its phase; DC chargers are balanced three-phase loads).
    evse_share = np.zeros((len(problem.evses), 3), dtype=np.float64)
    for k, evse in enumerate(problem.evses):
        if evse.dc or evse.phases == 3:
            evse_share[k, :] = 1.0 / 3.0
        elif evse.phases == 2:
            evse_share[k, :2] = 0.5
        else:
            evse_share[k, _PHASE_INDEX[str(evse.phase)]] = 1.0

    sessions = problem.sessions
    n = len(sessions)
    evse_index = np.array([evse_pos[s.evse] for s in sessions], dtype=np.int64)
    session_max = np.array([s.max_kw for s in sessions], dtype=np.float64)
    min_kw = np.array([s.min_kw for s in sessions], dtype=np.float64)
    need_kwh = np.array([s.energy_kwh for s in sessions], dtype=np.float64)
    arrival = np.array([s.arrival_slot for s in sessions], dtype=np.int64)
    departure = np.array([s.departure_slot for s in sessions], dtype=np.int64)
    profile = np.array([PROFILE_CODES[ProfileType(s.profile_type)] for s in sessions], dtype=np.int64)
    if n == 0:
        evse_index = evse_index.reshape(0)

    ub_kw = np.minimum(session_max, evse_max_kw[evse_index]) if n else np.zeros(0)
    stuck = (min_kw > ub_kw) & (min_kw > 0)
    for i in np.flatnonzero(stuck):
        warnings.append(
            f"sessions[{i}].min_kw={min_kw[i]:g} is above its maximum {ub_kw[i]:g} kW: it cannot charge"
        )
    ub_kw = np.where(stuck, 0.0, ub_kw)
    min_kw = np.where(stuck, 0.0, min_kw)

    first_slot = np.minimum(arrival, n_slots)
    end_slot = np.maximum(np.minimum(departure, n_slots), first_slot)
    # A session that cannot draw power or needs nothing gets no pairs: it has nothing to plan.
    count = np.where((ub_kw > 0) & (need_kwh > 0), end_slot - first_slot, 0)
    pair_offset = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(count, out=pair_offset[1:])
    n_pairs = int(pair_offset[-1])
    pair_session = np.repeat(np.arange(n, dtype=np.int64), count)
    pair_slot = first_slot[pair_session] + (np.arange(n_pairs, dtype=np.int64) - pair_offset[pair_session])
    reach_kwh = np.minimum(need_kwh, ub_kw * count * slot_h)

    limit_kw = per_slot(problem.site.limit_kw, n_slots)
    fixed_kw = per_slot(problem.site.fixed_load_kw, n_slots)
    over = fixed_kw > limit_kw
    if over.any():
        warnings.append(
            f"site.fixed_load_kw exceeds site.limit_kw in {_slots_text(over)}: sessions get 0 there"
        )
    site_cap_kw = np.maximum(limit_kw - fixed_kw, 0.0)

    phase_cap_kw: FloatArray | None = None
    if problem.site.phase_limit_a is not None:
        phase_kw = per_slot(problem.site.phase_limit_a, n_slots) * problem.site.voltage_v / 1000.0
        room = phase_kw - fixed_kw / 3.0
        if (room < 0).any():
            warnings.append(
                "a third of site.fixed_load_kw exceeds site.phase_limit_a x voltage_v in "
                f"{_slots_text(room < 0)}: sessions get 0 there"
            )
        phase_cap_kw = np.broadcast_to(np.maximum(room, 0.0), (3, n_slots)).copy()

    n_circuits = len(problem.circuits)
    circuit_indptr, circuit_member = _circuit_sessions(problem, evse_pos, evse_index)
    circuit_cap_kw = np.array(
        [per_slot(c.limit_kw, n_slots) for c in problem.circuits], dtype=np.float64
    ).reshape(n_circuits, n_slots)

    previous = np.zeros((n, n_slots))
    with_previous = [index for index, request in enumerate(sessions) if request.previous_kw is not None]
    if with_previous:  # one conversion for all of them (validated: n_slots values each)
        values = chain.from_iterable(sessions[i].previous_kw or () for i in with_previous)
        previous[with_previous] = np.fromiter(values, dtype=np.float64, count=len(with_previous) * n_slots).reshape(
            len(with_previous), n_slots
        )
    pair_ub = ub_kw[pair_session]
    continuity = np.clip(np.divide(previous[pair_session, pair_slot], pair_ub, out=np.zeros(n_pairs),
                                   where=pair_ub > 0), 0.0, 1.0)

    price = None if problem.price_per_kwh is None else per_slot(problem.price_per_kwh, n_slots)
    co2 = None if problem.co2_g_per_kwh is None else per_slot(problem.co2_g_per_kwh, n_slots)

    return SiteArrays(
        n_slots=n_slots,
        slot_h=slot_h,
        ub_kw=ub_kw,
        min_kw=min_kw,
        need_kwh=need_kwh,
        reach_kwh=reach_kwh,
        first_slot=first_slot,
        end_slot=end_slot,
        evse_index=evse_index,
        evse_max_kw=evse_max_kw,
        phase_share=evse_share[evse_index],
        profile=profile,
        pair_session=pair_session,
        pair_slot=pair_slot,
        pair_offset=pair_offset,
        site_cap_kw=site_cap_kw,
        circuit_indptr=circuit_indptr,
        circuit_member=circuit_member,
        circuit_cap_kw=circuit_cap_kw,
        phase_cap_kw=phase_cap_kw,
        price_per_kwh=price,
        co2_g_per_kwh=co2,
        continuity=continuity,
        warnings=tuple(warnings),
    )
