"""The objective: four priorities folded into one cost vector by weights of decreasing magnitude.

Minimised, per column (every term is per kWh or per kWh-equivalent, so they compare):

    power p[i, t] (kW):        (-W_energy + W_PREFERENCE * pref[i, t] + W_ORDER * order[i, t]
                                - W_CONTINUITY * continuity[i, t]) * slot_h
    shortfall s[i, k] (kWh):   W_fairness * (2k + 1) / K
    switching u[i, t] (kW):    W_SWITCHING * slot_h

The LP itself carries the energy term on the shortfall columns (`cost_vector`): s[i, k] costs
W_energy + W_fairness * (2k + 1) / K and p[i, t] only the lower terms. The energy rows make the two
forms differ by the constant W_energy * sum(reach) on every feasible point, so they have the same
optimal plans; the shifted one solves several times faster (see `cost_vector`).

Why the magnitudes keep the priorities (D is the most energy the limits allow in total):

* Energy over everything. Going from an energy-maximal plan to ours can change the lower terms by
  at most 4 * W_fairness * D (the fairness penalty has slope < 2 per kWh of shortfall, and the two
  plans' shortfalls differ by at most 2D in total), W_PREFERENCE * D (pref is 0..1 per kWh),
  2 * W_ORDER * D (order is 0..2) and W_SWITCHING * D (a session's increases never exceed its
  energy). W_energy is 2,000 times their sum, so the LP never gives up more than 1/2000 = 0.05 %
  of D for them (the contract allows 0.1 %).
* Fairness over preferences. Moving d kWh between two sessions whose shortfalls lie in different
  segments changes the fairness penalty by at least W_fairness * 2/K * d, and everything below by
  at most (W_PREFERENCE + 2 * W_ORDER + 2 * W_SWITCHING) * d. W_fairness is K times that sum: a
  margin of 2.
* Preferences over smoothness. Shifting d kWh to a slot whose preference is lower by dc gains
  W_PREFERENCE * dc * d and adds at most W_SWITCHING * d of power increase and 2 * W_ORDER * d of
  order cost, so a shift pays when the preference improves by more than about 1-3 % of its range
  (1-3 % of the day's price spread for CHEAP); smaller gains are not worth a switch.

Preference per slot (`pref`, 0..1; a missing signal makes its term vanish; early[t] = (t + 1) / T):

* FAST: early[t], as early as possible.
* CHEAP: price normalised over the horizon.
* GREEN: carbon intensity normalised over the horizon.
* REGULAR: 0.8 * early[t] + 0.1 * price + 0.1 * carbon: early first, but it waits up to an eighth
  of the horizon (3 h of 24 h: 0.8 x 1/8 = 0.1, the whole price range) for the cheapest slot.

Signals are normalised to 0..1 ((x - min) / (max - min), 0 when flat) so a preference weighs the
same on every site whatever the currency.

The order term breaks the ties the preferences leave, which an LP otherwise resolves arbitrarily
(sessions of one profile type competing for the same slots get interleaved: on, off, on).
order[i, t] = (1 + rank[i]) * early[t], with rank[i] in 0..1 and 1 for the earliest departure
(then earliest arrival, then problem order). Every session prefers earlier slots, those leaving
sooner more strongly, so between two sessions the cheaper one of any exchange of slots is always
"the one leaving sooner charges first": their allocations come out as contiguous blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.arrays import PROFILE_CODES, FloatArray, SiteArrays
from optimizer.constraints import Columns
from optimizer.model import ProfileType

__all__ = [
    "ENERGY_MARGIN",
    "REGULAR_EARLY",
    "REGULAR_SIGNAL",
    "W_CONTINUITY",
    "W_ORDER",
    "W_PREFERENCE",
    "W_SWITCHING",
    "Weights",
    "cost_vector",
    "order",
    "preference",
    "reduced_energy_costs",
    "score",
]

# Cost of 1 kW of power increase held for one slot, per hour (1/kWh): the unit of the scale.
W_SWITCHING = 1.0
# Weight of the session-order tie-break (1/kWh): like switching, it only decides between plans the
# preferences rate within a few percent of each other.
W_ORDER = 1.0
# Cost of the full 0..1 preference range per kWh (1/kWh): 100x switching, see the module docstring.
W_PREFERENCE = 100.0
# Reward per kWh left where the previous plan had it (1/kWh, times the 0..1 continuity): between plans
# the preferences rate within 2 % of their range of each other, the previous one stays, so a re-plan
# with unchanged inputs does not flip to another optimum and re-send every profile. Below the
# preferences (a real gain still moves energy), above the order tie-break and switching.
W_CONTINUITY = 2.0
# How many times the most the lower terms can gain per kWh of D the energy weight is
# (dimensionless): the LP gives up at most 1/ENERGY_MARGIN = 0.05 % of D for them (contract: 0.1 %).
ENERGY_MARGIN = 2000.0
# REGULAR's mix of earliness and the price and carbon signals (dimensionless, sums to 1).
REGULAR_EARLY = 0.8
REGULAR_SIGNAL = 0.1


@dataclass(frozen=True, slots=True)
class Weights:
    """The weights (1/kWh) for K fairness segments; see the module docstring for the derivation."""

    energy: float
    fairness: float
    preference: float
    order: float
    switching: float
    continuity: float

    @classmethod
    def for_segments(cls, segments: int) -> Weights:
        """Weights that keep the strict priorities with `segments` fairness segments."""
        below = W_PREFERENCE + 2.0 * W_ORDER + 2.0 * W_SWITCHING + W_CONTINUITY
        fairness = segments * below
        energy = ENERGY_MARGIN * (4.0 * fairness + W_PREFERENCE + 2.0 * W_ORDER + W_SWITCHING + W_CONTINUITY)
        return cls(
            energy=energy, fairness=fairness, preference=W_PREFERENCE, order=W_ORDER, switching=W_SWITCHING,
            continuity=W_CONTINUITY,
        )


def reduced_energy_costs(c: FloatArray, cols: Columns) -> FloatArray:
    """`c` (from `cost_vector`, energy on the shortfall columns) with W_energy / ENERGY_MARGIN.

    The solver's fast first attempt on large sites (see `optimizer.solve` and the README, "Solving
    large sites"): the energy weight without its safety factor, still above every lower term per kWh,
    which HiGHS' dual simplex finishes several times faster. Its optimum is kept only if it is
    also energy-maximal, and then it is an optimum of `c` too.
    """
    w = Weights.for_segments(cols.n_segments)
    reduced = c.copy()
    reduced[cols.shortfall_start : cols.switch_start] -= w.energy - w.energy / ENERGY_MARGIN
    return reduced


def _normalised(signal: FloatArray | None, n_slots: int) -> FloatArray:
    """Scale a signal to 0..1 over the horizon; zeros when missing or flat."""
    if signal is None:
        return np.zeros(n_slots)
    low, high = float(signal.min()), float(signal.max())
    if high - low <= 1e-12 * max(abs(high), abs(low), 1.0):
        return np.zeros(n_slots)
    return np.asarray((signal - low) / (high - low), dtype=np.float64)


def _early(n_slots: int) -> FloatArray:
    """early[t] = (t + 1) / T: 1/T for the first slot, 1 for the last."""
    return (np.arange(n_slots, dtype=np.float64) + 1.0) / n_slots


def preference(arrays: SiteArrays) -> FloatArray:
    """(P,) the preference cost (0..1, dimensionless) of one kWh in each pair."""
    n_slots = arrays.n_slots
    early = _early(n_slots)
    price = _normalised(arrays.price_per_kwh, n_slots)
    co2 = _normalised(arrays.co2_g_per_kwh, n_slots)
    table = np.empty((len(PROFILE_CODES), n_slots))  # one row per profile code
    table[PROFILE_CODES[ProfileType.FAST]] = early
    table[PROFILE_CODES[ProfileType.CHEAP]] = price
    table[PROFILE_CODES[ProfileType.GREEN]] = co2
    table[PROFILE_CODES[ProfileType.REGULAR]] = REGULAR_EARLY * early + REGULAR_SIGNAL * (price + co2)
    return np.asarray(table[arrays.profile[arrays.pair_session], arrays.pair_slot], dtype=np.float64)


def order(arrays: SiteArrays) -> FloatArray:
    """(P,) the tie-break cost (0..2, dimensionless) of one kWh in each pair: (1 + rank) * early."""
    rank = arrays.priority()
    return np.asarray((1.0 + rank[arrays.pair_session]) * _early(arrays.n_slots)[arrays.pair_slot])


def cost_vector(arrays: SiteArrays, cols: Columns, *, energy_on_shortfall: bool = True) -> FloatArray:
    """The LP's cost vector c (minimised), laid out as `cols`.

    With `energy_on_shortfall` (what the solver uses) the energy term sits on the shortfall
    columns instead of the power columns: by the energy row `slot_h sum_t p[i, t] = reach[i] -
    sum_k s[i, k]`, so `-W_energy slot_h sum p = W_energy sum s - W_energy sum reach` on every
    feasible point. The two vectors differ by the constant `W_energy sum reach` there: the same
    optimal plans, the same priorities. The shifted one has every power cost at or near 0 (the
    lower terms) and the shortfall ones at `W_energy` and above, so the all-zero start is dual
    feasible and HiGHS' dual simplex does almost no cleanup (measured 2-8x faster on the
    benchmark sites; see optimizer/README.md). `False` gives the textbook form (tests compare).
    """
    w = Weights.for_segments(cols.n_segments)
    c = np.empty(cols.total)
    energy_kwh = 0.0 if energy_on_shortfall else -w.energy
    c[: cols.n_pairs] = (
        energy_kwh + w.preference * preference(arrays) + w.order * order(arrays)
        - w.continuity * arrays.continuity
    ) * arrays.slot_h
    k = cols.n_segments
    slopes = (2.0 * np.arange(k) + 1.0) / k
    shortfall_kwh = w.energy if energy_on_shortfall else 0.0
    c[cols.shortfall_start : cols.switch_start] = np.tile(shortfall_kwh + w.fairness * slopes, cols.n_sessions)
    c[cols.switch_start :] = w.switching * arrays.slot_h
    return c


def score(arrays: SiteArrays, power_kw: FloatArray, segments: int, *, switching: bool = True) -> float:
    """The objective value of an (N, T) power matrix (lower is better), switching included by default.

    The same weights and terms as the LP's cost vector, evaluated directly on a plan, so plans
    from different routes (MILP incumbent, LP plus repair) compare on one scale. `switching=False`
    leaves the switching term out, as the LP of a site without switching columns does.
    """
    w = Weights.for_segments(segments)
    pairs_kw = power_kw[arrays.pair_session, arrays.pair_slot]
    delivered = power_kw.sum(axis=1) * arrays.slot_h
    per_kwh = w.preference * preference(arrays) + w.order * order(arrays) - w.continuity * arrays.continuity
    value = float(np.sum((-w.energy + per_kwh) * pairs_kw) * arrays.slot_h)
    width = arrays.reach_kwh / segments
    short = np.maximum(arrays.reach_kwh - delivered, 0.0)
    k = np.arange(segments)
    filled = np.clip(short[:, None] - k[None, :] * width[:, None], 0.0, width[:, None])
    value += float(np.sum(filled * (w.fairness * (2.0 * k + 1.0) / segments)))
    if switching:
        increases = np.maximum(np.diff(power_kw, axis=1), 0.0)
        after_first = np.arange(1, arrays.n_slots)[None, :] > arrays.first_slot[:, None]
        value += float(w.switching * arrays.slot_h * np.sum(increases[after_first]))
    return value
