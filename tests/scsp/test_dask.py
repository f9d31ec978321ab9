"""Solving on a real dask.distributed `LocalCluster` (worker processes over TCP on 127.0.0.1): the
service engine with `executor = "dask"`, the Executor adapter, and a worker killed mid-batch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import wait
from pathlib import Path

import dask
import msgspec
import pytest
from distributed import Client, LocalCluster

from benchmarks.optimizer_bench import generate
from optimizer import SolveOptions, decode_plan, decode_problem
from optimizer.batch import solve_lines
from scsp.config import Config, OptimizerConfig
from scsp.planning.executors import DaskExecutor
from tests.optimizer.support import assert_plan_valid
from tests.scsp.test_engine import plan_once, site_with_sessions

ROOT = Path(__file__).resolve().parents[2]


def local_cluster(n_workers: int = 2) -> LocalCluster:
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", scheduler_port=0)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with local_cluster() as running:
        yield running


def with_dask(config: Config, address: str, **options: float) -> Config:
    return msgspec.structs.replace(config, optimizer=OptimizerConfig(executor="dask", scheduler=address,
                                                                     **options))  # type: ignore[arg-type]


def test_the_engine_plans_its_sites_on_the_cluster_as_it_does_in_threads(tmp_path: Path,
                                                                           cluster: LocalCluster) -> None:
    store, config = site_with_sessions(tmp_path, "thread")
    [reference] = plan_once(store, config)
    store, config = site_with_sessions(tmp_path / "dask", "thread")
    [plan] = plan_once(store, with_dask(config, cluster.scheduler_address))
    assert (plan.status, plan.path) == (reference.status, reference.path) == ("OPTIMAL", reference.path)
    assert max(plan.site_power_w) <= 30_000.0 + 1e-3
    assert [row.power_w for row in plan.sessions] == [row.power_w for row in reference.sessions]


def test_an_unreachable_scheduler_costs_the_cycle_failsafe_plans_not_the_cycle(tmp_path: Path) -> None:
    store, config = site_with_sessions(tmp_path, "thread")
    [plan] = plan_once(store, with_dask(config, "tcp://127.0.0.1:9"))  # nothing listens on port 9
    assert (plan.status, plan.path) == ("FALLBACK", "failsafe")
    tails = [row.profile.charging_profile_period[-1].limit * 690 for row in plan.sessions if row.profile]
    assert len(tails) == 6 and sum(tails) <= 9_000.0


def test_a_cluster_without_workers_costs_failsafe_plans_after_the_task_timeout(tmp_path: Path) -> None:
    store, config = site_with_sessions(tmp_path, "thread")
    with local_cluster(n_workers=0) as empty:
        [plan] = plan_once(store, with_dask(config, empty.scheduler_address, task_timeout_s=2.0))
    assert (plan.status, plan.path) == ("FALLBACK", "failsafe")


def test_the_adapter_ships_msgspec_payloads_and_returns_ordinary_futures(cluster: LocalCluster) -> None:
    good = msgspec.json.encode(generate("workplace", 12, 0.5, seed=3))
    executor = DaskExecutor(cluster.scheduler_address)
    try:
        assert executor.threads() == 2  # 2 workers x 1 thread: what `--batch --scheduler` chunks for
        future = executor.submit(solve_lines, [(1, good), (2, b"[]")], SolveOptions())
        plan_json, error = future.result(timeout=120)
        assert_plan_valid(decode_problem(good), decode_plan(plan_json))
        assert json.loads(error)["error"]["line"] == 2
        with pytest.raises(TypeError, match="module-level"):
            executor.submit(lambda: None)
        failing = executor.submit(solve_lines, [(1, good)], "not options")  # type: ignore[arg-type]
        with pytest.raises(msgspec.ValidationError):  # decoded by the annotation on the worker
            failing.result(timeout=120)
        # Nothing stays on the cluster once a result is in: the tasks (and results) are released.
        deadline = time.monotonic() + 60
        while cluster.scheduler.tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not cluster.scheduler.tasks
    finally:
        executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(solve_lines, [], SolveOptions())


def test_killing_a_worker_mid_batch_costs_only_its_sites(tmp_path: Path) -> None:
    # Slow lines (a minimum rate: the MILP and its dive) so the kill lands while they are solved.
    lines = [msgspec.json.encode(generate("workplace", 300, 0.5, seed=s, min_kw=4.1)) for s in range(8)]
    source, target = tmp_path / "problems.jsonl", tmp_path / "plans.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    # No retry on another worker: the lost tasks fail, so the test sees what a loss costs.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster() as cluster, \
            Client(cluster.scheduler_address, set_as_default=False) as client:
        pids = client.run(os.getpid)
        batch = subprocess.Popen(
            [sys.executable, "-m", "scsp.cli.solve", "--batch", str(source), "--out", str(target),
             "--executor", "dask", "--scheduler", cluster.scheduler_address, "--milp-time-limit-s", "30"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            busy: list[str] = []
            while not busy and time.monotonic() < deadline and batch.poll() is None:
                busy = [worker for worker, keys in client.processing().items() if keys]
                time.sleep(0.02)
            assert busy, "no task reached a worker"
            os.kill(pids[busy[0]], signal.SIGKILL)
            _, stderr = batch.communicate(timeout=300)
        finally:
            batch.kill()
    answers = target.read_bytes().splitlines()
    assert len(answers) == len(lines)
    lost = [k for k, a in enumerate(answers) if a.startswith(b'{"error"')]
    assert 1 <= len(lost) < len(lines), stderr
    for k in lost:
        error = json.loads(answers[k])["error"]
        assert error["line"] == k + 1 and "lost" in error["message"]
    for k, answer in enumerate(answers):
        if k not in lost:
            assert_plan_valid(decode_problem(lines[k]), decode_plan(answer))
    assert batch.returncode == 1 and f"({len(lost)} errors)".encode() in stderr


def test_a_scheduler_that_goes_away_fails_the_futures_it_held_instead_of_hanging() -> None:
    slow = [msgspec.json.encode(generate("workplace", 300, 0.5, seed=s, min_kw=4.1)) for s in range(4)]
    with local_cluster(n_workers=1) as cluster:
        executor = DaskExecutor(cluster.scheduler_address, task_timeout_s=600.0)
        executor.connect()
        futures = [executor.submit(solve_lines, [(1, line)], SolveOptions(milp_time_limit_s=30)) for line in slow]
        wait(futures[:1], timeout=120)  # the first is through; one worker still has three to go
    try:
        done, pending = wait(futures, timeout=120)  # far below the task timeout: the loss itself ends them
        assert not pending
        assert futures[0].exception() is None
        assert isinstance(futures[-1].exception(), Exception)
    finally:
        executor.shutdown()


def test_the_dask_executor_needs_a_scheduler_address() -> None:
    config = msgspec.convert({"executor": "dask", "scheduler": "tcp://10.0.0.5:8786"}, OptimizerConfig)
    assert (config.executor, config.scheduler) == ("dask", "tcp://10.0.0.5:8786")
    with pytest.raises(msgspec.ValidationError, match="needs scheduler"):
        msgspec.convert({"executor": "dask"}, OptimizerConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"executor": "dask", "scheduler": "10.0.0.5 8786"}, OptimizerConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"executor": "dask", "scheduler": "tcp://h:1", "task_timeout_s": 0}, OptimizerConfig)
