"""The hard checks every plan passes before it is returned, computed from the problem's arrays.

Independent of the LP rows: it takes the (N, T) power matrix and re-derives every limit, so a
solver result that is wrong for any reason (status lies, tolerances, a bug in the builder) is
caught. Tolerance: 1e-6 relative to the limit, with 1 kW as the smallest scale (so a zero limit
tolerates 1 mW), see `TOLERANCE`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from optimizer.arrays import FloatArray, SiteArrays

__all__ = ["SCALE_FLOOR_KW", "TOLERANCE", "Loads", "loads", "violations"]

# Relative tolerance of every hard check (dimensionless), as the issue specifies: far above the
# solver's own feasibility tolerance (1e-7 absolute on the scaled problem) and far below anything
# a meter or charge point can resolve.
TOLERANCE = 1e-6
# Smallest scale the relative tolerance applies to (kW or kWh): a limit of 0 tolerates 1e-6 of this.
SCALE_FLOOR_KW = 1.0
# Most violations listed per family: enough to diagnose, short enough for a log line.
_MAX_LISTED = 3


class Loads:
    """What a power matrix puts on each limit (kW, or kWh for energy).

    Attributes:
        site_kw: (T,) sum of all sessions.
        circuit_kw: (C, T) sum per circuit.
        phase_kw: (3, T) sum per phase (power-equivalent of the current).
        evse_kw: (E, T) sum per EVSE.
        energy_kwh: (N,) delivered per session.
    """

    __slots__ = ("circuit_kw", "energy_kwh", "evse_kw", "phase_kw", "site_kw")

    def __init__(self, arrays: SiteArrays, power_kw: FloatArray) -> None:
        self.site_kw: FloatArray = power_kw.sum(axis=0)
        self.circuit_kw: FloatArray = arrays.circuit_sum(power_kw)
        self.phase_kw: FloatArray = arrays.phase_share.T @ power_kw
        self.evse_kw: FloatArray = arrays.evse_sum(power_kw)
        self.energy_kwh: FloatArray = power_kw.sum(axis=1) * arrays.slot_h


def loads(arrays: SiteArrays, power_kw: FloatArray) -> Loads:
    """The load a (N, T) power matrix puts on every limit."""
    return Loads(arrays, power_kw)


def _tolerance(limit: FloatArray | float) -> FloatArray:
    """Allowed excess over `limit`: TOLERANCE x max(|limit|, SCALE_FLOOR_KW)."""
    return np.asarray(TOLERANCE * np.maximum(np.abs(limit), SCALE_FLOOR_KW), dtype=np.float64)


def _report(
    name: str, bad: npt.NDArray[np.bool_], value: FloatArray, limit: FloatArray, keys: str
) -> list[str]:
    """Describe the first few entries of `bad` as `name[keys]: value > limit`."""
    if not bad.any():  # the common case, before any per-entry work
        return []
    found = np.argwhere(bad)
    lines = []
    for where in found[:_MAX_LISTED]:
        index = tuple(int(w) for w in where)
        label = ", ".join(f"{k}={v}" for k, v in zip(keys.split(","), index, strict=True))
        lines.append(f"{name}[{label}]: {float(value[index]):.9g} violates {float(limit[index]):.9g}")
    if len(found) > _MAX_LISTED:
        lines.append(f"{name}: {len(found) - _MAX_LISTED} more")
    return lines


def violations(arrays: SiteArrays, power_kw: FloatArray) -> list[str]:
    """Every hard constraint a (N, T) power matrix breaks, as readable lines; [] when valid.

    Checks: finite; zero outside presence; 0 <= power <= min(session max, EVSE max); 0 or at least
    the minimum rate; per slot site total + fixed load <= site limit (sessions get 0 where the
    fixed load alone exceeds it); each circuit, each phase and each EVSE within its limit;
    delivered energy <= need.
    """
    expected = (arrays.n_sessions, arrays.n_slots)
    if power_kw.shape != expected:
        return [f"power matrix has shape {power_kw.shape}, expected {expected}"]
    if not np.isfinite(power_kw).all():
        return _report("finite", ~np.isfinite(power_kw), power_kw, np.zeros(expected), "i,t")
    out: list[str] = []
    present = arrays.presence()
    zero = np.zeros(expected)
    at_zero = TOLERANCE * SCALE_FLOOR_KW  # = _tolerance(0.0)
    out += _report("presence", ~present & (np.abs(power_kw) > at_zero), power_kw, zero, "i,t")
    out += _report("power_min", power_kw < -at_zero, power_kw, zero, "i,t")
    # Per-session thresholds compared against whole rows: the same numbers as comparing (N, T)
    # broadcasts, without making them.
    ub = arrays.ub_kw
    bad = power_kw > (ub + _tolerance(ub))[:, None]
    out += _report("power_max", bad, power_kw, np.broadcast_to(ub[:, None], expected), "i,t")
    minimum = arrays.min_kw
    below_min = (power_kw > at_zero) & (power_kw < (minimum - _tolerance(minimum))[:, None])
    out += _report("min_rate", below_min, power_kw, np.broadcast_to(minimum[:, None], expected), "i,t")

    load = loads(arrays, power_kw)
    cap = arrays.site_cap_kw
    out += _report("site_power_limit", load.site_kw > cap + _tolerance(cap), load.site_kw, cap, "t")
    cap = arrays.circuit_cap_kw
    out += _report(
        "circuit_power_limit", load.circuit_kw > cap + _tolerance(cap), load.circuit_kw, cap, "c,t"
    )
    if arrays.phase_cap_kw is not None:
        cap = arrays.phase_cap_kw
        out += _report(
            "phase_current_limit", load.phase_kw > cap + _tolerance(cap), load.phase_kw, cap, "phase,t"
        )
    cap = arrays.evse_max_kw
    bad = load.evse_kw > (cap + _tolerance(cap))[:, None]
    out += _report("evse_shared_limit", bad, load.evse_kw, np.broadcast_to(cap[:, None], load.evse_kw.shape), "evse,t")
    need = arrays.need_kwh
    out += _report("session_energy", load.energy_kwh > need + _tolerance(need), load.energy_kwh, need, "i")
    return out
