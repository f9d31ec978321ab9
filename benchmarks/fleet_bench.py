"""Fleet benchmark of `optimizer.solve`: small sites end to end, a fleet re-plan on worker
processes, cold and warm re-plans of large sites (not part of the test run).

Run: `.venv/bin/python benchmarks/fleet_bench.py` (`--quick`: fewer runs and no 5,000-session
cases; `--runs N`: runs per timing; `--fleet N`: sites in the fleet, 10,000 by default; `--dask`:
the same fan-out on a Dask `LocalCluster` too). Every timing is printed as min / median over its
runs, in seconds unless it says ms.

Sites come from `benchmarks/optimizer_bench.py`'s generators (workplace and public, 96 slots of
15 min; their distributions are in its docstring). On top of them:

* **small sites**: 200 different 10-session sites (workplace and public alternating, site limit
  at 60 % or 30 % of the uncontrolled peak alternating, seed = index), planned back to back in
  this process; the figure is the time per site of one pass, `solve` end to end (validate,
  arrays, build, HiGHS, checks, plan).
* **fleet**: `--fleet` sites, sessions ~ Uniform{10, ..., 50}, workplace 60 % / public 40 %, limit
  fraction ~ Uniform(0.3, 0.6), seed = index; a full re-plan on 2 local worker processes
  (`ProcessPoolExecutor`, forkserver, as the service starts them), problems and plans
  msgspec-encoded (msgpack) both ways, in chunks of 25 sites per task. The pool is started and
  warmed up (numpy, scipy, highspy imported, one site solved per worker) before the clock starts.
* **cold / warm**: a workplace site of N sessions (limit 60 %) is planned at 00:00, moved on to
  10:00 (everyone has arrived) and planned again; then each next cycle is the site one slot
  later: what the first slot delivered is done, the session leaving first has left (early), a new
  one (11 kW, 2-60 kWh lognormal, staying 4-10 h) has arrived on its EVSE, and every session
  carries the previous plan as `previous_kw`, as the service sends it. After one such cycle (so
  the continuity terms are the steady-state ones) the next is timed cold (`solve`) and warm
  (`solve_with_basis` with the previous cycle's basis, decoded from msgpack each run).
* **minimum rate**: the 1,000-session workplace site (60 %) with a 4.1 kW minimum on every session
  (the dive: hot-started re-solves), cold.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.optimizer_bench import generate  # noqa: E402
from optimizer import (  # noqa: E402 - after the path set-up so it runs from a checkout
    Plan,
    SessionRequest,
    SiteProblem,
    WarmStart,
    solve,
    solve_with_basis,
)

CHUNK = 25  # sites per task: enough to hide the per-task cost of the pool, small enough to balance
_encode = msgspec.msgpack.Encoder().encode
_decode_problem = msgspec.msgpack.Decoder(SiteProblem).decode
_decode_plan = msgspec.msgpack.Decoder(Plan).decode
_decode_warm = msgspec.msgpack.Decoder(WarmStart).decode


def solve_encoded(blobs: list[bytes]) -> list[bytes]:
    """Worker side: msgpack problems in, msgpack plans out."""
    return [_encode(solve(_decode_problem(blob))) for blob in blobs]


def fleet_site(index: int) -> SiteProblem:
    """Site `index` of the fleet (see the module docstring)."""
    rng = np.random.default_rng(10_000_000 + index)
    kind = "workplace" if rng.random() < 0.6 else "public"
    return generate(kind, int(rng.integers(10, 51)), round(float(rng.uniform(0.3, 0.6)), 3), seed=index)


def advance(problem: SiteProblem, plan: Plan, slots: int, rng: np.random.Generator, *, turnover: int = 0,
            tag: str = "N") -> SiteProblem:
    """The site `slots` slots later (see "cold / warm"): `turnover` sessions left and as many arrived."""
    slot_h = problem.slot_minutes / 60
    sessions = []
    for request, planned in zip(problem.sessions, plan.sessions, strict=True):
        if request.departure_slot <= slots:
            continue
        done = sum(planned.power_kw[:slots]) * slot_h
        sessions.append(msgspec.structs.replace(
            request,
            arrival_slot=max(request.arrival_slot - slots, 0),
            departure_slot=request.departure_slot - slots,
            energy_kwh=round(max(request.energy_kwh - done, 0.0), 6),
            previous_kw=(*planned.power_kw[slots:], *(0.0,) * slots),
        ))
    freed = []
    for _ in range(turnover):
        leaving = min(range(len(sessions)), key=lambda j: (sessions[j].departure_slot, j))
        freed.append(sessions.pop(leaving).evse)
    for k, evse in enumerate(freed):
        sessions.append(SessionRequest(
            id=f"{tag}{k}", evse=evse, arrival_slot=0, departure_slot=int(rng.integers(16, 41)),
            energy_kwh=round(float(np.clip(rng.lognormal(np.log(12.0), 0.5), 2.0, 60.0)), 2), max_kw=11.0,
        ))

    def roll(signal: Any) -> Any:  # the same absolute prices, the horizon moved on
        return None if signal is None or isinstance(signal, float) else (*signal[slots:], *signal[:slots])

    return msgspec.structs.replace(
        problem, start=problem.start + timedelta(minutes=problem.slot_minutes * slots), sessions=tuple(sessions),
        price_per_kwh=roll(problem.price_per_kwh), co2_g_per_kwh=roll(problem.co2_g_per_kwh),
    )


def timed(run: Callable[[], object], runs: int) -> list[float]:
    """Wall time (s) of `runs` calls."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run()
        out.append(time.perf_counter() - t0)
    return out


def spread(values: list[float], scale: float = 1.0, digits: int = 3) -> str:
    """'min / median' of `values` x `scale`."""
    return f"{min(values) * scale:.{digits}f} / {statistics.median(values) * scale:.{digits}f}"


def small_sites(runs: int) -> dict[str, list[float]]:
    """Per-site time (s) of one back-to-back pass over 100 different 10-session sites, per kind
    and limit (workplace and public, 60 % and 30 %), and over all 400."""
    out: dict[str, list[float]] = {}
    every: list[SiteProblem] = []
    for kind in ("workplace", "public"):
        for fraction in (0.6, 0.3):
            problems = [generate(kind, 10, fraction, seed=s) for s in range(100)]
            every += problems
            for p in problems[:20]:  # warm-up: imports, first-call costs
                solve(p)
            times = timed(lambda ps=problems: [solve(p) for p in ps], runs)
            out[f"{kind} {int(fraction * 100)} %"] = [t / len(problems) for t in times]
    out["all 400"] = [t / len(every) for t in timed(lambda: [solve(p) for p in every], runs)]
    return out


def _chunks(blobs: list[bytes]) -> list[list[bytes]]:
    return [blobs[k : k + CHUNK] for k in range(0, len(blobs), CHUNK)]


def _worker() -> Callable[[list[bytes]], list[bytes]]:
    """`solve_encoded` as a function of the importable module, so workers load it by name (the
    copy in `__main__` would be pickled by value with its msgspec decoders, which Dask refuses)."""
    from benchmarks.fleet_bench import solve_encoded as worker

    return worker


def fleet_pool(blobs: list[bytes], runs: int, workers: int = 2) -> list[float]:
    """Wall time (s) of a full re-plan of the encoded fleet on a warmed-up process pool."""
    solve_encoded = _worker()
    chunks = _chunks(blobs)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        list(pool.map(solve_encoded, [blobs[:1]] * (2 * workers)))
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            plans = [plan for chunk in pool.map(solve_encoded, chunks) for plan in chunk]
            times.append(time.perf_counter() - t0)
        assert len(plans) == len(blobs) and _decode_plan(plans[-1]).sessions is not None
    return times


def fleet_dask(blobs: list[bytes], runs: int, workers: int = 2) -> list[float]:
    """The same on a Dask LocalCluster of `workers` single-threaded worker processes."""
    from distributed import Client, LocalCluster

    solve_encoded = _worker()
    chunks = _chunks(blobs)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        client.gather(client.map(solve_encoded, [blobs[:1]] * (2 * workers), pure=False))
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            futures = client.map(solve_encoded, chunks, pure=False)
            plans = [plan for chunk in client.gather(futures) for plan in chunk]
            times.append(time.perf_counter() - t0)
        assert len(plans) == len(blobs)
    return times


def cold_warm(n: int, runs: int) -> tuple[list[float], list[float], int, bool]:
    """Cold and warm times (s) of the timed cycle of an n-session site, the basis size, warm used."""
    rng = np.random.default_rng(n)
    first = generate("workplace", n, 0.6, seed=n)
    site = advance(first, solve(first), 40, rng)
    plan, basis = solve_with_basis(site)
    for cycle in range(2):  # one cycle to reach steady-state continuity, then the timed one
        site = advance(site, plan, 1, rng, turnover=1, tag=f"N{cycle}-")
        if cycle == 0:
            plan, basis = solve_with_basis(site, warm=basis)
    assert basis is not None
    blob = _encode(basis)
    cold = timed(lambda: solve(site), runs)
    used: list[bool] = []

    def warm() -> None:
        _, again = solve_with_basis(site, warm=_decode_warm(blob))
        used.append(again is not None and again.warm)

    warm_times = timed(warm, runs)
    reference, warm_plan = solve(site), solve(site, warm=_decode_warm(blob))
    gap = abs(reference.objective.delivered_kwh - warm_plan.objective.delivered_kwh)
    assert gap <= 1e-6 * max(reference.objective.delivered_kwh, 1.0), gap
    return cold, warm_times, len(blob), all(used)


def main() -> None:
    """Run the cases and print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, no 5,000-session cases")
    parser.add_argument("--runs", type=int, default=5, help="runs per timing (3 for 5,000 sessions)")
    parser.add_argument("--fleet", type=int, default=10_000, help="sites in the fleet re-plan")
    parser.add_argument("--dask", action="store_true", help="also fan the fleet out on a Dask LocalCluster")
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs

    print("| case | min / median | target |")
    print("|---|---:|---:|")
    for kind, values in small_sites(runs).items():
        print(f"| 10 sessions x 96, {kind}, per site end to end (ms) | {spread(values, 1e3, 2)} | <= 2.5 |", flush=True)

    t0 = time.perf_counter()
    blobs = [_encode(fleet_site(k)) for k in range(args.fleet)]
    setup = time.perf_counter() - t0
    pool_times = fleet_pool(blobs, max(2, runs // 2))
    target = " <= 15" if args.fleet == 10_000 else ""
    print(f"| {args.fleet:,} small sites (10-50 sessions), full re-plan, 2 processes (s) "
          f"| {spread(pool_times, 1.0, 2)} |{target} |")
    print(f"| the same, sites/s | {args.fleet / statistics.median(pool_times):.0f} (median) | |", flush=True)
    if args.dask:
        dask_times = fleet_dask(blobs, max(2, runs // 2))
        overhead_ms = (statistics.median(dask_times) - statistics.median(pool_times)) / args.fleet * 1e3
        print(f"| the same on a Dask LocalCluster, 2 workers x 1 thread (s) | {spread(dask_times, 1.0, 2)} | |")
        rate = args.fleet / statistics.median(dask_times)
        print(f"| Dask: sites/s; added per site vs the process pool | {rate:.0f}; {overhead_ms:+.3f} ms (medians) | |",
              flush=True)

    sizes = (1000,) if args.quick else (1000, 5000)
    targets = {1000: ("<= 0.10", "<= 0.05"), 5000: ("<= 2.0", "<= 0.6")}
    medians: dict[tuple[int, str], float] = {}
    for n in sizes:
        cold, warm, size, used = cold_warm(n, runs if n < 5000 else max(2, min(runs, 3)))
        medians[(n, "cold")], medians[(n, "warm")] = statistics.median(cold), statistics.median(warm)
        print(f"| {n:,} x 96 cold (s) | {spread(cold)} | {targets[n][0]} |")
        print(f"| {n:,} x 96 warm, next cycle (s) | {spread(warm)} | {targets[n][1]} |")
        print(f"| {n:,} x 96 warm start: msgpack bytes; the basis was taken | {size:,}; {used} | |", flush=True)
    minimum = generate("workplace", 1000, 0.6, seed=1000, min_kw=4.1)
    plan = solve(minimum)
    times = timed(lambda: solve(minimum), max(2, min(runs, 3)))
    print(f"| 1,000 x 96, 4.1 kW minimum, cold (s) [{plan.status} ({plan.path})] | {spread(times)} | <= 0.5 |")
    if 5000 in sizes:
        for mode in ("cold", "warm"):
            ratio = medians[(5000, mode)] / medians[(1000, mode)]
            print(f"| growth 1,000 -> 5,000 sessions, {mode} (x, medians) | {ratio:.1f} | |")
    print(f"\n(fleet generated and encoded in {setup:.0f} s, not timed)")


if __name__ == "__main__":
    main()
