"""`scsp solve PROBLEM.json [--out PLAN.json]`, run as a real process and through `register`/`run`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer import decode_plan, decode_problem
from scsp.cli import solve as solve_cmd
from tests.optimizer.support import CONTRACT_EXAMPLE, assert_plan_valid, with_change

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`python -m scsp.cli.solve ARGS` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "scsp.cli.solve", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_scsp_solve_prints_a_valid_plan_for_the_contract_example(tmp_path: Path) -> None:
    problem_file = tmp_path / "problem.json"
    problem_file.write_text(json.dumps(CONTRACT_EXAMPLE))
    done = run_cli(str(problem_file))
    assert done.returncode == 0, done.stderr
    plan = decode_plan(done.stdout)
    assert_plan_valid(decode_problem(problem_file.read_bytes()), plan)
    doc = json.loads(done.stdout)
    assert doc["status"] == "OPTIMAL" and doc["sessions"][0]["energy_kwh"] == pytest.approx(20.0)
    assert set(doc["stats"]) == {"build_s", "solve_s", "variables", "constraints"}
    assert done.stderr == b""


def test_scsp_solve_writes_the_plan_to_out_when_asked(tmp_path: Path) -> None:
    problem_file, plan_file = tmp_path / "problem.json", tmp_path / "plan.json"
    problem_file.write_text(json.dumps(CONTRACT_EXAMPLE))
    done = run_cli(str(problem_file), "--out", str(plan_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout == b""
    assert decode_plan(plan_file.read_bytes()).status == "OPTIMAL"


def test_a_nan_written_by_python_json_exits_2_naming_the_field(tmp_path: Path) -> None:
    problem_file = tmp_path / "problem.json"
    problem_file.write_bytes(with_change("site.limit_kw", float("nan")))
    done = run_cli(str(problem_file))
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode().strip() == f"scsp solve: {problem_file}: site.limit_kw: NaN is not a finite number"


def test_a_malformed_problem_exits_2_naming_the_field(tmp_path: Path) -> None:
    problem_file = tmp_path / "problem.json"
    problem_file.write_bytes(with_change("sessions[0].departure_slot", -4))
    done = run_cli(str(problem_file))
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"sessions[0].departure_slot: must be after arrival_slot=0, got -4" in done.stderr


def test_a_missing_problem_file_exits_2(tmp_path: Path) -> None:
    done = run_cli(str(tmp_path / "nowhere.json"))
    assert done.returncode == 2
    assert b"cannot read" in done.stderr


def test_an_infeasible_looking_problem_still_gets_a_plan_with_its_warning(tmp_path: Path) -> None:
    problem_file = tmp_path / "problem.json"
    problem_file.write_bytes(with_change("site.fixed_load_kw", 200.0))
    done = run_cli(str(problem_file))
    assert done.returncode == 0
    doc = json.loads(done.stdout)
    assert all(kw == 0.0 for kw in doc["sessions"][0]["power_kw"])
    assert any("fixed_load_kw exceeds site.limit_kw in 96 slots" in w for w in doc["warnings"])
    assert b"warning: site.fixed_load_kw exceeds" in done.stderr


def test_register_adds_a_solve_command_whose_handler_is_run(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    parser = argparse.ArgumentParser(prog="scsp")
    solve_cmd.register(parser.add_subparsers(dest="command"))
    problem_file = tmp_path / "problem.json"
    problem_file.write_text(json.dumps(CONTRACT_EXAMPLE))
    args = parser.parse_args(["solve", str(problem_file), "--milp-time-limit-s", "0.5"])
    assert args.func is solve_cmd.run
    assert args.func(args) == 0
    assert json.loads(capsysbinary.readouterr().out)["status"] == "OPTIMAL"


def test_a_non_positive_milp_time_limit_is_refused(tmp_path: Path) -> None:
    problem_file = tmp_path / "problem.json"
    problem_file.write_text(json.dumps(CONTRACT_EXAMPLE))
    done = run_cli(str(problem_file), "--milp-time-limit-s", "0")
    assert done.returncode == 2
    assert b"--milp-time-limit-s must be > 0" in done.stderr


def test_the_example_problem_solves_and_its_numbers_are_rounded_to_their_units() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "workplace-day.json"
    done = subprocess.run([sys.executable, "-m", "scsp.cli", "solve", str(example), "--profiles",
                           "--max-periods", "8"], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["status"] == "OPTIMAL" and doc["objective"]["delivered_kwh"] == doc["objective"]["need_kwh"]
    for session in doc["sessions"]:
        assert all(round(kw, 2) == kw for kw in session["power_kw"])
        assert round(session["energy_kwh"], 3) == session["energy_kwh"]
        assert len(session["charging_profile"]["charging_profile_period"]) <= 8
    assert round(doc["objective"]["cost"], 2) == doc["objective"]["cost"]


def test_a_profile_option_without_profiles_is_an_error_that_says_so(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "workplace-day.json"
    done = subprocess.run([sys.executable, "-m", "scsp.cli", "solve", str(example), "--max-periods", "3"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == "scsp: error: --max-periods needs --profiles"
