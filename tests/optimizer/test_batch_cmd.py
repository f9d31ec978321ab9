"""`scsp solve --batch PROBLEMS.jsonl`, run as a real process on real files, with both executors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from benchmarks.optimizer_bench import generate
from optimizer import Plan, decode_plan, decode_problem, encode_plan, solve
from scsp.cli.batch import chunks, read_lines
from tests.optimizer.support import CONTRACT_EXAMPLE, assert_plan_valid, with_change

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(rb"^scsp solve --batch: (\d+) sites \((\d+) errors\) in [0-9.]+ s: [0-9.]+ sites/s$")


def run_batch(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m scsp.cli.solve --batch ...` from the repository root."""
    return subprocess.run([sys.executable, "-m", "scsp.cli.solve", *args], cwd=ROOT, capture_output=True,
                          timeout=300, check=False)


def problems() -> list[bytes]:
    """Eight different valid problems: the contract example and seven generated sites."""
    lines = [json.dumps(CONTRACT_EXAMPLE).encode()]
    for seed in range(7):
        kind = "workplace" if seed % 2 else "public"
        lines.append(msgspec.json.encode(generate(kind, 10 + 3 * seed, 0.4, seed=seed)))
    return lines


def relative_gap(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1.0)


def assert_same_plan(one: Plan, other: Plan) -> None:
    for field in ("delivered_kwh", "need_kwh", "reachable_kwh", "switching_kw"):
        assert relative_gap(getattr(one.objective, field), getattr(other.objective, field)) <= 1e-9, field
    assert one.status == other.status


def test_every_line_is_answered_in_order_and_a_malformed_line_gets_its_error_object(tmp_path: Path) -> None:
    good = problems()
    lines = [good[0], b"{not json", good[1], b"", with_change("sessions[0].departure_slot", -4), *good[2:]]
    source, target = tmp_path / "problems.jsonl", tmp_path / "plans.jsonl"
    source.write_bytes(b"\r\n".join(lines[:3]) + b"\n" + b"\n".join(lines[3:]))  # no final newline
    done = run_batch("--batch", str(source), "--out", str(target), "--workers", "2")
    assert done.returncode == 1, done.stderr  # some lines are error objects
    assert done.stdout == b""
    answers = target.read_bytes().split(b"\n")
    assert answers[-1] == b"" and len(answers) - 1 == len(lines)
    errors = {k + 1: json.loads(a)["error"] for k, a in enumerate(answers[:-1]) if a.startswith(b'{"error"')}
    assert sorted(errors) == [2, 4, 5]
    assert errors[2]["line"] == 2 and "not valid JSON" in errors[2]["message"]
    assert errors[4]["line"] == 4
    assert errors[5] == {"line": 5, "message": "sessions[0].departure_slot: must be after arrival_slot=0, got -4"}
    for number, (line, answer) in enumerate(zip(lines, answers, strict=False), start=1):
        if number in errors:
            continue
        problem = decode_problem(line)
        plan = decode_plan(answer)
        assert_plan_valid(problem, plan)
        assert_same_plan(plan, solve(problem))  # the plan of this line, not of a neighbour
    *_, summary = done.stderr.strip().split(b"\n")
    match = SUMMARY.match(summary)
    assert match is not None, done.stderr
    assert (int(match[1]), int(match[2])) == (len(lines), 3)


def test_a_clean_batch_exits_0_and_writes_to_stdout_without_out(tmp_path: Path) -> None:
    source = tmp_path / "problems.jsonl"
    source.write_bytes(b"\n".join(problems()[:3]) + b"\n")
    done = run_batch("--batch", str(source), "--workers", "1")
    assert done.returncode == 0, done.stderr
    plans = [decode_plan(line) for line in done.stdout.splitlines()]
    assert [p.status for p in plans] == ["OPTIMAL"] * 3
    assert SUMMARY.match(done.stderr.strip()) is not None


def test_dask_and_the_process_pool_give_the_same_plans(tmp_path: Path) -> None:
    lines = problems()
    source = tmp_path / "problems.jsonl"
    source.write_bytes(b"\n".join([*lines[:4], b"[1, 2]", *lines[4:]]) + b"\n")
    out = {}
    for executor in ("process", "dask"):  # dask without --scheduler: a LocalCluster of 2 worker processes
        target = tmp_path / f"{executor}.jsonl"
        done = run_batch("--batch", str(source), "--out", str(target), "--executor", executor, "--workers", "2")
        assert done.returncode == 1, done.stderr
        assert SUMMARY.match(done.stderr.strip()) is not None, done.stderr  # the summary alone
        out[executor] = target.read_bytes().splitlines()
    assert len(out["process"]) == len(out["dask"]) == len(lines) + 1
    assert out["process"][4] == out["dask"][4] and json.loads(out["dask"][4])["error"]["line"] == 5
    for k, (a, b) in enumerate(zip(out["process"], out["dask"], strict=True)):
        if k != 4:
            assert_same_plan(decode_plan(a), decode_plan(b))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheduler", "tcp://127.0.0.1:1"], b"--scheduler needs --executor dask"),
        (["--workers", "0"], b"--workers must be >= 1"),
        (["--profiles"], b"--profiles is for a single problem"),
        (["--milp-time-limit-s", "0"], b"--milp-time-limit-s must be > 0"),
    ],
)
def test_a_bad_option_exits_2_before_planning(tmp_path: Path, args: list[str], message: bytes) -> None:
    source, target = tmp_path / "problems.jsonl", tmp_path / "plans.jsonl"
    source.write_bytes(problems()[0] + b"\n")
    done = run_batch("--batch", str(source), "--out", str(target), *args)
    assert done.returncode == 2 and message in done.stderr
    assert not target.exists()


def test_an_unreadable_batch_or_a_problem_as_well_exits_2(tmp_path: Path) -> None:
    done = run_batch("--batch", str(tmp_path / "nowhere.jsonl"))
    assert done.returncode == 2 and b"cannot read" in done.stderr
    source = tmp_path / "problems.jsonl"
    source.write_bytes(problems()[0] + b"\n")
    done = run_batch(str(source), "--batch", str(source))
    assert done.returncode == 2 and b"not both" in done.stderr


def test_an_unreachable_scheduler_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    source, target = tmp_path / "problems.jsonl", tmp_path / "plans.jsonl"
    source.write_bytes(problems()[0] + b"\n")
    done = run_batch("--batch", str(source), "--out", str(target), "--executor", "dask",
                     "--scheduler", "tcp://127.0.0.1:9")  # nothing listens on port 9
    assert done.returncode == 2 and b"cannot start the dask executor" in done.stderr, done.stderr
    assert not target.exists()


def test_an_unwritable_out_exits_2(tmp_path: Path) -> None:
    source = tmp_path / "problems.jsonl"
    source.write_bytes(problems()[0] + b"\n")
    done = run_batch("--batch", str(source), "--out", str(tmp_path / "no" / "such" / "dir.jsonl"), "--workers", "1")
    assert done.returncode == 2 and b"cannot write" in done.stderr


def test_without_a_problem_or_batch_solve_exits_2() -> None:
    done = run_batch()
    assert done.returncode == 2 and b"give PROBLEM.json" in done.stderr


def test_lines_are_numbered_from_1_and_chunks_keep_their_order() -> None:
    assert read_lines(b"a\r\nb\n\nc") == [(1, b"a"), (2, b"b"), (3, b""), (4, b"c")]
    assert read_lines(b"a\n") == [(1, b"a")] and read_lines(b"") == []
    lines = read_lines(b"\n".join(b"x" * k for k in range(1, 1001)))
    parts = chunks(lines, 2)
    assert [line for part in parts for line in part] == lines
    assert max(len(p) for p in parts) == 25 and len(chunks(lines[:8], 2)) == 8


def test_the_plan_on_a_line_is_what_scsp_solve_writes_for_it(tmp_path: Path) -> None:
    source, target = tmp_path / "problems.jsonl", tmp_path / "plans.jsonl"
    source.write_bytes(problems()[0] + b"\n")
    assert run_batch("--batch", str(source), "--out", str(target)).returncode == 0
    plan = decode_plan(target.read_bytes())
    again = solve(decode_problem(problems()[0]))
    # Identical except for the measured times.
    strip = re.compile(rb'"(build_s|solve_s)":[0-9.e+-]+')
    assert strip.sub(b"", target.read_bytes().strip()) == strip.sub(b"", encode_plan(again))
    assert plan.status == "OPTIMAL"


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc: the batch's fork server and its workers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def test_a_pool_worker_killed_mid_batch_costs_no_line(tmp_path: Path) -> None:
    # Slow lines (a minimum rate: the MILP and its dive), one per chunk, so the kill lands mid-batch.
    lines = [msgspec.json.encode(generate("workplace", 300, 0.5, seed=s, min_kw=4.1)) for s in range(8)]
    source, target = tmp_path / "problems.jsonl", tmp_path / "plans.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    batch = subprocess.Popen([sys.executable, "-m", "scsp.cli.solve", "--batch", str(source), "--out", str(target),
                              "--workers", "2", "--milp-time-limit-s", "30"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        workers: list[int] = []
        deadline = time.monotonic() + 120
        while len(workers) < 3 and time.monotonic() < deadline and batch.poll() is None:  # fork server + 2
            workers = descendants(batch.pid)
            time.sleep(0.05)
        assert len(workers) >= 3, "the pool did not start"
        time.sleep(0.5)  # into the first solves
        os.kill(max(workers), signal.SIGKILL)  # the last started: a worker, not the fork server
        _, stderr = batch.communicate(timeout=300)
    finally:
        batch.kill()
    assert b"a worker process died" in stderr and b"chunks sent again" in stderr
    assert batch.returncode == 0, stderr
    answers = target.read_bytes().splitlines()
    assert len(answers) == len(lines)
    for line, answer in zip(lines, answers, strict=True):
        assert_plan_valid(decode_problem(line), decode_plan(answer))
    assert SUMMARY.match(stderr.strip().split(b"\n")[-1]) is not None
