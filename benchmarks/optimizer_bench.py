"""Benchmark of `optimizer.solve` on generated, realistic sites (not part of the test run).

Run: `.venv/bin/python benchmarks/optimizer_bench.py` (or `make bench`); `--quick` skips the
5,000-session cases, `--repeat N` takes the median of N runs (at least 15 for sites of up to 100
sessions, whose milliseconds vary most; 1 run for 5,000 sessions).

Every case runs in a fresh child process so the peak memory (ru_maxrss, whole process: interpreter,
numpy/scipy and HiGHS included) belongs to that case alone. Columns: build and solve time of
`solve` (median), peak RSS, status and path, energy delivered as % of the most the limits allow
(our LP's optimum with the other priorities switched off is that maximum), and the same energy
figure for two baselines: uncontrolled charging (every car at full power from arrival, ignoring the
site and circuit limits, so it overloads them) and the FALLBACK equal share (within every limit).

Generated sites (96 slots of 15 min from midnight, seed fixed per case):

* workplace: arrivals ~ Normal(8:30, 1 h) clipped to 6:00-11:00; dwell ~ Normal(8.5 h, 1.5 h)
  clipped to 3-11 h; energy ~ LogNormal(median 12 kWh, sigma 0.5) clipped to 2-60 kWh; one EVSE
  per car: 70 % 11 kW 3-phase, 20 % 7.4 kW 1-phase (L1, L2, L3 in turn), 10 % 22 kW 3-phase;
  cars take 11 kW (60 %), 7.4 kW (25 %) or 22 kW (15 %).
* public: arrivals from a mix of Normal(12:00, 2 h) and Normal(18:00, 2 h) clipped to 6:00-22:00;
  dwell ~ Exponential(mean 2 h) clipped to 20 min-8 h; energy ~ Uniform(5, 45) kWh; EVSEs 22 kW AC
  (60 %) or 50 kW DC (40 %), reused by later cars (about three per EVSE); cars take 11, 22, 50 or
  100 kW.
* both: profile types REGULAR 60 %, CHEAP 20 %, GREEN 10 %, FAST 10 %; circuits of 10 EVSEs
  limited to 70 % of their EVSEs' maxima; an hourly day-ahead price with morning and evening peaks
  and a midday solar dip; a carbon curve low at midday; the site limit at 60 % or 30 % of the
  uncontrolled peak.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.optimize import linprog

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from optimizer import (  # noqa: E402 - after the path set-up so it runs from a checkout
    Circuit,
    Evse,
    Phase,
    SessionRequest,
    Site,
    SiteProblem,
    SolveOptions,
    solve,
)
from optimizer.arrays import site_arrays  # noqa: E402
from optimizer.fallback import equal_share  # noqa: E402
from optimizer.solve import build  # noqa: E402

N_SLOTS = 96
SLOT_H = 0.25
START = datetime(2026, 11, 23, tzinfo=UTC)
PROFILES = np.array(["REGULAR", "CHEAP", "GREEN", "FAST"])
PROFILE_P = [0.6, 0.2, 0.1, 0.1]


def price_curve() -> list[float]:
    """Hourly day-ahead price (EUR/kWh) with morning and evening peaks and a midday dip, per slot."""
    hours = np.arange(24) + 0.5
    price = (
        0.20
        + 0.08 * np.exp(-0.5 * ((hours - 8) / 1.5) ** 2)
        + 0.12 * np.exp(-0.5 * ((hours - 19) / 2.0) ** 2)
        - 0.06 * np.exp(-0.5 * ((hours - 13) / 2.0) ** 2)
    )
    return [float(v) for v in np.round(np.repeat(price, 4), 4)]


def co2_curve() -> list[float]:
    """Carbon intensity (g/kWh) per slot: solar makes midday clean, the evening peak dirty."""
    hours = np.arange(N_SLOTS) * SLOT_H
    co2 = 380 - 180 * np.exp(-0.5 * ((hours - 13) / 2.5) ** 2) + 60 * np.exp(-0.5 * ((hours - 19) / 2) ** 2)
    return [float(v) for v in np.round(co2, 1)]


def _slots(hours: np.ndarray) -> np.ndarray:
    return np.round(hours / SLOT_H).astype(int)


def _assign_evses(arrival: np.ndarray, departure: np.ndarray) -> np.ndarray:
    """Give each session the first EVSE free at its arrival (a new one if none): reuse, no overlap."""
    order = np.argsort(arrival, kind="stable")
    free_at: list[int] = []
    evse = np.empty(arrival.size, dtype=int)
    for i in order:
        for k, t in enumerate(free_at):
            if t <= arrival[i]:
                evse[i], free_at[k] = k, int(departure[i])
                break
        else:
            evse[i] = len(free_at)
            free_at.append(int(departure[i]))
    return evse


def generate(kind: str, n: int, limit_fraction: float, seed: int, min_kw: float = 0.0) -> SiteProblem:
    """A site of `kind` ("workplace" or "public") with `n` sessions; see the module docstring."""
    rng = np.random.default_rng(seed)
    if kind == "workplace":
        arrival_h = np.clip(rng.normal(8.5, 1.0, n), 6.0, 11.0)
        dwell_h = np.clip(rng.normal(8.5, 1.5, n), 3.0, 11.0)
        energy = np.clip(rng.lognormal(np.log(12.0), 0.5, n), 2.0, 60.0)
        evse_of = np.arange(n)
        kinds = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
        evses = [
            Evse(
                id=f"E{k}",
                max_kw=[11.0, 7.4, 22.0][kinds[k]],
                phases=[3, 1, 3][kinds[k]],
                phase=(Phase.L1, Phase.L2, Phase.L3)[k % 3],
            )
            for k in range(n)
        ]
        car_kw = rng.choice([11.0, 7.4, 22.0], size=n, p=[0.6, 0.25, 0.15])
    else:
        peak = rng.random(n) < 0.5
        arrival_h = np.clip(np.where(peak, rng.normal(12, 2, n), rng.normal(18, 2, n)), 6.0, 22.0)
        dwell_h = np.clip(rng.exponential(2.0, n), 1 / 3, 8.0)
        energy = rng.uniform(5.0, 45.0, n)
        a, d = _slots(arrival_h), _slots(arrival_h) + np.maximum(_slots(dwell_h), 1)
        evse_of = _assign_evses(a, d)
        n_evse = int(evse_of.max()) + 1
        dc = rng.random(n_evse) < 0.4
        evses = [
            Evse(id=f"E{k}", max_kw=50.0 if dc[k] else 22.0, phases=3, dc=bool(dc[k])) for k in range(n_evse)
        ]
        car_kw = rng.choice([11.0, 22.0, 50.0, 100.0], size=n, p=[0.3, 0.3, 0.25, 0.15])
    arrival = _slots(arrival_h)
    departure = arrival + np.maximum(_slots(dwell_h), 1)
    profile = rng.choice(PROFILES, size=n, p=PROFILE_P)
    sessions = tuple(
        SessionRequest(
            id=f"S{i}",
            evse=f"E{evse_of[i]}",
            arrival_slot=int(arrival[i]),
            departure_slot=int(departure[i]),
            energy_kwh=round(float(energy[i]), 2),
            max_kw=float(car_kw[i]),
            min_kw=min_kw,
            profile_type=str(profile[i]),  # type: ignore[arg-type]
        )
        for i in range(n)
    )
    circuits = tuple(
        Circuit(
            id=f"C{c}",
            evses=tuple(e.id for e in evses[c * 10 : (c + 1) * 10]),
            limit_kw=round(0.7 * sum(e.max_kw for e in evses[c * 10 : (c + 1) * 10]), 1),
        )
        for c in range((len(evses) + 9) // 10)
    )
    draft = SiteProblem(
        start=START,
        slot_minutes=15,
        n_slots=N_SLOTS,
        site=Site(limit_kw=1e9),
        evses=tuple(evses),
        sessions=sessions,
        circuits=circuits,
        price_per_kwh=tuple(price_curve()),
        co2_g_per_kwh=tuple(co2_curve()),
    )
    peak_kw = float(uncontrolled(draft).sum(axis=0).max())
    return SiteProblem(
        start=draft.start,
        slot_minutes=draft.slot_minutes,
        n_slots=N_SLOTS,
        site=Site(limit_kw=round(limit_fraction * peak_kw, 1)),
        evses=draft.evses,
        sessions=sessions,
        circuits=circuits,
        price_per_kwh=draft.price_per_kwh,
        co2_g_per_kwh=draft.co2_g_per_kwh,
    )


def uncontrolled(problem: SiteProblem) -> np.ndarray:
    """Every car at full power from arrival until its need is met, limits ignored: (N, T) kW."""
    arrays = site_arrays(problem)
    power = np.where(arrays.presence(), arrays.ub_kw[:, None], 0.0)
    before = np.cumsum(power, axis=1) * arrays.slot_h - power * arrays.slot_h
    return np.clip((arrays.need_kwh[:, None] - before) / arrays.slot_h, 0.0, power)


def max_deliverable(problem: SiteProblem) -> float:
    """The most energy the limits allow (kWh): the site's LP rows with only "maximise energy" as cost."""
    arrays = site_arrays(problem)
    lp = build(arrays, SolveOptions(fairness_segments=1, smoothing=False))
    c = np.zeros(lp.cols.total)
    c[: lp.cols.n_pairs] = -arrays.slot_h
    rows = lp.a.tocsr()
    res = linprog(
        c,
        A_ub=rows[lp.n_eq :],
        b_ub=lp.row_upper[lp.n_eq :],
        A_eq=rows[: lp.n_eq],
        b_eq=lp.row_upper[: lp.n_eq],
        bounds=np.stack([lp.lb, lp.ub], axis=1),
        method="highs",
    )
    assert res.status == 0, res.message
    return float(-res.fun)


def run_case(kind: str, n: int, fraction: float, repeat: int, min_kw: float) -> dict[str, object]:
    """Time one case in this process and measure its energy figures."""
    problem = generate(kind, n, fraction, seed=n * 7 + int(fraction * 100), min_kw=min_kw)
    builds, solves, walls = [], [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        plan = solve(problem)
        walls.append(time.perf_counter() - t0)
        builds.append(plan.stats.build_s)
        solves.append(plan.stats.solve_s)
    best = max_deliverable(problem) if min_kw == 0 else None
    arrays = site_arrays(problem)
    fair = float(equal_share(arrays).sum() * arrays.slot_h)
    wild = float(uncontrolled(problem).sum() * arrays.slot_h)
    reference = best if best else plan.objective.reachable_kwh
    return {
        "kind": kind,
        "n": n,
        "fraction": fraction,
        "min_kw": min_kw,
        "build_s": statistics.median(builds),
        "solve_s": statistics.median(solves),
        "total_s": statistics.median(walls),
        "vars": plan.stats.variables,
        "rows": plan.stats.constraints,
        "status": str(plan.status),
        "path": str(plan.path),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "energy_pct": 100 * plan.objective.delivered_kwh / reference,
        "uncontrolled_pct": 100 * wild / reference,
        "equal_share_pct": 100 * fair / reference,
        "reference": "max" if best else "reach",
        "jain": plan.jain_index,
        "switching_kw": plan.objective.switching_kw,
    }


def small_site_throughput(count: int, processes: int = 0, min_kw: float = 0.0) -> float:
    """Plan `count` different 10-session sites; return sites per second.

    Back to back in this process, or on a pool of `processes` solver processes started as the
    service starts them (`optimizer.executor = "process"`), warmed up before the clock starts.
    `min_kw` gives every session that minimum rate (the service's default 6 A: 4.1 kW on 3 phases).
    """
    problems = [generate("workplace", 10, 0.6, seed=s, min_kw=min_kw) for s in range(count)]
    if not processes:
        t0 = time.perf_counter()
        for problem in problems:
            solve(problem)
        return count / (time.perf_counter() - t0)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("forkserver")) as pool:
        list(pool.map(solve, problems[: 2 * processes]))
        t0 = time.perf_counter()
        for future in [pool.submit(solve, problem) for problem in problems]:
            future.result()
        return count / (time.perf_counter() - t0)


def main() -> None:
    """Run every case in a child process and print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 5,000-session cases")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (median reported)")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: kind,n,fraction,min_kw
    args = parser.parse_args()
    if args.case:
        kind, n, fraction, min_kw = args.case.split(",")
        print(json.dumps(run_case(kind, int(n), float(fraction), args.repeat, float(min_kw))))
        return

    sizes = [10, 100, 1000] if args.quick else [10, 100, 1000, 5000]
    cases = [(k, n, f, 0.0) for k in ("workplace", "public") for f in (0.6, 0.3) for n in sizes]
    # 6 A x 230 V x 3: the service's default minimum rate
    cases += [("workplace", n, f, 4.1) for f in (0.6, 0.3) for n in (10, 100, 1000)]
    print(
        "| site | sessions | limit | min kW | build s | solve s | total s | vars | rows | peak RSS MB "
        "| status (path) | energy % | uncontrolled % | equal share % | Jain | switching kW |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for kind, n, fraction, min_kw in cases:
        # Small sites take milliseconds and this machine's timings spread by +-30 %: more runs there.
        repeat = 1 if n >= 5000 else max(args.repeat, 15) if n <= 100 else args.repeat
        out = subprocess.run(
            [sys.executable, __file__, "--case", f"{kind},{n},{fraction},{min_kw}", "--repeat", str(repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout)
        jain = "-" if r["jain"] is None else f"{r['jain']:.3f}"
        print(
            f"| {kind} | {n} | {int(fraction * 100)} % | {min_kw:g} "
            f"| {r['build_s']:.4f} | {r['solve_s']:.4f} | {r['total_s']:.4f} | {r['vars']} | {r['rows']} "
            f"| {r['rss_mb']:.0f} | {r['status']} ({r['path']}) "
            f"| {r['energy_pct']:.2f} | {r['uncontrolled_pct']:.1f}* | {r['equal_share_pct']:.1f} | {jain} "
            f"| {r['switching_kw']:.0f} |",
            flush=True,
        )
    print("\n* uncontrolled ignores the site and circuit limits: its energy is not achievable within them.")
    print(
        "energy % is relative to the most the limits allow (max); with minimum rates, to the sum of "
        "what each session could take alone (reach), since the LP maximum ignores the minimum rates."
    )
    print(f"\n10-session workplace sites, planned back to back: {small_site_throughput(200):.0f} sites/s; "
          f"on 2 solver processes: {small_site_throughput(1000, processes=2):.0f} sites/s")
    print(f"the same with a 4.1 kW minimum rate: {small_site_throughput(200, min_kw=4.1):.0f} sites/s; "
          f"on 2 solver processes: {small_site_throughput(400, processes=2, min_kw=4.1):.0f} sites/s")


if __name__ == "__main__":
    main()
