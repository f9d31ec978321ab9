"""`scsp solve --batch PROBLEMS.jsonl [--out PLANS.jsonl] [--workers N] [--executor process|dask]
[--scheduler ADDRESS]`: plan many sites, one problem per line, in parallel.

The contract (tooling depends on it):

* input: JSON lines (UTF-8, `\\n` or `\\r\\n` between lines), each one problem in the `scsp solve`
  contract (`optimizer.decode_problem`); a final newline is optional;
* output (`--out`, or stdout): exactly one JSON document per input line, in the input's order:
  the plan (`optimizer.encode_plan`, as `scsp solve` writes it) or, for a line that is not a valid
  problem (an empty line too), `{"error": {"line": N, "message": "..."}}` with N counted from 1. A
  line whose solve was lost (its worker died) is answered the same way, the message saying so (a
  local pool broken by a dead worker is replaced once and the lines not yet done sent again);
* stderr, at the end: `scsp solve --batch: N sites (E errors) in S s: R sites/s`;
* exit code: 0 every line planned, 1 the output was written but some lines are error objects, 2
  the input could not be read, the output not written, or an option is invalid (nothing planned).

Executors: `process` (default) solves on `--workers` local worker processes; `dask` on a
dask.distributed cluster, the scheduler at `--scheduler tcp://host:8786`, or without it a
`LocalCluster` of `--workers` single-threaded worker processes started for this run. The lines are
sent to the workers in chunks (a few per worker, at most `CHUNK` lines each); workers decode,
validate and solve (`optimizer.batch.solve_lines`), so the main process only reads and writes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

from optimizer import SolveOptions
from optimizer.batch import error_line, solve_lines

__all__ = ["CHUNK", "add_arguments", "read_lines", "run"]

# Most lines per task: enough to hide the per-task cost of a pool or of Dask (about a millisecond
# a task), few enough that the workers stay balanced and a lost worker costs few sites.
CHUNK = 25


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--batch` options of `scsp solve`."""
    parser.add_argument("--batch", type=Path, metavar="PROBLEMS.jsonl",
                        help="plan every problem of a JSON-lines file, one plan (or error object) per line")
    parser.add_argument("--workers", type=int, default=2,
                        help="with --batch: local worker processes (default: %(default)s); with --scheduler "
                             "the cluster's own workers are used")
    parser.add_argument("--executor", choices=("process", "dask"), default="process",
                        help="with --batch: local worker processes, or a Dask cluster (default: %(default)s)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="with --executor dask: the scheduler, e.g. tcp://host:8786 "
                             "(default: a local cluster of --workers processes)")


def read_lines(data: bytes) -> list[tuple[int, bytes]]:
    """The numbered lines (from 1) of a JSON-lines document; a final newline ends the last line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [(k, line.removesuffix(b"\r")) for k, line in enumerate(lines, start=1)]


def chunks(lines: list[tuple[int, bytes]], workers: int) -> list[list[tuple[int, bytes]]]:
    """The lines in chunks: about four per worker for balance, at most `CHUNK` lines each."""
    size = max(1, min(CHUNK, -(-len(lines) // (4 * workers))))
    return [lines[k : k + size] for k in range(0, len(lines), size)]


def _fail(message: str) -> int:
    print(f"scsp solve --batch: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    """Run `scsp solve --batch` (see the module docstring for the contract and exit codes)."""
    if args.problem is not None:
        return _fail("give either PROBLEM.json or --batch PROBLEMS.jsonl, not both")
    if getattr(args, "profiles", False):
        return _fail("--profiles is for a single problem, not --batch")
    if args.workers < 1:
        return _fail("--workers must be >= 1")
    if args.scheduler is not None and args.executor != "dask":
        return _fail("--scheduler needs --executor dask")
    if not args.milp_time_limit_s > 0:
        return _fail("--milp-time-limit-s must be > 0")
    try:
        lines = read_lines(args.batch.read_bytes())
    except OSError as exc:
        return _fail(f"cannot read {args.batch}: {exc.strerror or exc}")
    options = SolveOptions(milp_time_limit_s=args.milp_time_limit_s)
    started = time.perf_counter()
    errors = 0
    with ExitStack() as stack:
        try:  # first: a scheduler that cannot be reached leaves no empty PLANS file behind
            executor = stack.enter_context(_executor(args))
        except Exception as exc:  # noqa: BLE001 - no cluster, no plans: say why
            return _fail(f"cannot start the {args.executor} executor: {exc}")
        try:
            out: BinaryIO = sys.stdout.buffer if args.out is None else stack.enter_context(args.out.open("wb"))
        except OSError as exc:
            return _fail(f"cannot write {args.out}: {exc.strerror or exc}")
        try:
            renew = None
            if args.executor == "process":  # a dead worker breaks the whole pool: one fresh pool
                def renew() -> Executor:
                    return stack.enter_context(_executor(args))
            for answer in solve_all(executor, lines, options, _parallel(args, executor), renew):
                errors += answer.startswith(b'{"error":')
                out.write(answer + b"\n")
            out.flush()
        except OSError as exc:
            return _fail(f"cannot write {args.out or 'stdout'}: {exc.strerror or exc}")
    seconds = time.perf_counter() - started
    rate = len(lines) / seconds if seconds > 0 else 0.0
    print(f"scsp solve --batch: {len(lines)} sites ({errors} errors) in {seconds:.2f} s: {rate:.1f} sites/s",
          file=sys.stderr)
    return 1 if errors else 0


def _parallel(args: argparse.Namespace, executor: Executor) -> int:
    """How many chunks run at once: `--workers`, or every thread of a remote cluster."""
    threads = getattr(executor, "threads", None)  # DaskExecutor.threads
    if args.scheduler is None or threads is None:
        return int(args.workers)
    try:
        return max(int(args.workers), int(threads()))
    except Exception:  # noqa: BLE001 - the scheduler just went away: the solves will say so
        return int(args.workers)


def solve_all(executor: Executor, lines: list[tuple[int, bytes]], options: SolveOptions, workers: int,
              renew: Callable[[], Executor] | None = None) -> Iterator[bytes]:
    """One answer per line, in order, as the chunks finish; a chunk whose solve failed (its worker
    was lost) is answered with an error object on each of its lines.

    A process pool whose worker dies is broken for every chunk not yet done (`BrokenExecutor`);
    with `renew` those chunks are sent once more, to the executor `renew()` returns, so one lost
    process costs no lines. A pool that breaks again answers its chunks with error objects.
    """
    parts = chunks(lines, workers)
    futures: list[Future[list[bytes]]] = [executor.submit(solve_lines, part, options) for part in parts]
    for k, part in enumerate(parts):
        try:
            answers = futures[k].result()
        except BrokenExecutor as exc:
            if renew is None:
                answers = _lost(part, exc)
            else:
                executor, renew = renew(), None
                again = [j for j in range(k, len(parts)) if futures[j].exception() is not None]
                print(f"scsp solve --batch: a worker process died ({exc}); {len(again)} chunks sent again",
                      file=sys.stderr)
                for j in again:
                    futures[j] = executor.submit(solve_lines, parts[j], options)
                answers = _answer(futures[k], part)
        except Exception as exc:  # noqa: BLE001 - the worker's loss costs only its lines
            answers = _lost(part, exc)
        yield from answers


def _answer(future: Future[list[bytes]], part: list[tuple[int, bytes]]) -> list[bytes]:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001
        return _lost(part, exc)


def _lost(part: list[tuple[int, bytes]], exc: BaseException) -> list[bytes]:
    reason = f"not planned: the solve was lost ({type(exc).__name__}: {exc})"
    return [error_line(number, reason) for number, _ in part]


class _LocalDask:
    """A `LocalCluster` of single-threaded worker processes and a `DaskExecutor` on it."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def __enter__(self) -> Executor:
        from distributed import LocalCluster

        from scsp.planning.executors import DaskExecutor

        self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,  # type: ignore[no-untyped-call]
                                    host="127.0.0.1", dashboard_address="127.0.0.1:0")
        self.executor = DaskExecutor(self.cluster.scheduler_address)
        return self.executor

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True)
        self.cluster.close()


class _Remote:
    def __init__(self, address: str) -> None:
        self.address = address

    def __enter__(self) -> Executor:
        from scsp.planning.executors import DaskExecutor

        self.executor = DaskExecutor(self.address)
        try:
            self.executor.connect()
        except BaseException:
            self.executor.shutdown(wait=False)
            raise
        return self.executor

    def __exit__(self, *exc: object) -> None:
        self.executor.shutdown(wait=True)


def _executor(args: argparse.Namespace) -> ProcessPoolExecutor | _LocalDask | _Remote:
    """The executor of this run, as a context manager."""
    if args.executor == "process":
        return ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("forkserver"))
    # Before dask.distributed is imported (here and in the local workers, which inherit it): its
    # INFO lines would bury the summary on stderr. An explicit setting wins.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    if args.scheduler is None:
        return _LocalDask(args.workers)
    return _Remote(args.scheduler)
