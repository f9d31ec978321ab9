"""Golden cases: each tests/optimizer/cases/*.json is a problem (the JSON contract) and its expected plan.

Regenerate with `.venv/bin/python -m tests.optimizer.regenerate_cases` after an intended change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from optimizer import SolveOptions, decode_problem, solve
from tests.optimizer.regenerate_cases import CASES, DEFINITIONS
from tests.optimizer.support import assert_plan_valid

CASE_FILES = sorted(CASES.glob("*.json"))


def test_every_defined_case_has_its_file_and_no_file_is_stale() -> None:
    assert [p.stem for p in CASE_FILES] == sorted(DEFINITIONS)


def test_the_cases_cover_every_route_and_the_named_behaviours() -> None:
    cases = {p.stem: json.loads(p.read_text()) for p in CASE_FILES}
    paths = {c["expected"]["path"] for c in cases.values()}
    assert {"LP", "MILP", "LP+repair"} <= paths
    names = " ".join(cases)
    for behaviour in (
        "site-limit",
        "circuit",
        "phase",
        "cheap",
        "green",
        "fast",
        "fixed-load",
        "minimum-rate",
        "zero",
    ):
        assert behaviour in names


@pytest.mark.parametrize("case_file", CASE_FILES, ids=lambda p: p.stem)
def test_the_plan_matches_the_golden_case(case_file: Path) -> None:
    case: dict[str, Any] = json.loads(case_file.read_text(encoding="utf-8"))
    problem = decode_problem(json.dumps(case["problem"]))
    plan = solve(problem, msgspec.convert(case["options"], SolveOptions))
    assert_plan_valid(problem, plan)
    expected = case["expected"]
    assert (str(plan.status), str(plan.path)) == (expected["status"], expected["path"])
    assert list(plan.warnings) == expected["warnings"]
    for got, want in zip(plan.sessions, expected["sessions"], strict=True):
        assert got.id == want["id"]
        assert got.power_kw == pytest.approx(want["power_kw"], abs=1e-6), got.id
        assert got.energy_kwh == pytest.approx(want["energy_kwh"], abs=1e-6)
        assert got.shortfall_kwh == pytest.approx(want["shortfall_kwh"], abs=1e-6)
    assert plan.site_power_kw == pytest.approx(expected["site_power_kw"], abs=1e-6)
    if expected["jain_index"] is None:
        assert plan.jain_index is None
    else:
        assert plan.jain_index == pytest.approx(expected["jain_index"], abs=1e-6)
