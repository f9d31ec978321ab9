"""Golden profile cases: plan row + facts in, expected ChargingProfile out (tests/profiles/cases/).

Regenerate every case's `expected` from the current code, then review the diff by hand:

    .venv/bin/python tests/profiles/profile_cases.py

A new case is a JSON file with everything but `expected`; running the script fills it in.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from ocpi221.chargingprofiles import ChargingProfile  # noqa: E402
from profiles import ElectricalFacts, ProfileSettings, build_profile  # noqa: E402

CASES = Path(__file__).resolve().parent / "cases"


class GoldenCase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One case file. `start` keeps its fraction of a second (not an OCPI object)."""

    description: str
    power_w: list[float]
    start: datetime
    slot_s: int
    facts: ElectricalFacts
    failsafe_w: float
    settings: ProfileSettings = ProfileSettings()
    expected: dict[str, Any] | None = None


def load(path: Path) -> GoldenCase:
    """Decode one case file."""
    return msgspec.json.decode(path.read_bytes(), type=GoldenCase)


def build(case: GoldenCase) -> ChargingProfile:
    """Build the profile a case describes."""
    return build_profile(
        case.power_w,
        start=case.start,
        slot_s=case.slot_s,
        facts=case.facts,
        failsafe_w=case.failsafe_w,
        settings=case.settings,
    )


def as_wire(profile: ChargingProfile) -> dict[str, Any]:
    """The profile as the peer parses it."""
    parsed: dict[str, Any] = json.loads(msgspec.json.encode(profile))
    return parsed


def regenerate() -> None:
    """Rewrite `expected` in every case file from the current code."""
    for path in sorted(CASES.glob("*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["expected"] = as_wire(build(load(path)))
        path.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
        print(f"{path.name}: {len(raw['expected']['charging_profile_period'])} periods")


if __name__ == "__main__":
    regenerate()
