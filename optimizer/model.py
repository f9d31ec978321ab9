"""The optimizer's input (`SiteProblem`), options (`SolveOptions`) and output (`Plan`).

All are frozen msgspec Structs. Field names are the `scsp solve` JSON contract verbatim, and every
quantity carries its unit in its name (`limit_kw`, `energy_kwh`, `slot_minutes`). Time is a slot
index counted from `SiteProblem.start`; a session is present in slots `[arrival_slot, departure_slot)`.

A value typed `float | tuple[float, ...]` is either one number for every slot or one number per slot
(exactly `n_slots` of them); `optimizer.validate` checks the lengths and values.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

import msgspec

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
    "SolvePath",
    "SolveOptions",
    "SolveStats",
    "SolveStatus",
    "WarmStart",
]

# One number for every slot, or one number per slot.
PerSlot = float | tuple[float, ...]


class ProblemError(ValueError):
    """A malformed problem: `path` names the offending field, e.g. `sessions[3].departure_slot`."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class ProfileType(StrEnum):
    """A session's charging preference (the OCPI 2.2.1 `ProfileType` values)."""

    CHEAP = "CHEAP"
    FAST = "FAST"
    GREEN = "GREEN"
    REGULAR = "REGULAR"


class Phase(StrEnum):
    """The grid phase a single-phase EVSE is wired to."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


class Site(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The grid connection of one site.

    Attributes:
        limit_kw: Import limit for all loads together (kW), per slot or one value.
        phase_limit_a: Current limit on each of L1, L2 and L3 (A), per slot or one value; None: none.
        voltage_v: Nominal phase-to-neutral voltage (V); converts phase currents to power.
        fixed_load_kw: Uncontrolled load behind the same connection (kW), spread evenly over the
            three phases; None: none.
        failsafe_kw: The site limit a charge point falls back to when it loses us (kW); carried for
            the profile builder, not used by the optimizer.
    """

    limit_kw: PerSlot
    phase_limit_a: PerSlot | None = None
    voltage_v: float = 230.0
    fixed_load_kw: PerSlot | None = None
    failsafe_kw: float | None = None


class Circuit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group of EVSEs behind one breaker or cable: their sum stays within `limit_kw` (kW)."""

    id: str
    evses: tuple[str, ...]
    limit_kw: PerSlot


class Evse(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One EVSE.

    Attributes:
        id: EVSE id, referenced by circuits and sessions.
        max_kw: The most this EVSE delivers to one session (kW).
        phases: 1, 2 or 3 grid phases used (AC). A 2-phase EVSE uses L1 and L2.
        phase: The phase a single-phase EVSE is wired to.
        dc: A DC charger; it draws from the grid as a balanced three-phase load whatever `phases` says.
    """

    id: str
    max_kw: float
    phases: int = 3
    phase: Phase = Phase.L1
    dc: bool = False


class SessionRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One charging session to plan (the `sessions[]` items of the problem).

    Attributes:
        id: Session id, used verbatim in the plan.
        evse: Id of the EVSE it charges at.
        arrival_slot: First slot the vehicle is present (>= 0).
        departure_slot: First slot it is gone (> arrival_slot); may lie beyond the horizon.
        energy_kwh: Energy still needed by departure (kWh).
        max_kw: The vehicle's maximum charging power (kW).
        min_kw: Lowest power it can charge at (kW); it charges 0 or at least this. 0: no minimum.
        profile_type: The driver's preference.
        previous_kw: What the previous plan gave this session in each slot of this horizon (kW), or
            None. Among plans that are equally good by every priority above smoothness, the one
            closest to it wins, so re-planning with unchanged inputs reproduces the plan (and the
            profiles already sent stay valid).
    """

    id: str
    evse: str
    arrival_slot: int
    departure_slot: int
    energy_kwh: float
    max_kw: float
    min_kw: float = 0.0
    profile_type: ProfileType = ProfileType.REGULAR
    previous_kw: tuple[float, ...] | None = None


class SiteProblem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the optimizer needs to plan one site over one horizon (the `scsp solve` input).

    Attributes:
        start: Start of slot 0 (aware datetime).
        slot_minutes: Length of every slot (min).
        n_slots: Number of slots in the horizon.
        site: The grid connection.
        circuits: Sub-circuits with their own limits.
        evses: All EVSEs sessions may reference.
        sessions: The sessions to plan.
        price_per_kwh: Energy price (currency/kWh), per slot or one value; None: unknown.
        co2_g_per_kwh: Carbon intensity (g/kWh), per slot or one value; None: unknown.
    """

    start: datetime
    slot_minutes: float
    n_slots: int
    site: Site
    evses: tuple[Evse, ...]
    sessions: tuple[SessionRequest, ...]
    circuits: tuple[Circuit, ...] = ()
    price_per_kwh: PerSlot | None = None
    co2_g_per_kwh: PerSlot | None = None


class SolveOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How hard to try; the defaults suit a 300 s planning cycle of many sites.

    Attributes:
        milp_time_limit_s: Wall-clock budget of the minimum-rate MILP (s). Two seconds keeps a
            cycle of many sites responsive; when it runs out the best incumbent (FEASIBLE) or the
            LP relaxation plus repair is used.
        milp_max_variables: Above this many semi-continuous power variables (session-slot pairs
            with a minimum rate) the MILP is skipped for the LP plus repair: branch and bound on a
            problem that size rarely proves anything within the time limit.
        milp_rel_gap: Relative optimality gap at which the MILP stops (dimensionless). The energy
            term dominates the objective, so the gap must be far below the preference terms'
            share of it (about 1e-5) for them to still count.
        lp_time_limit_s: Safety budget of each LP (s); far above any measured solve, so it only
            stops a pathological case, which then gets the FALLBACK plan.
        fairness_segments: Number K of linear pieces of the fairness penalty; the served
            fractions of sessions competing for the same capacity end within 1/K of each other.
        smoothing: Penalise increases of a session's power from one slot to the next with
            explicit switching variables (one column and one row per session-slot pair).
        smoothing_max_pairs: Above this many session-slot pairs the switching variables are left
            out: they make the LP 3-10x slower on congested sites (measured: 100 workplace
            sessions, 3,400 pairs, 0.73 s with them, 0.08 s without). Below it (a 50-session
            site over a working day) they cost a few ms. The session-order tie-break of the
            objective keeps allocations in blocks either way.
        ipm_min_columns: From this many LP columns on, HiGHS' interior point method (with
            crossover, so the answer is still a vertex) replaces dual simplex. Off by default:
            with the energy weight on the shortfall columns the dual simplex won on every
            benchmark size (workplace 1,000 sessions: 0.2 s vs 1.5 s; 5,000: 1.6 s vs 9.3 s).
        reduced_energy_min_columns: From this many LP columns on, the LP is first solved with the
            energy weight reduced to W_energy / 2000 and that optimum kept when a max-flow check
            proves it energy-maximal (then it is optimal for the full weight too; see
            optimizer/README.md, "Solving large sites"). Measured: 1.3-3.6x faster from about
            2,500 sessions (public 5,000: 3.7 s -> 1.0 s), no clear gain at 1,000 sessions and
            none below, where the check (0.5-10 ms) would only add to the common small sites.
        repair_rounds: Re-solves of the LP+repair dive (optimizer/repair.py): each fixes every
            power still between 0 and its minimum on or off and solves the LP again; what is
            left after the last one is rounded. 0 rounds the LP relaxation at once.
        milp_first_max_variables: Up to this many semi-continuous powers the MILP is tried before
            the dive: branch and bound on so few takes a few ms (measured: 30 powers 3.5 ms, 61
            powers 19 ms, 173 powers 0.75 s against 9-30 ms for the dive). Above it the dive comes
            first and the MILP only runs when the dive's plan is not within `milp_rel_gap` of the
            LP relaxation's bound.
        lp_backend: How the LPs reach HiGHS: "highspy" (its own Python binding, one reused
            solver per thread, hot starts in the dive, warm starts between cycles) or "scipy"
            (`scipy.optimize.milp`/`linprog`, cold every time). The same HiGHS options either
            way; highspy solves a 10-session site's LP 2-3x faster (optimizer/README.md). The
            minimum-rate MILP goes through `scipy.optimize.milp` with both.
    """

    milp_time_limit_s: float = 2.0
    milp_max_variables: int = 20_000
    milp_rel_gap: float = 1e-7
    lp_time_limit_s: float = 60.0
    fairness_segments: int = 10
    smoothing: bool = True
    smoothing_max_pairs: int = 2_000
    ipm_min_columns: int = 1_000_000_000
    reduced_energy_min_columns: int = 20_000
    repair_rounds: int = 8
    milp_first_max_variables: int = 50
    lp_backend: Literal["highspy", "scipy"] = "highspy"


class SolveStatus(StrEnum):
    """How good the plan is. Every status is a plan that passed the hard checks."""

    OPTIMAL = "OPTIMAL"  # the LP or MILP optimum
    FEASIBLE = "FEASIBLE"  # a MILP incumbent at the time limit, or the LP relaxation plus repair
    FALLBACK = "FALLBACK"  # the deterministic equal share


class SolvePath(StrEnum):
    """Which route produced the plan."""

    LP = "LP"
    MILP = "MILP"
    MILP_INCUMBENT = "MILP-incumbent"
    LP_REPAIR = "LP+repair"
    FALLBACK = "fallback"


class SessionPlan(msgspec.Struct, frozen=True, kw_only=True):
    """One session's plan.

    Attributes:
        id: The session id.
        power_kw: Power per slot (kW), constant within a slot, `n_slots` values.
        energy_kwh: Energy delivered over the horizon (kWh).
        shortfall_kwh: Need minus delivered (kWh, >= 0).
    """

    id: str
    power_kw: tuple[float, ...]
    energy_kwh: float
    shortfall_kwh: float


class SolveStats(msgspec.Struct, frozen=True, kw_only=True):
    """Solver statistics: build and solve time (s), LP columns and rows."""

    build_s: float
    solve_s: float
    variables: int
    constraints: int


class ObjectiveTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The plan measured by each priority of the objective.

    Attributes:
        delivered_kwh: Energy delivered to all sessions (kWh).
        need_kwh: Energy all sessions asked for (kWh).
        reachable_kwh: What each session could take alone, within its own and its EVSE's limit
            during its stay in the horizon, summed (kWh).
        cost: Energy cost of the plan (currency), None without a price signal.
        co2_g: Carbon of the plan (g), None without a carbon signal.
        switching_kw: Sum of the power increases between consecutive slots of every session (kW).
    """

    delivered_kwh: float
    need_kwh: float
    reachable_kwh: float
    cost: float | None
    co2_g: float | None
    switching_kw: float


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """The result for one site: per-session power per slot, always within every hard limit.

    The first five fields are the `scsp solve` contract; the rest are additions.

    Attributes:
        status: OPTIMAL, FEASIBLE or FALLBACK.
        sessions: One entry per problem session, in the problem's order.
        site_power_kw: Planned total of all sessions per slot (kW), fixed load excluded.
        stats: Solver statistics.
        path: Which route produced the plan.
        jain_index: Jain's fairness index of the served fractions (delivered / need) of sessions
            with a need; 1 is perfectly even. None when no session needs energy or none is served.
        warnings: Things the caller should know (limits that cannot be met, solver trouble).
        objective: The plan measured by each priority.
        start: Start of slot 0, as in the problem.
        slot_minutes: Slot length (min), as in the problem.
    """

    status: SolveStatus
    sessions: tuple[SessionPlan, ...]
    site_power_kw: tuple[float, ...]
    stats: SolveStats
    path: SolvePath
    jain_index: float | None
    warnings: tuple[str, ...]
    objective: ObjectiveTerms
    start: datetime
    slot_minutes: float


class BasisRuns(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """Basis statuses of one side (columns or rows) of an LP, keyed in runs (see `WarmStart`).

    Entry j of a run is (family, owner, first + j x step), step one slot (`WarmStart.slot_s`
    seconds) for the slot families and 1 otherwise. Arrays are little-endian bytes.

    Attributes:
        family: int8 per run: the variable or row family (`optimizer.warm` names the codes).
        owner: int32 per run: index into `WarmStart.sessions`, `circuits` or `evses` (the phase
            index for phase rows, 0 for site rows).
        first: int64 per run: the first entry's key: absolute slot start (unix s) for the slot
            families, the fairness segment for shortfall columns, 0 for energy rows.
        count: int32 per run: entries in the run.
        status: int8 per entry: HiGHS basis status (0 nonbasic at lower bound, 1 basic, 2 at upper).
    """

    family: bytes
    owner: bytes
    first: bytes
    count: bytes
    status: bytes


class WarmStart(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """The optimal basis of one site's LP, for the next planning cycle (`solve_with_basis`).

    Keyed by what the variables and rows stand for (session id and absolute slot start, circuit
    id, EVSE id, ...), not by their position, so it maps onto the next cycle's LP after the
    horizon moved on and sessions came and went (`optimizer.warm`). Compact: run-length keys and
    one byte per variable and row (msgspec encodes `bytes` raw in msgpack, base64 in JSON).

    Attributes:
        start_s: Start of slot 0 of the LP it came from (unix s).
        slot_s: Slot length (s).
        sessions: Session ids, the owners of the power, shortfall, switching and energy entries.
        circuits: Circuit ids, the owners of the circuit rows.
        evses: EVSE ids, the owners of the shared-EVSE rows.
        columns: Column statuses.
        rows: Row statuses.
        warm: Whether the solve that produced it itself started from a WarmStart.
    """

    start_s: int
    slot_s: int
    sessions: tuple[str, ...]
    circuits: tuple[str, ...]
    evses: tuple[str, ...]
    columns: BasisRuns
    rows: BasisRuns
    warm: bool = False
