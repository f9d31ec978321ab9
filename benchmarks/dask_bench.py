"""Batch planning of a fleet of small sites: the local process pool against a Dask LocalCluster
(not part of the test run).

Run: `.venv/bin/python benchmarks/dask_bench.py` (`--fleet N` sites, 2,000 by default; `--runs N`
timed runs per executor, 3 by default, interleaved; `--workers N`, 2 by default). Prints a
markdown table: min / median wall time of a full pass, sites per second (median), and what Dask
adds per site against the pool (difference of the medians / sites).

The fleet is `benchmarks/fleet_bench.py`'s (sessions ~ Uniform{10, ..., 50}, workplace 60 % /
public 40 %, limit fraction ~ Uniform(0.3, 0.6), seed = index), as JSON lines. Each pass is what
`scsp solve --batch` does between reading and writing: `scsp.cli.batch.solve_all`, the lines sent
in chunks (`scsp.cli.batch.chunks`: at most 25 lines each), decoded, validated and solved on the
workers, the plans' JSON collected in order. The pool is `ProcessPoolExecutor` (forkserver, as the
service starts it); the cluster is `distributed.LocalCluster` with `--workers` worker processes of
one thread each, over TCP on 127.0.0.1, reached through `scsp.planning.executors.DaskExecutor`
(msgspec payloads). Both are started and warmed up (imports, one chunk per worker) before the
clock starts; start-up itself is printed apart.

The cost of a task itself: `--tasks` tasks of one empty line each (answered by its error object,
no solve), submitted at once as the service submits one task per site; the time per task is the
executor's round trip (encode, send, schedule, run, return, decode) with both workers busy.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import msgspec

os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # before distributed is imported
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_bench import fleet_site  # noqa: E402 - after the path set-up so it runs from a checkout
from optimizer import SolveOptions  # noqa: E402
from optimizer.batch import solve_lines  # noqa: E402
from scsp.cli.batch import solve_all  # noqa: E402
from scsp.planning.executors import DaskExecutor  # noqa: E402


def one_pass(executor: Executor, lines: list[tuple[int, bytes]], workers: int) -> float:
    t0 = time.perf_counter()
    answers = list(solve_all(executor, lines, SolveOptions(), workers))
    seconds = time.perf_counter() - t0
    assert len(answers) == len(lines) and not any(a.startswith(b'{"error"') for a in answers)
    return seconds


def round_trips(executor: Executor, tasks: int) -> float:
    """Seconds per task of `tasks` one-line tasks that cost no solve (an empty line: its error
    object), all submitted at once, as the service submits one task per site."""
    t0 = time.perf_counter()
    futures = [executor.submit(solve_lines, [(k, b"")], SolveOptions()) for k in range(tasks)]
    assert all(f.result()[0].startswith(b'{"error"') for f in futures)
    return (time.perf_counter() - t0) / tasks


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f}"


def main() -> None:
    from distributed import LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=int, default=2000, help="sites in the fleet")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per executor (interleaved)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of each executor")
    parser.add_argument("--tasks", type=int, default=1000, help="one-line tasks of the per-task round trip")
    args = parser.parse_args()

    lines = [(k + 1, msgspec.json.encode(fleet_site(k))) for k in range(args.fleet)]
    warm = lines[: 2 * args.workers]
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("forkserver"))
    one_pass(pool, warm, args.workers)
    pool_start = time.perf_counter() - t0
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0")
    dask = DaskExecutor(cluster.scheduler_address)
    one_pass(dask, warm, args.workers)
    dask_start = time.perf_counter() - t0
    times: dict[str, list[float]] = {"pool": [], "dask": []}
    trips: dict[str, list[float]] = {"pool": [], "dask": []}
    try:
        for _ in range(args.runs):
            times["pool"].append(one_pass(pool, lines, args.workers))
            times["dask"].append(one_pass(dask, lines, args.workers))
            trips["pool"].append(round_trips(pool, args.tasks))
            trips["dask"].append(round_trips(dask, args.tasks))
    finally:
        pool.shutdown()
        dask.shutdown()
        cluster.close()

    n, w = args.fleet, args.workers
    pool_median, dask_median = statistics.median(times["pool"]), statistics.median(times["dask"])
    print("| case | min / median (s) | sites/s (median) |")
    print("|---|---:|---:|")
    print(f"| {n:,} small sites, local process pool, {w} workers | {spread(times['pool'])} | {n / pool_median:.0f} |")
    print(f"| the same, Dask LocalCluster, {w} workers x 1 thread | {spread(times['dask'])} | {n / dask_median:.0f} |")
    print(f"| Dask adds per site (difference of medians) | {(dask_median - pool_median) / n * 1e3:+.3f} ms | |")
    for name, label in (("pool", "local process pool"), ("dask", "Dask LocalCluster")):
        ms = [t * 1e3 for t in trips[name]]
        print(f"| one task without a solve, {label}: ms per task (min / median) "
              f"| {min(ms):.3f} / {statistics.median(ms):.3f} | |")
    print(f"\n(start-up and warm-up, not timed above: pool {pool_start:.1f} s, LocalCluster {dask_start:.1f} s)")


if __name__ == "__main__":
    main()
