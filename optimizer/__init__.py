"""optimizer: the per-site charging plan as a linear program (pure: numpy, scipy, highspy, msgspec).

The service calls one function::

    from optimizer import SiteProblem, SolveOptions, Plan, solve

    plan: Plan = solve(problem, SolveOptions(milp_time_limit_s=2.0))

Re-planning a site every cycle, `solve_with_basis(problem, options, warm)` also returns the LP's
optimal basis as a `WarmStart` (compact, msgspec-encodable) to start the next cycle from.

* `SiteProblem` (in): slot grid (`start`, `slot_minutes`, `n_slots`), the site's grid connection,
  circuits, EVSEs, sessions with their need, maxima, minimum rate and preference, and optional
  price and carbon signals. It is also the JSON that `scsp solve` reads (`decode_problem`).
* `Plan` (out): `status` (OPTIMAL, FEASIBLE, FALLBACK), per-session `power_kw` per slot with
  delivered `energy_kwh` and `shortfall_kwh`, `site_power_kw`, solver `stats`, the `path` taken,
  `jain_index`, `warnings` and the `objective` terms. Every plan returned passed the hard checks
  (`optimizer.check`); `solve` never returns without a plan for a valid problem.
* `ProblemError(ValueError)` names the offending field of a malformed problem
  (`sessions[3].departure_slot`).

The formulation (variables, constraints, weights, fairness rule, minimum-rate path, fallback) and
the benchmark figures are in `optimizer/README.md`.
"""

from optimizer.io import decode_plan, decode_problem, encode_plan
from optimizer.model import (
    BasisRuns,
    Circuit,
    Evse,
    ObjectiveTerms,
    Phase,
    Plan,
    ProblemError,
    ProfileType,
    SessionPlan,
    SessionRequest,
    Site,
    SiteProblem,
    SolveOptions,
    SolvePath,
    SolveStats,
    SolveStatus,
    WarmStart,
)
from optimizer.solve import solve, solve_with_basis
from optimizer.validate import validate_problem

__all__ = [
    "BasisRuns",
    "Circuit",
    "Evse",
    "ObjectiveTerms",
    "Phase",
    "Plan",
    "ProblemError",
    "ProfileType",
    "SessionPlan",
    "SessionRequest",
    "Site",
    "SiteProblem",
    "SolveOptions",
    "SolvePath",
    "SolveStats",
    "SolveStatus",
    "WarmStart",
    "decode_plan",
    "decode_problem",
    "encode_plan",
    "solve",
    "solve_with_basis",
    "validate_problem",
]
