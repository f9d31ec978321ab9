"""Strict readers on `/api/v1` and the ChargingProfiles Sender: strings are never numbers or times.

The same policy as the OCPI receivers (tests/scsp/test_strict_input.py): 422 naming the field on
our API, 2001 on OCPI, nothing stored, and what is stored stays readable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api, bearer
from tests.conftest import register_party, token_header


def active_profile(limit: Any) -> dict[str, Any]:
    return {"start_date_time": "2030-01-01T00:00:00Z",
            "charging_profile": {"charging_rate_unit": "A",
                                 "charging_profile_period": [{"start_period": 0, "limit": limit}]}}


def test_an_active_profile_with_a_nan_limit_is_refused_and_the_plan_stays_readable(api: Api,
                                                                                     client: httpx.Client) -> None:
    token, _ = register_party(api.store, "NL", "CPA")
    api.session(session_id="S1", location_id="LOC1")
    auth = token_header(token)
    url = f"{api.url}/ocpi/2.2.1/chargingprofiles/S1"
    for limit in ("NaN", "Infinity", "16", -1):
        reply = client.put(url, json=active_profile(limit), headers=auth)
        assert reply.status_code == 200 and reply.json()["status_code"] == 2001, limit
        assert "limit" in reply.json()["status_message"]
    assert client.put(url, json=active_profile(16.0), headers=auth).json()["status_code"] == 1000
    plan = client.get(f"{api.url}/api/v1/sites/NL-CPA-LOC1/plan", headers=api.auth())
    assert plan.status_code < 500


@pytest.mark.parametrize(("body", "field"), [
    ({"import_limit_w": "50000"}, "import_limit_w"),
    ({"import_limit_w": "NaN"}, "import_limit_w"),
    ({"import_limit_w": 50000, "failsafe_w": "Infinity"}, "failsafe_w"),
    ({"import_limit_w": -5}, "import_limit_w"),
])
def test_api_grid_settings_are_strict(api: Api, client: httpx.Client, body: dict[str, Any], field: str) -> None:
    reply = client.put(f"{api.url}/api/v1/sites/NL-CPA-LOC1/grid", json=body, headers=api.auth())
    assert reply.status_code == 422 and reply.headers["content-type"].startswith("application/problem+json")
    assert field in reply.json()["detail"]
    assert client.get(f"{api.url}/api/v1/sites/NL-CPA-LOC1/grid", headers=api.auth()).status_code in (200, 404)
    assert api.store.grid.settings("NL-CPA-LOC1") is None


def test_api_signal_values_and_times_are_strict(api: Api, client: httpx.Client) -> None:
    now = int(datetime.now(UTC).timestamp())
    url = f"{api.url}/api/v1/sites/NL-CPA-LOC1/signals/import_limit"
    good = {"source": "dso-east", "points": [{"start": now, "end": now + 3600, "value": 1000.0}]}
    reply = client.put(url, json=good, headers=api.auth("dso", ["NL-CPA-LOC1"]))
    assert reply.status_code == 422 and "start" in reply.json()["detail"]
    start = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = datetime.fromtimestamp(now + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for value in ("1000", "NaN", "Infinity"):
        body = {"source": "dso-east", "points": [{"start": start, "end": end, "value": value}]}
        reply = client.put(url, json=body, headers=api.auth("dso", ["NL-CPA-LOC1"]))
        assert reply.status_code == 422 and "value" in reply.json()["detail"], value
    ok = client.put(url, json={"source": "dso-east", "points": [{"start": start, "end": end, "value": 1000.0}]},
                    headers=bearer(api.key("dso", ["NL-CPA-LOC1"])))
    assert ok.status_code in (200, 201)
