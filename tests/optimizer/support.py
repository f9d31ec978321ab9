"""Shared helpers of the optimizer tests: problem builders, the plan checker and an energy oracle.

`assert_plan_valid` re-derives every hard constraint of the contract directly from the problem
Structs with plain loops, independent of `optimizer.check` and of the LP rows, so a bug in either
shows up as a disagreement.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from scipy.optimize import linprog

from optimizer import (
    Circuit,
    Evse,
    Plan,
    SessionRequest,
    Site,
    SiteProblem,
    SolvePath,
    SolveStatus,
)

START = datetime(2026, 11, 23, tzinfo=UTC)
# The contract's tolerance: 1e-6 relative to the limit, 1 kW the smallest scale.
REL_TOL = 1e-6


# The example of the contract (issue 3), verbatim.
CONTRACT_EXAMPLE: dict[str, Any] = {
    "start": "2026-11-23T00:00:00Z",
    "slot_minutes": 15,
    "n_slots": 96,
    "site": {
        "limit_kw": 150.0,
        "phase_limit_a": None,
        "voltage_v": 230,
        "fixed_load_kw": None,
        "failsafe_kw": None,
    },
    "circuits": [{"id": "C1", "evses": ["E1", "E2"], "limit_kw": 22.0}],
    "evses": [
        {"id": "E1", "max_kw": 11.0, "phases": 3},
        {"id": "E2", "max_kw": 7.4, "phases": 1, "phase": "L2"},
    ],
    "sessions": [
        {
            "id": "S1",
            "evse": "E1",
            "arrival_slot": 0,
            "departure_slot": 40,
            "energy_kwh": 20.0,
            "max_kw": 11.0,
            "min_kw": 0.0,
            "profile_type": "REGULAR",
        }
    ],
    "price_per_kwh": None,
    "co2_g_per_kwh": None,
}


def with_change(path: str, value: Any) -> bytes:
    """The contract example with one field set (`a.b[0].c`); the value `DELETE` removes it."""
    doc = copy.deepcopy(CONTRACT_EXAMPLE)
    parts = path.replace("[", ".").replace("]", "").split(".")
    target: Any = doc
    for part in parts[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    last: int | str = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value == "DELETE":
        del target[last]
    else:
        target[last] = value
    return json.dumps(doc).encode()


def session(
    ident: str,
    evse: str,
    arrival: int,
    departure: int,
    energy_kwh: float,
    max_kw: float = 11.0,
    min_kw: float = 0.0,
    profile: str = "REGULAR",
) -> SessionRequest:
    """A session request with the contract's field names."""
    return SessionRequest(
        id=ident,
        evse=evse,
        arrival_slot=arrival,
        departure_slot=departure,
        energy_kwh=energy_kwh,
        max_kw=max_kw,
        min_kw=min_kw,
        profile_type=profile,  # type: ignore[arg-type]
    )


def evse(ident: str, max_kw: float = 11.0, phases: int = 3, phase: str = "L1", dc: bool = False) -> Evse:
    """An EVSE."""
    return Evse(id=ident, max_kw=max_kw, phases=phases, phase=phase, dc=dc)  # type: ignore[arg-type]


def problem(
    sessions: Sequence[SessionRequest],
    evses: Sequence[Evse],
    *,
    limit_kw: float | Sequence[float] = 100.0,
    n_slots: int = 4,
    slot_minutes: float = 60.0,
    circuits: Sequence[Circuit] = (),
    phase_limit_a: float | Sequence[float] | None = None,
    voltage_v: float = 230.0,
    fixed_load_kw: float | Sequence[float] | None = None,
    price: Sequence[float] | None = None,
    co2: Sequence[float] | None = None,
) -> SiteProblem:
    """A site problem; hourly slots by default so kW and kWh per slot read the same."""

    def per_slot(value: float | Sequence[float] | None) -> Any:
        return tuple(value) if isinstance(value, Sequence) else value

    return SiteProblem(
        start=START,
        slot_minutes=slot_minutes,
        n_slots=n_slots,
        site=Site(
            limit_kw=per_slot(limit_kw),
            phase_limit_a=per_slot(phase_limit_a),
            voltage_v=voltage_v,
            fixed_load_kw=per_slot(fixed_load_kw),
        ),
        circuits=tuple(circuits),
        evses=tuple(evses),
        sessions=tuple(sessions),
        price_per_kwh=per_slot(price),
        co2_g_per_kwh=per_slot(co2),
    )


def _series(value: float | Sequence[float] | None, n: int) -> list[float]:
    if value is None:
        return [0.0] * n
    if isinstance(value, Sequence):
        return [float(v) for v in value]
    return [float(value)] * n


def _allowed(limit: float) -> float:
    return limit + REL_TOL * max(abs(limit), 1.0)


def _phase_shares(e: Evse) -> list[float]:
    """Share of an EVSE's power on L1, L2, L3 as the contract defines it."""
    if e.dc or e.phases == 3:
        return [1 / 3, 1 / 3, 1 / 3]
    if e.phases == 2:
        return [0.5, 0.5, 0.0]
    shares = [0.0, 0.0, 0.0]
    shares[["L1", "L2", "L3"].index(str(e.phase))] = 1.0
    return shares


def power_matrix(plan: Plan) -> np.ndarray:
    """The plan's (N, T) power matrix (kW)."""
    return np.array([s.power_kw for s in plan.sessions], dtype=float).reshape(len(plan.sessions), -1)


def assert_plan_valid(p: SiteProblem, plan: Plan) -> None:
    """Fail unless `plan` is a well-formed plan for `p` within every hard constraint of the contract."""
    n_slots = p.n_slots
    slot_h = p.slot_minutes / 60
    assert plan.status in set(SolveStatus)
    assert plan.path in set(SolvePath)
    assert [s.id for s in plan.sessions] == [s.id for s in p.sessions]
    assert len(plan.site_power_kw) == n_slots
    evses = {e.id: e for e in p.evses}
    power = {s.id: list(s.power_kw) for s in plan.sessions}

    for req, out in zip(p.sessions, plan.sessions, strict=True):
        assert len(out.power_kw) == n_slots, req.id
        most = min(req.max_kw, evses[req.evse].max_kw)
        if req.min_kw > most:
            most = 0.0  # it cannot charge at all
        for t, kw in enumerate(out.power_kw):
            assert math.isfinite(kw), (req.id, t)
            if not req.arrival_slot <= t < req.departure_slot:
                assert kw == 0.0, f"{req.id} draws {kw} kW in slot {t} outside its presence"
            assert kw >= 0.0, (req.id, t, kw)
            assert kw <= _allowed(most), f"{req.id} draws {kw} kW in slot {t} above its maximum {most}"
            if kw > 0 and req.min_kw > 0:
                assert kw >= req.min_kw - REL_TOL * max(req.min_kw, 1.0), f"{req.id} below min rate: {kw}"
        delivered = sum(out.power_kw) * slot_h
        assert math.isclose(out.energy_kwh, delivered, rel_tol=1e-9, abs_tol=1e-9), req.id
        assert delivered <= _allowed(req.energy_kwh), f"{req.id} gets {delivered} kWh, needs {req.energy_kwh}"
        assert math.isclose(
            out.shortfall_kwh, max(req.energy_kwh - delivered, 0.0), rel_tol=1e-9, abs_tol=1e-9
        )

    limit = _series(p.site.limit_kw, n_slots)
    fixed = _series(p.site.fixed_load_kw, n_slots)
    for t in range(n_slots):
        total = sum(kw[t] for kw in power.values())
        assert math.isclose(plan.site_power_kw[t], total, rel_tol=1e-9, abs_tol=1e-9)
        room = max(limit[t] - fixed[t], 0.0)  # nothing fits where the fixed load alone exceeds the limit
        assert total <= _allowed(room), f"slot {t}: sessions {total} kW + fixed {fixed[t]} > limit {limit[t]}"

    for c in p.circuits:
        climit = _series(c.limit_kw, n_slots)
        members = set(c.evses)
        for t in range(n_slots):
            total = sum(power[s.id][t] for s in p.sessions if s.evse in members)
            assert total <= _allowed(climit[t]), f"circuit {c.id} slot {t}: {total} > {climit[t]}"

    for e in p.evses:
        on_it = [s.id for s in p.sessions if s.evse == e.id]
        for t in range(n_slots):
            total = sum(power[i][t] for i in on_it)
            assert total <= _allowed(e.max_kw), f"evse {e.id} slot {t}: {total} > {e.max_kw}"

    if p.site.phase_limit_a is not None:
        limit_a = _series(p.site.phase_limit_a, n_slots)
        volts = p.site.voltage_v
        for t in range(n_slots):
            for k in range(3):
                amps = sum(
                    power[s.id][t] * 1000 * _phase_shares(evses[s.evse])[k] / volts for s in p.sessions
                )
                fixed_a = fixed[t] * 1000 / (3 * volts)
                room = max(limit_a[t] - fixed_a, 0.0)
                assert amps <= _allowed(room), (
                    f"phase L{k + 1} slot {t}: {amps} A + fixed {fixed_a} A > {limit_a[t]} A"
                )


def max_energy_kwh(p: SiteProblem) -> float:
    """The most energy the hard limits allow in total (kWh): an independent dense LP (small problems)."""
    n_slots = p.n_slots
    slot_h = p.slot_minutes / 60
    evses = {e.id: e for e in p.evses}
    idx: dict[tuple[int, int], int] = {}
    ub: list[float] = []
    for i, s in enumerate(p.sessions):
        most = min(s.max_kw, evses[s.evse].max_kw)
        for t in range(max(s.arrival_slot, 0), min(s.departure_slot, n_slots)):
            idx[(i, t)] = len(ub)
            ub.append(most)
    if not ub:
        return 0.0
    rows: list[list[float]] = []
    rhs: list[float] = []

    def add(members: list[tuple[int, float]], bound: float) -> None:
        row = [0.0] * len(ub)
        for j, coef in members:
            row[j] += coef
        rows.append(row)
        rhs.append(bound)

    limit, fixed = _series(p.site.limit_kw, n_slots), _series(p.site.fixed_load_kw, n_slots)
    for t in range(n_slots):
        add([(j, 1.0) for (i, tt), j in idx.items() if tt == t], max(limit[t] - fixed[t], 0.0))
        for c in p.circuits:
            climit = _series(c.limit_kw, n_slots)
            add(
                [(j, 1.0) for (i, tt), j in idx.items() if tt == t and p.sessions[i].evse in c.evses],
                climit[t],
            )
        for e in p.evses:
            add([(j, 1.0) for (i, tt), j in idx.items() if tt == t and p.sessions[i].evse == e.id], e.max_kw)
        if p.site.phase_limit_a is not None:
            limit_a = _series(p.site.phase_limit_a, n_slots)
            for k in range(3):
                room_kw = max(limit_a[t] * p.site.voltage_v / 1000 - fixed[t] / 3, 0.0)
                add(
                    [
                        (j, _phase_shares(evses[p.sessions[i].evse])[k])
                        for (i, tt), j in idx.items()
                        if tt == t
                    ],
                    room_kw,
                )
    for i, s in enumerate(p.sessions):
        add([(j, slot_h) for (ii, _), j in idx.items() if ii == i], s.energy_kwh)
    res = linprog(
        -np.full(len(ub), slot_h),
        A_ub=np.array(rows),
        b_ub=np.array(rhs),
        bounds=[(0.0, u) for u in ub],
        method="highs",
    )
    assert res.status == 0 and res.x is not None, res.message
    return float(res.x.sum() * slot_h)


def delivered_kwh(plan: Plan) -> float:
    """Total energy the plan delivers (kWh)."""
    return sum(s.energy_kwh for s in plan.sessions)


def served_fractions(p: SiteProblem, plan: Plan) -> list[float]:
    """delivered / need of each session with a need."""
    return [
        out.energy_kwh / req.energy_kwh
        for req, out in zip(p.sessions, plan.sessions, strict=True)
        if req.energy_kwh > 0
    ]


def n_sessions(p: SiteProblem) -> int:
    """Number of sessions (keeps call sites short)."""
    return len(p.sessions)
