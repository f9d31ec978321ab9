"""The vector fast path of the session checks still names the first offending field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from optimizer import ProblemError, validate_problem
from tests.optimizer.support import evse, problem, session


def _site(**change: Any) -> Any:
    sessions = [session(f"S{i}", f"E{i}", 0, 4, 10.0) for i in range(3)]
    sessions = [msgspec.structs.replace(s, previous_kw=(1.0, 2.0, 3.0, 4.0)) for s in sessions]
    sessions[1] = msgspec.structs.replace(sessions[1], **change)
    return problem(sessions, [evse(f"E{i}") for i in range(3)])


def test_a_valid_site_passes() -> None:
    validate_problem(_site())


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"energy_kwh": float("nan")}, "sessions[1].energy_kwh"),
        ({"max_kw": -1.0}, "sessions[1].max_kw"),
        ({"min_kw": True}, "sessions[1].min_kw"),
        ({"energy_kwh": "5"}, "sessions[1].energy_kwh"),
        ({"previous_kw": (1.0, float("inf"), 0.0, 0.0)}, "sessions[1].previous_kw[1]"),
        ({"previous_kw": (1.0, 2.0, -0.5, 0.0)}, "sessions[1].previous_kw[2]"),
        ({"previous_kw": (1.0, 2.0)}, "sessions[1].previous_kw"),
    ],
)
def test_the_first_bad_session_field_is_named(change: dict[str, Any], path: str) -> None:
    with pytest.raises(ProblemError) as caught:
        validate_problem(_site(**change))
    assert caught.value.path == path
