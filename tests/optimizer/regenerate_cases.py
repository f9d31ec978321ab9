"""Write the golden cases `tests/optimizer/cases/NNN-<behaviour>.json` from the definitions below.

Run from the repository root after an intended change of the optimizer's behaviour:

    .venv/bin/python -m tests.optimizer.regenerate_cases

then review the diff of `tests/optimizer/cases/` like code: every changed number is a changed plan.
Each file holds the problem (the `scsp solve` JSON contract), optional solver options, and the
expected plan (status, path, per-session power, energies, shortfalls, site power, Jain's index,
warnings) rounded to 6 decimals. The cases are built so their optimum is unique.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from optimizer import SolveOptions, decode_problem, solve

CASES = Path(__file__).resolve().parent / "cases"
START = "2026-11-23T00:00:00Z"


def site(n_slots: int = 4, slot_minutes: int = 60, **extra: Any) -> dict[str, Any]:
    """The common frame of a case problem; `extra` adds or replaces top-level fields."""
    doc: dict[str, Any] = {
        "start": START,
        "slot_minutes": slot_minutes,
        "n_slots": n_slots,
        "site": {"limit_kw": 100.0},
        "evses": [{"id": "E1", "max_kw": 11.0, "phases": 3}],
        "sessions": [],
    }
    doc.update(extra)
    return doc


def car(
    ident: str, evse: str, arrival: int, departure: int, energy_kwh: float, **extra: Any
) -> dict[str, Any]:
    """A session entry."""
    return {
        "id": ident,
        "evse": evse,
        "arrival_slot": arrival,
        "departure_slot": departure,
        "energy_kwh": energy_kwh,
        "max_kw": extra.pop("max_kw", 11.0),
        **extra,
    }


def three_phase(ident: str, max_kw: float = 11.0) -> dict[str, Any]:
    """A three-phase AC EVSE."""
    return {"id": ident, "max_kw": max_kw, "phases": 3}


def _hourly(values: list[float]) -> list[float]:
    """An hourly curve as 15-minute slots."""
    return [v for v in values for _ in range(4)]


DAY_PRICE = _hourly(
    [
        0.22,
        0.21,
        0.20,
        0.20,
        0.21,
        0.24,
        0.29,
        0.33,
        0.31,
        0.27,
        0.24,
        0.21,
        0.19,
        0.18,
        0.19,
        0.22,
        0.26,
        0.31,
        0.35,
        0.34,
        0.30,
        0.27,
        0.25,
        0.23,
    ]
)
DAY_CO2 = [
    round(380 - 170 * max(0.0, 1 - abs(t / 4 - 13) / 5) + 40 * max(0.0, 1 - abs(t / 4 - 19) / 3))
    for t in range(96)
]

DEFINITIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "001-lone-session-charges-from-arrival": (
        site(sessions=[car("S1", "E1", 1, 4, 25.0)]),
        {},
    ),
    "002-site-limit-shortfall-in-proportion-to-need": (
        site(
            site={"limit_kw": 4.0},
            evses=[three_phase("E1"), three_phase("E2")],
            sessions=[car("S1", "E1", 0, 4, 8.0), car("S2", "E2", 0, 4, 24.0)],
        ),
        {},
    ),
    "003-circuit-limit-splits-its-evses": (
        site(
            evses=[three_phase("E1"), three_phase("E2"), three_phase("E3")],
            circuits=[{"id": "C1", "evses": ["E1", "E2"], "limit_kw": 11.0}],
            sessions=[car("S1", "E1", 0, 4, 44.0), car("S2", "E2", 0, 4, 44.0), car("S3", "E3", 0, 4, 44.0)],
        ),
        {},
    ),
    "004-phase-limit-with-single-phase-evses": (
        site(
            site={"limit_kw": 100.0, "phase_limit_a": 16.0, "voltage_v": 230},
            evses=[
                {"id": "E1", "max_kw": 7.4, "phases": 1, "phase": "L1"},
                {"id": "E2", "max_kw": 7.4, "phases": 1, "phase": "L2"},
                three_phase("E3"),
            ],
            sessions=[
                car("S1", "E1", 0, 4, 30.0, max_kw=7.4),
                car("S2", "E2", 0, 4, 5.0, max_kw=7.4),
                car("S3", "E3", 0, 4, 40.0),
            ],
        ),
        {},
    ),
    "005-cheap-follows-the-price": (
        site(
            sessions=[car("S1", "E1", 0, 4, 16.5, profile_type="CHEAP")],
            price_per_kwh=[0.30, 0.10, 0.20, 0.40],
        ),
        {},
    ),
    "006-green-follows-the-carbon-intensity": (
        site(
            sessions=[car("S1", "E1", 0, 4, 22.0, profile_type="GREEN")], co2_g_per_kwh=[300, 200, 100, 400]
        ),
        {},
    ),
    "007-fast-charges-first-whatever-the-price": (
        site(
            sessions=[car("S1", "E1", 0, 4, 11.0, profile_type="FAST")],
            price_per_kwh=[0.40, 0.10, 0.10, 0.10],
        ),
        {},
    ),
    "008-fixed-load-above-the-limit-warns-and-plans-zero-there": (
        site(
            site={"limit_kw": 10.0, "fixed_load_kw": [5.0, 12.0, 5.0, 2.0]},
            sessions=[car("S1", "E1", 0, 4, 100.0)],
        ),
        {},
    ),
    "009-minimum-rate-cars-take-turns": (
        site(
            n_slots=2,
            site={"limit_kw": 6.0},
            evses=[three_phase("E1", 6.0), three_phase("E2", 6.0)],
            sessions=[
                car("S1", "E1", 0, 2, 6.0, max_kw=6.0, min_kw=4.0),
                car("S2", "E2", 0, 2, 6.0, max_kw=6.0, min_kw=4.0),
            ],
        ),
        {},
    ),
    "010-minimum-rate-lp-plus-repair": (
        site(
            n_slots=1,
            site={"limit_kw": 10.0},
            evses=[three_phase(f"E{i}", 6.0) for i in range(3)],
            sessions=[car(f"S{i}", f"E{i}", 0, 1, 6.0, max_kw=6.0, min_kw=4.0) for i in range(3)],
        ),
        {"milp_max_variables": 0},
    ),
    "011-two-sessions-on-one-evse-share-it": (
        site(n_slots=3, sessions=[car("S1", "E1", 0, 2, 100.0), car("S2", "E1", 1, 3, 100.0)]),
        {},
    ),
    "012-departure-beyond-the-horizon": (
        site(sessions=[car("S1", "E1", 2, 500, 100.0)]),
        {},
    ),
    "013-zero-site-limit": (
        site(site={"limit_kw": 0.0}, sessions=[car("S1", "E1", 0, 4, 10.0)]),
        {},
    ),
    "014-tied-sessions-share-without-switching": (
        site(
            site={"limit_kw": 11.0},
            evses=[three_phase("E1"), three_phase("E2")],
            sessions=[car("S1", "E1", 0, 4, 22.0), car("S2", "E2", 0, 4, 22.0)],
        ),
        {},
    ),
    "015-workplace-day-with-prices-carbon-circuits-and-phases": (
        site(
            n_slots=96,
            slot_minutes=15,
            site={"limit_kw": 30.0, "phase_limit_a": 40.0, "voltage_v": 230, "fixed_load_kw": 4.0},
            evses=[
                three_phase("E1"),
                three_phase("E2", 22.0),
                {"id": "E3", "max_kw": 7.4, "phases": 1, "phase": "L2"},
                {"id": "E4", "max_kw": 7.4, "phases": 1, "phase": "L3"},
                three_phase("E5"),
            ],
            circuits=[{"id": "C1", "evses": ["E1", "E2"], "limit_kw": 16.0}],
            sessions=[
                car("S1", "E1", 32, 68, 14.0, profile_type="REGULAR"),
                car("S2", "E2", 34, 72, 30.0, max_kw=22.0, profile_type="CHEAP"),
                car("S3", "E3", 33, 66, 12.0, max_kw=7.4, profile_type="GREEN"),
                car("S4", "E4", 36, 52, 20.0, max_kw=7.4, profile_type="FAST"),
                car("S5", "E5", 38, 76, 9.0, profile_type="REGULAR"),
            ],
            price_per_kwh=DAY_PRICE,
            co2_g_per_kwh=DAY_CO2,
        ),
        {},
    ),
}


def expected_plan(problem_doc: dict[str, Any], options_doc: dict[str, Any]) -> dict[str, Any]:
    """Solve a case and keep the fields that pin its behaviour (no timings)."""
    problem = decode_problem(json.dumps(problem_doc))
    plan = solve(problem, msgspec.convert(options_doc, SolveOptions))

    def r(value: float) -> float:
        return round(value, 6) + 0.0  # + 0.0 turns -0.0 into 0.0

    return {
        "status": str(plan.status),
        "path": str(plan.path),
        "sessions": [
            {
                "id": s.id,
                "power_kw": [r(v) for v in s.power_kw],
                "energy_kwh": r(s.energy_kwh),
                "shortfall_kwh": r(s.shortfall_kwh),
            }
            for s in plan.sessions
        ],
        "site_power_kw": [r(v) for v in plan.site_power_kw],
        "jain_index": None if plan.jain_index is None else r(plan.jain_index),
        "warnings": list(plan.warnings),
    }


def main() -> None:
    """Rewrite every case file from `DEFINITIONS` (and remove stale ones)."""
    CASES.mkdir(exist_ok=True)
    for stale in CASES.glob("*.json"):
        if stale.stem not in DEFINITIONS:
            stale.unlink()
    for name, (problem_doc, options_doc) in DEFINITIONS.items():
        case = {
            "problem": problem_doc,
            "options": options_doc,
            "expected": expected_plan(problem_doc, options_doc),
        }
        (CASES / f"{name}.json").write_text(json.dumps(case, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {name}.json: {case['expected']['status']} ({case['expected']['path']})")


if __name__ == "__main__":
    main()
