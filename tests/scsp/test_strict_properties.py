"""Property: whatever JSON value sits where a number belongs, the answer is 1000 and a readable finite value
within its domain, or 2001 and nothing stored; never a server error. Over real HTTP, real SQLite."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, Running, register_party, start_service, token_header

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "5", "1e999", "0x10", " 7 ", "2030-01-01T00:00:00Z"]),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


class Target:
    def __init__(self, running: Running, token: str) -> None:
        self.running = running
        self.auth = token_header(token)
        self.counter = 0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    running = start_service(tmp_path_factory.mktemp("props"))
    try:
        assert running.store is not None
        token, _ = register_party(running.store, "NL", "STK")
        yield Target(running, token)
    finally:
        running.thread.stop()


def session(sid: str, kwh: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    doc.update(id=sid, kwh=kwh)
    return doc


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_any_value_for_kwh_is_stored_finite_and_non_negative_or_refused(target: Target, value: Any) -> None:
    target.counter += 1
    sid = f"P-{target.counter}"
    url = f"{target.running.url}/ocpi/2.2.1/sessions/NL/STK/{sid}"
    with httpx.Client(timeout=30) as http:
        reply = http.put(url, json=session(sid, value), headers=target.auth)
        assert reply.status_code < 500
        status = reply.json()["status_code"]
        read = http.get(url, headers=target.auth)
    if status == 1000:
        # Only a JSON number is a number (an integer is a whole float); never a bool or a string.
        assert isinstance(value, int | float) and not isinstance(value, bool)
        kwh = read.json()["data"]["kwh"]
        assert math.isfinite(kwh) and kwh >= 0 and kwh == pytest.approx(float(value))
    else:
        assert reply.status_code == 200 and status == 2001 and "kwh" in reply.json()["status_message"]
        assert read.status_code == 404


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON_VALUES)
def test_any_value_for_a_datetime_is_a_string_or_refused(target: Target, value: Any) -> None:
    target.counter += 1
    sid = f"T-{target.counter}"
    url = f"{target.running.url}/ocpi/2.2.1/sessions/NL/STK/{sid}"
    doc = session(sid, 1.0)
    doc["last_updated"] = value
    with httpx.Client(timeout=30) as http:
        reply = http.put(url, json=doc, headers=target.auth)
    assert reply.status_code < 500
    if reply.json()["status_code"] == 1000:
        assert isinstance(value, str)  # an integer is never a time
    else:
        assert reply.json()["status_code"] == 2001 and "last_updated" in reply.json()["status_message"]
