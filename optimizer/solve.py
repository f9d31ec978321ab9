"""Build the site LP, solve it with HiGHS (scipy), check the result, and fall back when needed.

`solve(problem, options) -> Plan` is the one entry point. Route:

* no minimum rates: the LP (HiGHS dual simplex through `scipy.optimize.milp` without
  integrality, or `linprog` from LINPROG_MIN_COLUMNS columns on; on large sites first with a
  reduced energy weight, kept only when the max-flow check of `optimizer.flow` proves it
  energy-maximal, which makes it optimal for the full weight) -> OPTIMAL (path LP);
* minimum rates: first (above `milp_first_max_variables` of them) the dive of
  `optimizer.repair`: the LP relaxation, then rounds that fix every power between 0 and its
  minimum on (lower bound = the minimum, where the minimums fixed so far still fit every limit)
  or off, and re-solve. The relaxation's optimum bounds every plan that respects the minimum
  rates from below, so a dive plan within `milp_rel_gap` of it is optimal by the MILP's own
  stopping rule -> OPTIMAL (path LP+repair). Otherwise, with at most `milp_max_variables`
  minimum-rate powers, `scipy.optimize.milp` with semi-continuous power variables (p = 0 or
  min_kw <= p <= max) under `milp_time_limit_s` -> OPTIMAL (path MILP); else whichever of the
  MILP's incumbent (path MILP-incumbent) and the dive plan (path LP+repair) scores better ->
  FEASIBLE;
* anything that fails, raises, or yields a plan the checker rejects: the FALLBACK equal share.

Every candidate plan goes through `optimizer.check.violations` before it is returned; the solver
status alone is never trusted, and a missing `res.x` is a failed route, not an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from optimizer import highs
from optimizer.arrays import FloatArray, IntArray, SiteArrays, site_arrays
from optimizer.check import violations
from optimizer.constraints import (
    Columns,
    RowBlock,
    circuit_power_limit,
    evse_shared_limit,
    phase_current_limit,
    session_energy,
    site_power_limit,
    switching,
    switching_pairs,
)
from optimizer.fallback import equal_share
from optimizer.flow import energy_is_maximal, network_rows
from optimizer.model import (
    ObjectiveTerms,
    Plan,
    SessionPlan,
    SiteProblem,
    SolveOptions,
    SolvePath,
    SolveStats,
    SolveStatus,
    WarmStart,
)
from optimizer.objective import cost_vector, reduced_energy_costs, score
from optimizer.repair import below_minimum, fix_below_minimum, round_to_minimum, trim_to_limits
from optimizer.validate import validate_problem
from optimizer.warm import capture, restore

__all__ = ["NOISE_KW", "LinearProgram", "build", "jain_index", "plan_from_power", "solve", "solve_with_basis"]

# Powers below this are solver noise and become exactly 0 (kW): 1 mW, a millionth of the smallest
# charger and far below what a charging profile (0.1 A or 0.1 W steps) can express.
NOISE_KW = 1e-6
# From this many LP columns on the dual simplex is called through `linprog` instead of `milp` (`_lp`).
LINPROG_MIN_COLUMNS = 20_000

# scipy status codes of linprog and milp (scipy docs): 0 optimal, 1 iteration or time limit.
_OPTIMAL, _LIMIT = 0, 1


@dataclass(frozen=True, slots=True)
class LinearProgram:
    """The assembled LP: minimise c @ x subject to row_lower <= a @ x <= row_upper, lb <= x <= ub.

    The first `n_eq` rows are the energy equalities (row_lower == row_upper), the rest upper
    bounds. The matrix is kept as the three CSC arrays HiGHS takes (`a_start`, `a_index`,
    `a_value`, 32-bit indices, rows sorted within each column); `a` makes the scipy matrix of it.
    """

    cols: Columns
    c: FloatArray
    a_start: npt.NDArray[np.int32]
    a_index: npt.NDArray[np.int32]
    a_value: FloatArray
    row_lower: FloatArray
    row_upper: FloatArray
    n_eq: int
    lb: FloatArray
    ub: FloatArray
    blocks: tuple[RowBlock, ...]
    switch_pairs: IntArray

    @property
    def n_rows(self) -> int:
        """Number of constraint rows."""
        return int(self.row_upper.shape[0])

    @property
    def a(self) -> sp.csc_array:
        """The (rows, columns) constraint matrix as a scipy CSC array."""
        return sp.csc_array((self.a_value, self.a_index, self.a_start), shape=(self.n_rows, self.cols.total))


def build(arrays: SiteArrays, options: SolveOptions) -> LinearProgram:
    """Assemble the LP of a site (minimum rates excluded): columns, cost, named rows, bounds."""
    explicit_smoothing = options.smoothing and arrays.n_pairs <= options.smoothing_max_pairs
    switch = switching_pairs(arrays) if explicit_smoothing else np.zeros(0, dtype=np.int64)
    cols = Columns(
        n_pairs=arrays.n_pairs,
        n_sessions=arrays.n_sessions,
        n_segments=options.fairness_segments,
        n_switch=int(switch.size),
    )
    blocks = [
        session_energy(arrays, cols),
        site_power_limit(arrays, cols),
        circuit_power_limit(arrays, cols),
        phase_current_limit(arrays, cols),
        evse_shared_limit(arrays, cols),
    ]
    if explicit_smoothing:
        blocks.append(switching(arrays, cols, switch))
    blocks = [b for b in blocks if b.n_rows]
    # The whole matrix from the blocks' triplets in one sort by (column, row): the canonical CSC
    # scipy would make, without its input checks (a third of a small site's build time).
    offsets = np.cumsum([0] + [b.n_rows for b in blocks])
    empty_i = np.zeros(0, dtype=np.int64)
    row = np.concatenate([empty_i] + [b.row + off for b, off in zip(blocks, offsets, strict=False)])
    col = np.concatenate([empty_i] + [b.col for b in blocks])
    value = np.concatenate([np.zeros(0)] + [b.value for b in blocks])
    order = np.argsort(col * max(int(offsets[-1]), 1) + row, kind="stable")  # by column, then row
    a_start = np.zeros(cols.total + 1, dtype=np.int32)
    np.cumsum(np.bincount(col, minlength=cols.total), out=a_start[1:])
    lb = np.zeros(cols.total)
    ub = np.full(cols.total, np.inf)
    ub[: cols.n_pairs] = arrays.pair_ub_kw
    ub[cols.shortfall_start : cols.switch_start] = np.repeat(
        arrays.reach_kwh / cols.n_segments, cols.n_segments
    )
    empty = np.zeros(0)
    return LinearProgram(
        cols=cols,
        c=cost_vector(arrays, cols),
        a_start=a_start,
        a_index=row[order].astype(np.int32),
        a_value=value[order].astype(np.float64),
        row_lower=np.concatenate([b.lower for b in blocks]) if blocks else empty,
        row_upper=np.concatenate([b.upper for b in blocks]) if blocks else empty,
        n_eq=arrays.n_sessions if arrays.n_sessions else 0,
        lb=lb,
        ub=ub,
        blocks=tuple(blocks),
        switch_pairs=switch,
    )


def _lp(
    lp: LinearProgram,
    lb: FloatArray,
    ub: FloatArray,
    options: SolveOptions,
    c: FloatArray | None = None,
    *,
    hot: object | None = None,
    basis: highs.Basis | None = None,
    want_basis: bool = False,
    outcome: list[highs.LpResult] | None = None,
) -> tuple[int, FloatArray | None, str]:
    """Solve the LP (with cost vector `c`, `lp.c` by default) with HiGHS; (status, x or None, message).

    Through the backend `options.lp_backend` names; `hot`, `basis` and `want_basis` as in
    `_lp_result`, whose whole result (basis, warm or not) is appended to `outcome` if given.
    """
    res = _lp_result(lp, lb, ub, options, c, hot=hot, basis=basis, want_basis=want_basis)
    if outcome is not None:
        outcome.append(res)
    return res.status, res.x, res.message


def _lp_result(
    lp: LinearProgram,
    lb: FloatArray,
    ub: FloatArray,
    options: SolveOptions,
    c: FloatArray | None = None,
    *,
    hot: object | None = None,
    basis: highs.Basis | None = None,
    want_basis: bool = False,
) -> highs.LpResult:
    """Solve the LP with HiGHS through highspy (`optimizer.highs`), or through scipy (`_lp_scipy`).

    highspy: the dual simplex on the builder's CSC arrays with the options scipy passed (presolve
    off, `lp_time_limit_s`), on this thread's reused solver; `hot` (a token of this solve) re-solves
    the model loaded last with new column bounds from its last basis, `basis` starts a fresh one
    from that basis (falling back to cold on any doubt). From `ipm_min_columns` on, scipy's
    interior point route in either case (off by default).
    """
    cost = lp.c if c is None else c
    if options.lp_backend == "highspy" and lp.cols.total < options.ipm_min_columns:
        return highs.solve_lp(
            cost, (lp.a_start, lp.a_index, lp.a_value), lp.row_lower, lp.row_upper, lb, ub,
            time_limit_s=options.lp_time_limit_s, hot=hot, basis=basis, want_basis=want_basis,
        )
    status, x, message = _lp_scipy(lp, lb, ub, options, cost)
    return highs.LpResult(status=status, x=x, message=message)


def _lp_scipy(
    lp: LinearProgram,
    lb: FloatArray,
    ub: FloatArray,
    options: SolveOptions,
    cost: FloatArray,
) -> tuple[int, FloatArray | None, str]:
    """Solve the LP with HiGHS through scipy; (status, x or None, message).

    Dual simplex through `milp` without integrality (a thinner wrapper than `linprog`: about 2 ms
    less per call, which is most of a small site's time; from LINPROG_MIN_COLUMNS on through
    `linprog`, see below) and without presolve (measured 10-50 %
    faster on every benchmark size up to 7,500 columns, 1.2-1.9x on 5,000 sessions: the rows
    this builder emits are already tight). With the energy weight on the shortfall columns the
    all-zero start is dual feasible and the dual simplex needs about 2-4 iterations per session.
    From `ipm_min_columns` on (off by default): `linprog`'s interior point method with presolve and
    crossover, which still returns a vertex.
    """
    large = lp.cols.total >= min(options.ipm_min_columns, LINPROG_MIN_COLUMNS)
    # linprog takes the rows as A_ub x <= b_ub and A_eq x = b_eq: only rows without a lower bound
    # beside the energy equalities (true of every row this builder emits; checked, not assumed).
    if large and bool(np.all(np.isneginf(lp.row_lower[lp.n_eq :]))):
        # From LINPROG_MIN_COLUMNS on, `linprog` beats `milp`: milp hands HiGHS the integrality of
        # every column as a Python list (0.2-0.3 s at 220,000 columns), linprog none. Measured on
        # the 5,000-session workplace sites: 2.45-2.81 s against 2.87-3.14 s (30 % limit), 1.47 s
        # against 1.49-1.68 s (60 %). Below it milp's thinner input checks win.
        rows = lp.a.tocsr()
        has_ub = lp.n_rows > lp.n_eq
        ipm = lp.cols.total >= options.ipm_min_columns
        res = linprog(
            cost,
            A_ub=rows[lp.n_eq :] if has_ub else None,
            b_ub=lp.row_upper[lp.n_eq :] if has_ub else None,
            A_eq=rows[: lp.n_eq],
            b_eq=lp.row_upper[: lp.n_eq],
            bounds=np.stack([lb, ub], axis=1),
            method="highs-ipm" if ipm else "highs-ds",
            options={"time_limit": options.lp_time_limit_s} if ipm else {
                "time_limit": options.lp_time_limit_s, "presolve": False},
        )
    else:
        res = milp(
            cost,
            bounds=Bounds(lb, ub),
            constraints=_constraints(lp),
            options={"time_limit": options.lp_time_limit_s, "presolve": False},
        )
    x = None if res.x is None else np.asarray(res.x, dtype=np.float64)
    return int(res.status), x, str(res.message)


def _constraints(lp: LinearProgram) -> list[LinearConstraint]:
    """The LP's rows as one scipy constraint (none for an empty matrix)."""
    return [LinearConstraint(lp.a, lp.row_lower, lp.row_upper)] if lp.n_rows else []


def _milp(
    lp: LinearProgram,
    c: FloatArray,
    lb: FloatArray,
    integrality: npt.NDArray[np.uint8],
    options: SolveOptions,
) -> tuple[int, FloatArray | None, str]:
    """Solve the MILP with HiGHS through `milp`; return (scipy status, x or None, message)."""
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(lb, lp.ub),
        constraints=_constraints(lp),
        options={"time_limit": options.milp_time_limit_s, "mip_rel_gap": options.milp_rel_gap},
    )
    x = None if res.x is None else np.asarray(res.x, dtype=np.float64)
    return int(res.status), x, str(res.message)


def _power(arrays: SiteArrays, pairs_kw: FloatArray | None) -> FloatArray | None:
    """The (N, T) power matrix of the pair powers of a solution, cleaned of solver noise."""
    if (
        pairs_kw is None
        or pairs_kw.shape[0] < arrays.n_pairs
        or not np.isfinite(pairs_kw[: arrays.n_pairs]).all()
    ):
        return None
    p = np.clip(pairs_kw[: arrays.n_pairs], 0.0, arrays.pair_ub_kw)
    p[p < NOISE_KW] = 0.0
    return arrays.matrix(p)


def jain_index(served: FloatArray) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2) of served fractions; None if all are 0."""
    square = float(np.sum(served**2))
    if served.size == 0 or square <= 0.0:
        return None
    return float(np.sum(served) ** 2 / (served.size * square))


def plan_from_power(
    problem: SiteProblem,
    arrays: SiteArrays,
    power_kw: FloatArray,
    *,
    status: SolveStatus,
    path: SolvePath,
    stats: SolveStats,
    warnings: list[str],
) -> Plan:
    """Wrap an (N, T) power matrix that passed the checks into a `Plan`."""
    energy = power_kw.sum(axis=1) * arrays.slot_h
    shortfall = np.maximum(arrays.need_kwh - energy, 0.0)
    site_kw = power_kw.sum(axis=0)
    has_need = arrays.need_kwh > 0
    served = np.minimum(energy[has_need] / arrays.need_kwh[has_need], 1.0)
    # Switching counts increases from one present slot to the next, not the start at arrival.
    increases = np.maximum(np.diff(power_kw, axis=1), 0.0)
    after_first = np.arange(1, arrays.n_slots)[None, :] > arrays.first_slot[:, None]
    slot_energy = site_kw * arrays.slot_h
    objective = ObjectiveTerms(
        delivered_kwh=float(energy.sum()),
        need_kwh=float(arrays.need_kwh.sum()),
        reachable_kwh=float(arrays.reach_kwh.sum()),
        cost=None if arrays.price_per_kwh is None else float(slot_energy @ arrays.price_per_kwh),
        co2_g=None if arrays.co2_g_per_kwh is None else float(slot_energy @ arrays.co2_g_per_kwh),
        switching_kw=float(np.sum(increases[after_first])),
    )
    # One conversion to Python floats per array, not per session.
    sessions = tuple(
        SessionPlan(id=s.id, power_kw=tuple(row), energy_kwh=e, shortfall_kwh=short)
        for s, row, e, short in zip(
            problem.sessions, power_kw.tolist(), energy.tolist(), shortfall.tolist(), strict=True
        )
    )
    return Plan(
        status=status,
        sessions=sessions,
        site_power_kw=tuple(site_kw.tolist()),
        stats=stats,
        path=path,
        jain_index=jain_index(served),
        warnings=tuple(warnings),
        objective=objective,
        start=problem.start,
        slot_minutes=problem.slot_minutes,
    )


class _Routes:
    """The solver routes of one solve, sharing the LP and collecting warnings."""

    def __init__(
        self,
        arrays: SiteArrays,
        lp: LinearProgram,
        options: SolveOptions,
        start: highs.Basis | None = None,
        want_basis: bool = False,
    ) -> None:
        self.arrays = arrays
        self.lp = lp
        self.options = options
        self.warnings: list[str] = []
        # Names this solve's model in the thread's HiGHS: the dive's re-solves are hot starts.
        self.token = object()
        self.start = start  # the warm start of the relaxation (from the previous cycle), if any
        self.want_basis = want_basis
        self.basis: highs.Basis | None = None  # the relaxation's optimal basis, when wanted
        self.warm = False  # whether the relaxation's answer came from `start`
        self._last: highs.LpResult | None = None

    def _solve(self, lb: FloatArray, ub: FloatArray, c: FloatArray | None = None) -> tuple[int, FloatArray | None, str]:
        """One LP solve of this site (`c`: other costs than the LP's): hot when the thread's HiGHS
        still holds this model."""
        outcome: list[highs.LpResult] = []
        extra = {"c": c} if c is not None else {}
        result = _lp(
            self.lp, lb, ub, self.options, **extra,
            hot=self.token, basis=self.start, want_basis=self.want_basis, outcome=outcome,
        )
        self._last = outcome[-1] if outcome else None
        return result

    def checked(self, power: FloatArray | None, route: str) -> FloatArray | None:
        """`power` if it passes every hard check, else None (with a warning naming the breach)."""
        if power is None:
            return None
        broken = violations(self.arrays, power)
        if broken:
            self.warnings.append(f"{route} result rejected by the plan check: " + "; ".join(broken))
            return None
        return power

    def optimum(self, lb: FloatArray, ub: FloatArray) -> tuple[int, FloatArray | None, str]:
        """An optimum of the LP with these column bounds: (scipy status, x or None, message).

        From `reduced_energy_min_columns` columns on, first with the energy weight reduced to
        W_energy / ENERGY_MARGIN (`reduced_energy_costs`, several times faster on large congested
        sites): its optimum also minimises the full-weight objective `c = c_reduced + delta x
        total shortfall` whenever it delivers the most energy the limits allow, which the
        max-flow check of `optimizer.flow` decides exactly when the limits form a network. In
        every other case (phase rows, a failed solve, an augmenting path) the LP is solved with
        the full weight; an exception in the shortcut only costs that second solve.
        """
        lp = self.lp
        if lp.cols.total >= self.options.reduced_energy_min_columns:
            try:
                net = network_rows(lp.blocks, lp.cols.n_pairs)  # None: no proof possible, skip
                if net is not None:
                    status, x, message = self._solve(lb, ub, reduced_energy_costs(lp.c, lp.cols))
                    if (
                        status == _OPTIMAL
                        and x is not None
                        and np.isfinite(x).all()
                        and energy_is_maximal(self.arrays, lp.cols, net, x, lb, ub)
                    ):
                        return status, x, message
            except Exception as exc:  # noqa: BLE001 - the full-weight solve below still plans the site
                self.warnings.append(f"reduced energy weight shortcut failed ({type(exc).__name__}: {exc})")
        return self._solve(lb, ub)

    def relaxation(self) -> FloatArray | None:
        """The LP without minimum rates: its solution vector, or None (with a warning)."""
        self._last = None
        status, x, message = self.optimum(self.lp.lb, self.lp.ub)
        last, self.start = self._last, None  # the dive's re-solves start hot, not from the old basis
        if status != _OPTIMAL or x is None:
            self.warnings.append(f"LP solver gave no optimum (status {status}: {message})")
            return None
        if last is not None and last.x is x:
            self.basis, self.warm = last.basis, last.warm
        return x

    def lp_plan(self) -> FloatArray | None:
        """The checked LP plan (no minimum rates in the problem)."""
        x = self.relaxation()
        return self.checked(_power(self.arrays, x), "LP")

    def milp(self) -> tuple[FloatArray | None, bool]:
        """The checked MILP plan with semi-continuous minimum rates, and whether it is proven optimal.

        The MILP leaves the switching rows out: they make branch and bound several times slower
        (measured), and the order tie-break of the objective still keeps allocations in blocks.
        """
        arrays = self.arrays
        lp = (
            self.lp
            if not self.lp.cols.n_switch
            else build(arrays, msgspec.structs.replace(self.options, smoothing=False))
        )
        n_pairs = lp.cols.n_pairs
        pair_min = arrays.min_kw[arrays.pair_session]
        semi = np.flatnonzero(pair_min > 0)
        integrality = np.zeros(lp.cols.total, dtype=np.uint8)
        integrality[semi] = 2  # semi-continuous: 0, or between its bounds
        lb = lp.lb.copy()
        lb[semi] = pair_min[semi]
        # The textbook costs (energy on the power columns), not the LP's shifted ones: the same
        # optimum, but `milp_rel_gap` is relative to the objective value, which the shift changes,
        # and this route keeps the stopping rule it was tuned with.
        textbook = cost_vector(arrays, lp.cols, energy_on_shortfall=False)
        status, x, message = _milp(lp, textbook, lb, integrality, self.options)
        if x is None or status not in (_OPTIMAL, _LIMIT):
            self.warnings.append(f"MILP found no solution (status {status}: {message})")
            return None, False
        if status == _LIMIT:
            self.warnings.append(f"MILP stopped at its limit; using its incumbent ({message})")
        power = _power(arrays, x[:n_pairs])
        # HiGHS' MIP feasibility tolerance (1e-6) can leave a row a few mW over: take it back.
        power = None if power is None else trim_to_limits(arrays, power)
        return self.checked(power, "MILP"), status == _OPTIMAL

    def repair(self) -> tuple[FloatArray | None, bool]:
        """The dive of `optimizer.repair`, and whether its plan is proven optimal.

        LP relaxation, then up to `repair_rounds` re-solves, each after fixing every power still
        between 0 and its minimum on or off; whatever is still in between after the last one (or
        after a re-solve that failed) is rounded by `round_to_minimum`. The relaxation's optimum
        (its `score`, which is the LP's objective value) is a lower bound on every plan that
        respects the minimum rates, so a checked plan within `milp_rel_gap` of it (relative to the
        plan's value, as HiGHS measures its gap) is optimal by the MILP's own stopping rule.
        """
        lp, arrays = self.lp, self.arrays
        x = self.relaxation()
        if x is None:
            return None, False
        bound = self.objective(arrays.matrix(_pairs(arrays, x, clear_noise=False)))
        n_pairs = lp.cols.n_pairs
        pair_min = arrays.min_kw[arrays.pair_session]
        lb, ub = lp.lb.copy(), lp.ub.copy()
        p = _pairs(arrays, x)
        for _ in range(self.options.repair_rounds):
            if not below_minimum(arrays, p).any():
                break
            lb[:n_pairs], ub[:n_pairs] = fix_below_minimum(arrays, p, lb[:n_pairs], ub[:n_pairs])
            status, x, message = self.optimum(lb, ub)
            if status != _OPTIMAL or x is None:
                self.warnings.append(
                    f"repair re-solve gave no optimum (status {status}: {message}); rounding the last one"
                )
                break
            # Noise must not undo a fixed minimum or a fixed 0.
            p = np.clip(_pairs(arrays, x), lb[:n_pairs], ub[:n_pairs])
        if below_minimum(arrays, p).any():
            p, _ = round_to_minimum(arrays, p)
        # Within MIN_RATE_TOLERANCE under the minimum is the minimum; what that and the LP's
        # tolerances leave above a limit is taken back from the powers above their minimum.
        p = np.where(p > 0, np.maximum(p, pair_min), 0.0)
        power = _power(arrays, p)
        power = self.checked(None if power is None else trim_to_limits(arrays, power), "LP+repair")
        if power is None:
            return None, False
        value = self.objective(power)
        return power, value - bound <= self.options.milp_rel_gap * max(abs(value), 1.0)

    def objective(self, power_kw: FloatArray) -> float:
        """`score` of an (N, T) power matrix under the LP's own objective (switching only if it has it)."""
        return score(self.arrays, power_kw, self.options.fairness_segments, switching=self.lp.cols.n_switch > 0)


def _pairs(arrays: SiteArrays, x: FloatArray, *, clear_noise: bool = True) -> FloatArray:
    """The pair powers of a solution vector within [0, max], solver noise cleared unless told not to."""
    p = np.clip(x[: arrays.n_pairs], 0.0, arrays.pair_ub_kw)
    if clear_noise:
        p[p < NOISE_KW] = 0.0
    return p


def solve(problem: SiteProblem, options: SolveOptions | None = None, *, warm: WarmStart | None = None) -> Plan:
    """Plan one site: the best plan within every hard limit, or the safe equal share.

    Args:
        problem: The site, its sessions and signals (validated here).
        options: Solver limits; `SolveOptions()` when None.
        warm: The basis of the previous cycle's plan of this site (`solve_with_basis`), to start
            the LP from; None: a cold start. It changes how fast, never what: any doubt about it
            and the LP is solved from cold.

    Returns:
        A plan that passed every hard check. `status` says how it was obtained (OPTIMAL,
        FEASIBLE, FALLBACK), `path` by which route, `warnings` what the caller should know.

    Raises:
        ProblemError: The problem is malformed (the message names the field).
        ValueError: `options.fairness_segments` is below 1.
    """
    return _plan(problem, options, warm, want_basis=False)[0]


def solve_with_basis(
    problem: SiteProblem, options: SolveOptions | None = None, warm: WarmStart | None = None
) -> tuple[Plan, WarmStart | None]:
    """`solve`, and the optimal basis of the LP (relaxation) behind the plan for the next cycle.

    The basis is None when no LP was solved to optimality (the MILP alone planned a tiny
    minimum-rate site, the FALLBACK), with the scipy backend, or when the slot grid is not in
    whole seconds. Pass it as `warm` when the site is planned again: its columns and rows are
    keyed by session id and absolute slot start (`optimizer.warm`), so it still fits after the
    horizon moved on and sessions arrived or left.
    """
    return _plan(problem, options, warm, want_basis=True)


def _plan(
    problem: SiteProblem, options: SolveOptions | None, warm: WarmStart | None, *, want_basis: bool
) -> tuple[Plan, WarmStart | None]:
    """`solve_with_basis`; the basis is read only when `want_basis`."""
    options = options if options is not None else SolveOptions()
    if options.fairness_segments < 1:
        raise ValueError(f"fairness_segments must be >= 1, got {options.fairness_segments}")
    validate_problem(problem)

    t0 = time.perf_counter()
    arrays = site_arrays(problem)
    warnings = list(arrays.warnings)
    lp: LinearProgram | None = None
    try:
        lp = build(arrays, options)
    except Exception as exc:  # noqa: BLE001 - e.g. MemoryError on a huge site: still plan the cycle
        warnings.append(f"building the LP failed ({type(exc).__name__}: {exc})")
    build_s = time.perf_counter() - t0

    routes: _Routes | None = None

    def finish(power: FloatArray, status: SolveStatus, path: SolvePath) -> tuple[Plan, WarmStart | None]:
        stats = SolveStats(
            build_s=build_s,
            solve_s=time.perf_counter() - t1,
            variables=lp.cols.total if lp is not None else 0,
            constraints=lp.n_rows if lp is not None else 0,
        )
        plan = plan_from_power(problem, arrays, power, status=status, path=path, stats=stats, warnings=warnings)
        if routes is None or lp is None or routes.basis is None or status == SolveStatus.FALLBACK:
            return plan, None
        try:
            kept = capture(
                problem, arrays, lp.cols.n_segments, lp.switch_pairs, lp.blocks, routes.basis, warm=routes.warm
            )
        except Exception as exc:  # noqa: BLE001 - the plan stands; the next cycle starts cold
            warnings.append(f"keeping the basis failed ({type(exc).__name__}: {exc})")
            kept = None
        return plan, kept

    t1 = time.perf_counter()
    if lp is None:
        return finish(_fallback(arrays, warnings), SolveStatus.FALLBACK, SolvePath.FALLBACK)
    if arrays.n_pairs == 0:  # nobody can draw power: the zero plan is the optimum
        return finish(np.zeros((arrays.n_sessions, arrays.n_slots)), SolveStatus.OPTIMAL, SolvePath.LP)

    start = None
    if warm is not None and options.lp_backend == "highspy":
        try:
            start = restore(
                warm, problem, arrays, lp.cols.n_segments, lp.switch_pairs, lp.blocks, lp.ub, lp.row_upper
            )
        except Exception:  # noqa: BLE001 - a basis that does not map is a cold start, not an error
            start = None
    routes = _Routes(arrays, lp, options, start=start, want_basis=want_basis)
    n_semi = int(np.count_nonzero(arrays.min_kw[arrays.pair_session] > 0))
    try:
        if n_semi == 0:
            power = routes.lp_plan()
            if power is not None:
                warnings += routes.warnings
                return finish(power, SolveStatus.OPTIMAL, SolvePath.LP)
        else:
            # The dive first unless the MILP is tiny: a few LPs, and on most sites its plan already
            # meets the MILP's own stopping rule against the relaxation's bound, so branch and bound
            # is not needed (README, "Minimum rates").
            repaired: FloatArray | None = None
            if n_semi > options.milp_first_max_variables:
                repaired, repaired_optimal = routes.repair()
                if repaired is not None and repaired_optimal:
                    warnings += routes.warnings
                    return finish(repaired, SolveStatus.OPTIMAL, SolvePath.LP_REPAIR)
            milp_power, proven = None, False
            if n_semi <= options.milp_max_variables:
                milp_power, proven = routes.milp()
            else:
                routes.warnings.append(
                    f"{n_semi} minimum-rate variables exceed milp_max_variables={options.milp_max_variables}"
                )
            if milp_power is not None and proven:
                warnings += routes.warnings
                return finish(milp_power, SolveStatus.OPTIMAL, SolvePath.MILP)
            # An unproven incumbent can be poor: keep whichever of it and the repair scores better.
            candidates = []
            if milp_power is not None:
                candidates.append(
                    (
                        score(arrays, milp_power, options.fairness_segments),
                        0,
                        milp_power,
                        SolvePath.MILP_INCUMBENT,
                    )
                )
            if n_semi <= options.milp_first_max_variables:
                repaired, _ = routes.repair()
            if repaired is not None:
                candidates.append(
                    (score(arrays, repaired, options.fairness_segments), 1, repaired, SolvePath.LP_REPAIR)
                )
            if candidates:
                _, _, power, path = min(candidates, key=lambda c: (c[0], c[1]))
                warnings += routes.warnings
                return finish(power, SolveStatus.FEASIBLE, path)
    except Exception as exc:  # noqa: BLE001 - the contract is a plan every cycle, whatever the solver does
        routes.warnings.append(f"solver raised {type(exc).__name__}: {exc}")

    warnings += routes.warnings
    return finish(_fallback(arrays, warnings), SolveStatus.FALLBACK, SolvePath.FALLBACK)


def _fallback(arrays: SiteArrays, warnings: list[str]) -> FloatArray:
    """The checked equal share; all zeros (always valid) if it could not be made or checked."""
    zero = np.zeros((arrays.n_sessions, arrays.n_slots))
    try:
        power = equal_share(arrays)
        broken = violations(arrays, power)
    except Exception as exc:  # noqa: BLE001 - zero power is the one plan that is always valid
        warnings.append(f"fallback plan failed ({type(exc).__name__}: {exc}), planning zero")
        return zero
    if broken:  # safe by construction, so this is a bug
        warnings.append("fallback plan rejected by the plan check, planning zero: " + "; ".join(broken))
        return zero
    warnings.append("using the FALLBACK equal-share plan")
    return power
