"""HiGHS through highspy: one reused solver per thread, an LP in, (status, x, message) and its basis out.

`solve_lp` hands the CSC arrays the builder made straight to HiGHS (no scipy wrapper: on a
10-session site that wrapper cost as much as HiGHS itself) with the options `scipy.optimize.milp`
passed before: dual simplex, presolve off, the LP time limit, no output. The model stays loaded
in the thread's solver after a call, so

* a re-solve of the same model (`hot`, the same token as the last call) with other column bounds,
  as the minimum-rate dive does round after round, only changes those bounds: HiGHS keeps its
  basis and factorisation and its dual simplex goes on from the last optimum (a hot start);
* a starting `basis` (a warm start from the previous planning cycle, `optimizer.warm`) is passed
  with `setBasis`; if HiGHS rejects it or the warm solve does not end optimal, the same LP is
  solved again from the cold start, so a bad basis costs time, never the answer.

Statuses are those of `scipy.optimize.linprog`/`milp` (0 optimal, 1 time or iteration limit, 2
infeasible, 3 unbounded, 4 other), so both backends read alike to `optimizer.solve`.

Thread safety: each thread has its own `Highs` (a `threading.local`), created on first use; a
child process made by `fork` starts without the parent's (a solver copied mid-state with the
parent's memory is not one to trust).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt

try:
    # The bare binding: the public `highspy.Highs` prints HiGHS's banner on stdout (which carries
    # `scsp solve`'s JSON) before any option can silence it, and wraps every call in Python
    # callbacks. Verified with highspy 1.12 and 1.16.
    from highspy._core import _Highs
except ImportError:  # a highspy that moved its core: the public class, silenced as early as it can be
    _Highs = highspy.Highs  # type: ignore[misc]

from optimizer.arrays import FloatArray

__all__ = ["BASIC", "LOWER", "UPPER", "Basis", "Csc", "LpResult", "solve_lp"]

Int8Array = npt.NDArray[np.int8]
Int32Array = npt.NDArray[np.int32]
# A column-wise matrix as HiGHS takes it: column starts (n + 1), row indices, values.
Csc = tuple[Int32Array, Int32Array, FloatArray]

# HiGHS basis statuses (HighsBasisStatus values): nonbasic at its lower bound, basic, nonbasic
# at its upper bound. `kZero` (a free nonbasic variable) never occurs: every column and row of
# the site LP has a finite bound.
LOWER, BASIC, UPPER = 0, 1, 2

_STATUS = highspy.HighsModelStatus
# HiGHS model status -> scipy status code, as `scipy.optimize.milp` maps them.
_LIMITS = (_STATUS.kTimeLimit, _STATUS.kIterationLimit, _STATUS.kSolutionLimit, _STATUS.kInterrupt)
_BASIS_STATUS = tuple(highspy.HighsBasisStatus(k) for k in range(5))


@dataclass(frozen=True, slots=True)
class Basis:
    """A simplex basis: the HiGHS status (`LOWER`, `BASIC`, `UPPER`) of every column and row."""

    col: Int8Array
    row: Int8Array


@dataclass(frozen=True, slots=True)
class LpResult:
    """What one solve gave: scipy status code, solution (None unless optimal), message, basis.

    `basis` is the optimal basis when the caller asked for it, else None. `warm` says whether the
    answer came from the starting basis the caller gave (False: cold, or the basis was refused).
    """

    status: int
    x: FloatArray | None
    message: str
    basis: Basis | None = None
    warm: bool = False


class _Solver:
    """One thread's HiGHS instance and what it holds: the token of the loaded model, its bounds."""

    def __init__(self) -> None:
        # The lean base class: `highspy.Highs` adds Python callbacks and prints HiGHS' banner
        # on stdout when it is created, and stdout carries `scsp solve`'s JSON.
        self.highs = _Highs()
        self.highs.setOptionValue("output_flag", False)
        self.token: object | None = None
        self.lb: FloatArray = np.zeros(0)
        self.ub: FloatArray = np.zeros(0)
        self.cost: FloatArray = np.zeros(0)
        self.row_lower: FloatArray = np.zeros(0)
        self.row_upper: FloatArray = np.zeros(0)

    def load(self, c: FloatArray, a: Csc, row_lower: FloatArray, row_upper: FloatArray,
             lb: FloatArray, ub: FloatArray, token: object | None) -> None:
        """Pass the model to HiGHS (which drops any previous basis: a cold start)."""
        start, index, value = a
        n_cols, n_rows = int(c.size), int(row_upper.size)
        self.token = None
        status = self.highs.passModel(
            n_cols, n_rows, int(index.size), 1, 1, 0.0,  # column-wise matrix, minimise, no offset
            c, lb, ub, row_lower, row_upper, start, index, value,
            np.zeros(n_cols, dtype=np.int32),  # every column continuous
        )
        if status == highspy.HighsStatus.kError:
            raise ValueError("HiGHS rejected the model")
        self.token, self.cost, self.lb, self.ub = token, c.copy(), lb.copy(), ub.copy()
        self.row_lower, self.row_upper = row_lower, row_upper

    def rebound(self, lb: FloatArray, ub: FloatArray) -> None:
        """Change the column bounds that differ from the loaded ones, keeping HiGHS' basis."""
        changed = np.flatnonzero((lb != self.lb) | (ub != self.ub)).astype(np.int32)
        if changed.size:
            self.highs.changeColsBounds(int(changed.size), changed, lb[changed], ub[changed])
            self.lb, self.ub = lb.copy(), ub.copy()

    def run(self, time_limit_s: float) -> None:
        """Run the dual simplex, presolve off, for at most `time_limit_s` seconds."""
        highs = self.highs
        highs.setOptionValue("presolve", "off")
        # HiGHS checks `time_limit` against its run clock, which adds up over every `run` of an
        # instance (measured: the 31st solve of 15 ms on one instance stopped at a 0.5 s limit).
        highs.setOptionValue("time_limit", float(highs.getRunTime()) + time_limit_s)
        highs.run()

    def result(self, want_basis: bool, warm: bool) -> LpResult:
        """The outcome of the last run."""
        highs = self.highs
        model_status = highs.getModelStatus()
        message = str(highs.modelStatusToString(model_status))
        if model_status != _STATUS.kOptimal:
            code = 1 if model_status in _LIMITS else 2 if model_status == _STATUS.kInfeasible else (
                3 if model_status in (_STATUS.kUnbounded, _STATUS.kUnboundedOrInfeasible) else 4)
            return LpResult(status=code, x=None, message=message, warm=warm)
        solution = highs.getSolution()
        x = np.array(solution.col_value, dtype=np.float64)
        basis = self.basis(x, np.array(solution.row_value, dtype=np.float64)) if want_basis else None
        return LpResult(status=0, x=x, message=message, basis=basis, warm=warm)

    def basis(self, x: FloatArray, row_value: FloatArray) -> Basis | None:
        """The optimal basis, read from the basic index list and the solution.

        `getBasis` converts every status to a Python object (50 ms at 200,000 columns); the basic
        index list is one array of `num_row` entries, and a nonbasic variable sits exactly at one
        of its bounds, which the solution tells.
        """
        basic_variables = getattr(self.highs, "getBasicVariables", None)  # highspy >= 1.8 (untyped)
        if basic_variables is None:
            full = self.highs.getBasis()
            return Basis(
                col=np.array([int(k) for k in full.col_status], dtype=np.int8),
                row=np.array([int(k) for k in full.row_status], dtype=np.int8),
            )
        status, basic = basic_variables()
        if status == highspy.HighsStatus.kError:
            return None
        col = np.where(np.isfinite(self.ub) & (x >= self.ub) & (self.ub > self.lb), UPPER, LOWER).astype(np.int8)
        row_lower, row_upper = self.row_lower, self.row_upper
        # A nonbasic row sits at the bound it is nearer to (an equality row: its one value).
        at_upper = np.isfinite(row_upper) & (
            ~np.isfinite(row_lower) | (np.abs(row_value - row_upper) < np.abs(row_value - row_lower))
        )
        # HiGHS reports a nonbasic equality row at its upper bound (measured): so do we.
        row = np.where(at_upper | (row_upper == row_lower), UPPER, LOWER).astype(np.int8)
        basic = np.asarray(basic, dtype=np.int64)
        col[basic[basic >= 0]] = BASIC
        row[-basic[basic < 0] - 1] = BASIC
        return Basis(col=col, row=row)

    def start_from(self, basis: Basis) -> bool:
        """Give HiGHS a starting basis; False if it refuses it."""
        given = highspy.HighsBasis()
        given.col_status = [_BASIS_STATUS[k] for k in basis.col.tolist()]
        given.row_status = [_BASIS_STATUS[k] for k in basis.row.tolist()]
        given.valid = True
        return bool(self.highs.setBasis(given) == highspy.HighsStatus.kOk)


_local = threading.local()


def _solver() -> _Solver:
    """This thread's solver, created on first use."""
    solver: _Solver | None = getattr(_local, "solver", None)
    if solver is None:
        solver = _Solver()
        _local.solver = solver
    return solver


def _forget_after_fork() -> None:
    """A forked child starts without the parent's HiGHS instance."""
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_forget_after_fork)


def solve_lp(
    c: FloatArray,
    a: Csc,
    row_lower: FloatArray,
    row_upper: FloatArray,
    lb: FloatArray,
    ub: FloatArray,
    *,
    time_limit_s: float,
    hot: object | None = None,
    basis: Basis | None = None,
    want_basis: bool = False,
) -> LpResult:
    """Solve min c @ x, row_lower <= a @ x <= row_upper, lb <= x <= ub with HiGHS' dual simplex.

    Args:
        c: (n,) costs.
        a: (m, n) constraint matrix, column-wise: (starts, row indices, values), int32 indices.
        row_lower: (m,) row lower bounds (-inf for none).
        row_upper: (m,) row upper bounds.
        lb: (n,) column lower bounds.
        ub: (n,) column upper bounds (inf for none).
        time_limit_s: Wall-clock budget of this solve (s).
        hot: A token naming the model (same rows, matrix and costs): when the thread's solver
            still holds the model of this token with the same costs, only the column bounds are
            changed and the simplex goes on from its last basis. None: load the model afresh.
        basis: A starting basis for a freshly loaded model (ignored on a hot start).
        want_basis: Return the optimal basis too.

    Returns:
        The result; `x` is None unless the status is 0 (optimal).
    """
    solver = _solver()
    if hot is not None and solver.token is hot and np.array_equal(solver.cost, c):
        solver.rebound(lb, ub)
        solver.run(time_limit_s)
        return solver.result(want_basis, warm=False)
    solver.load(c, a, row_lower, row_upper, lb, ub, hot)
    if basis is not None and basis.col.size == c.size and basis.row.size == row_upper.size:
        if solver.start_from(basis):
            solver.run(time_limit_s)
            warm = solver.result(want_basis, warm=True)
            if warm.status == 0:
                return warm
        solver.load(c, a, row_lower, row_upper, lb, ub, hot)  # doubt: start again from cold
    solver.run(time_limit_s)
    return solver.result(want_basis, warm=False)
