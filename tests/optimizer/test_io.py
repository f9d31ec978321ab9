"""Decoding the problem JSON: a malformed input raises a ProblemError naming the field; plans round-trip."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from optimizer import (
    Plan,
    ProblemError,
    SiteProblem,
    decode_plan,
    decode_problem,
    encode_plan,
    solve,
    validate_problem,
)
from tests.optimizer.support import CONTRACT_EXAMPLE, assert_plan_valid, with_change


def test_the_contract_example_decodes_and_solves() -> None:
    problem = decode_problem(json.dumps(CONTRACT_EXAMPLE))
    assert problem.sessions[0].departure_slot == 40
    assert problem.evses[1].phase == "L2"
    plan = solve(problem)
    assert_plan_valid(problem, plan)
    assert plan.sessions[0].energy_kwh == pytest.approx(20.0)


def test_the_plan_json_has_the_contract_fields_first_and_round_trips() -> None:
    problem = decode_problem(json.dumps(CONTRACT_EXAMPLE))
    plan = solve(problem)
    assert_plan_valid(problem, plan)
    data = encode_plan(plan)
    doc = json.loads(data)
    assert list(doc)[:4] == ["status", "sessions", "site_power_kw", "stats"]
    assert list(doc["sessions"][0]) == ["id", "power_kw", "energy_kwh", "shortfall_kwh"]
    assert list(doc["stats"]) == ["build_s", "solve_s", "variables", "constraints"]
    assert {"path", "jain_index", "warnings", "objective"} <= set(doc)
    assert decode_plan(data) == plan


def test_optional_fields_may_be_left_out() -> None:
    minimal = {
        "start": "2026-11-23T00:00:00+01:00",
        "slot_minutes": 15,
        "n_slots": 4,
        "site": {"limit_kw": [10, 10, 5, 5]},
        "evses": [{"id": "E1", "max_kw": 11}],
        "sessions": [
            {"id": "S1", "evse": "E1", "arrival_slot": 0, "departure_slot": 4, "energy_kwh": 5, "max_kw": 11}
        ],
    }
    problem = decode_problem(json.dumps(minimal))
    assert problem.circuits == () and problem.price_per_kwh is None
    assert problem.sessions[0].min_kw == 0.0 and problem.sessions[0].profile_type == "REGULAR"
    assert problem.evses[0].phases == 3 and problem.site.voltage_v == 230.0


@pytest.mark.parametrize(
    ("path", "value", "named", "says"),
    [
        ("sessions[0].departure_slot", 0, "sessions[0].departure_slot", "must be after arrival_slot=0"),
        ("sessions[0].departure_slot", "DELETE", "sessions[0].departure_slot", "missing required field"),
        ("sessions[0].departure_slot", 40.5, "sessions[0].departure_slot", "expected `int`"),
        ("sessions[0].arrival_slot", -1, "sessions[0].arrival_slot", "must be >= 0"),
        ("sessions[0].energy_kwh", -3, "sessions[0].energy_kwh", "must be >= 0"),
        ("sessions[0].energy_kwh", "20", "sessions[0].energy_kwh", "expected `float`"),
        ("sessions[0].evse", "E9", "sessions[0].evse", "unknown evse 'E9'"),
        ("sessions[0].profile_type", "SLOW", "sessions[0].profile_type", "invalid enum value 'SLOW'"),
        ("sessions[0].color", "red", "sessions[0].color", "unknown field"),
        ("site.limit_kw", -1, "site.limit_kw", "must be >= 0"),
        ("site.limit_kw", [150.0] * 95, "site.limit_kw", "n_slots=96, got 95"),
        ("site.limit_kw", [150.0] * 95 + [-2.0], "site.limit_kw[95]", "must be >= 0"),
        ("site.phase_limit_a", -16, "site.phase_limit_a", "must be >= 0"),
        ("site.fixed_load_kw", [1.0] * 97, "site.fixed_load_kw", "n_slots=96, got 97"),
        ("site.voltage_v", 0, "site.voltage_v", "must be > 0"),
        ("site.failsafe_kw", -1, "site.failsafe_kw", "must be >= 0"),
        ("circuits[0].evses[1]", "E7", "circuits[0].evses[1]", "unknown evse 'E7'"),
        ("circuits[0].limit_kw", -22, "circuits[0].limit_kw", "must be >= 0"),
        ("evses[1].phases", 4, "evses[1].phases", "must be 1, 2 or 3"),
        ("evses[1].phase", "L4", "evses[1].phase", "invalid enum value 'L4'"),
        ("evses[1].id", "E1", "evses[1].id", "duplicate id 'E1'"),
        ("evses[0].max_kw", -11, "evses[0].max_kw", "must be >= 0"),
        ("slot_minutes", 0, "slot_minutes", "must be > 0"),
        ("n_slots", 0, "n_slots", "must be an integer in [1,"),
        ("start", "yesterday", "start", "invalid rfc3339"),
        ("start", "2026-11-23T00:00:00", "start", "must carry a UTC offset"),
        ("price_per_kwh", [0.1] * 3, "price_per_kwh", "n_slots=96, got 3"),
        ("co2_g_per_kwh", -5, "co2_g_per_kwh", "must be >= 0"),
        ("sessions", "DELETE", "sessions", "missing required field"),
    ],
)
def test_a_malformed_problem_is_rejected_with_the_field_named(
    path: str, value: Any, named: str, says: str
) -> None:
    with pytest.raises(ProblemError) as caught:
        decode_problem(with_change(path, value))
    assert caught.value.path == named
    assert says.lower() in str(caught.value).lower()
    assert str(caught.value).startswith(f"{named}: ")


def test_a_number_too_large_for_a_float_is_rejected_with_the_field_named() -> None:
    data = with_change("sessions[0].max_kw", 12.5).replace(b"12.5", b"1e400")
    with pytest.raises(ProblemError, match=r"^sessions\[0\]\.max_kw: number out of range"):
        decode_problem(data)


def test_invalid_json_is_a_problem_error_too() -> None:
    with pytest.raises(ProblemError, match=r"^\$: not valid JSON"):
        decode_problem(b'{"start": ')


@pytest.mark.parametrize(
    ("path", "value", "literal"),
    [
        ("site.limit_kw", float("nan"), "NaN"),
        ("sessions[0].energy_kwh", float("inf"), "Infinity"),
        ("site.limit_kw", [150.0] * 3 + [float("-inf")] + [150.0] * 92, "-Infinity"),
        ("circuits[0].limit_kw", float("nan"), "NaN"),
    ],
)
def test_a_nan_or_infinity_literal_in_the_json_is_rejected_with_the_field_named(
    path: str, value: Any, literal: str
) -> None:
    data = with_change(path, value)  # json.dumps writes NaN, Infinity, -Infinity by default
    assert literal.encode() in data
    named = f"{path}[3]" if isinstance(value, list) else path
    with pytest.raises(ProblemError) as caught:
        decode_problem(data)
    assert caught.value.path == named
    assert str(caught.value) == f"{named}: {literal} is not a finite number"


def test_the_first_non_finite_literal_in_document_order_is_named() -> None:
    data = b'{"start": "2026-11-23T00:00:00Z", "site": {"limit_kw": [1, NaN], "voltage_v": Infinity}, "n_slots": NaN}'
    with pytest.raises(ProblemError, match=r"^site\.limit_kw\[1\]: NaN is not a finite number$"):
        decode_problem(data)
    with pytest.raises(ProblemError, match=r"^\$: NaN is not a finite number$"):
        decode_problem(b"NaN")


def test_malformed_json_with_a_non_finite_literal_keeps_the_plain_json_error() -> None:
    with pytest.raises(ProblemError, match=r"^\$: not valid JSON"):
        decode_problem(b'{"site": {"limit_kw": NaN}, ')


def test_nan_and_infinity_built_in_python_are_rejected_by_solve() -> None:
    problem = decode_problem(json.dumps(CONTRACT_EXAMPLE))
    session = msgspec.structs.replace(problem.sessions[0], energy_kwh=float("nan"))
    broken = msgspec.structs.replace(problem, sessions=(session,))
    with pytest.raises(ProblemError, match=r"sessions\[0\]\.energy_kwh: must be a finite number"):
        solve(broken)
    site = msgspec.structs.replace(problem.site, limit_kw=float("inf"))
    with pytest.raises(ProblemError, match=r"site\.limit_kw: must be a finite number"):
        validate_problem(msgspec.structs.replace(problem, site=site))


def test_a_problem_error_is_a_value_error() -> None:
    assert issubclass(ProblemError, ValueError)
    assert isinstance(decode_problem(json.dumps(CONTRACT_EXAMPLE)), SiteProblem)
    assert Plan.__struct_fields__[:4] == ("status", "sessions", "site_power_kw", "stats")
