"""Golden cases: each tests/profiles/cases/*.json is a plan row + facts in, a ChargingProfile out."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_cases import CASES, as_wire, build, load

from ocpi221.chargingprofiles import spec_violations

CASE_FILES = sorted(CASES.glob("*.json"))


def test_the_golden_cases_cover_every_behaviour_the_issue_names() -> None:
    names = " ".join(path.stem for path in CASE_FILES)
    for behaviour in (
        "single-phase",
        "two-phase",
        "three-phase",
        "dc",
        "rounding",
        "merge",
        "budget",
        "failsafe-tail",
        "minimum-rate",
    ):
        assert behaviour in names


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_the_built_profile_matches_the_golden_case(path: Path) -> None:
    case = load(path)
    profile = build(case)
    assert as_wire(profile) == case.expected, case.description
    assert spec_violations(profile) == []
    assert len(profile.charging_profile_period) <= case.settings.max_periods
