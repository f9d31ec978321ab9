"""Site grid settings over real HTTP: stored whole or not at all, read back, re-planned."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scsp.records.grid import SiteSettings
from tests.api.conftest import Api

SITE = "NL-CPA-LOC1"

FULL = {
    "import_limit_w": 44000,
    "phase_limit_a": 63,
    "voltage_v": 230,
    "failsafe_w": 11000,
    "phase_assignment": {"EVSE-1": "L1", "EVSE-2": "L3"},
}


def grid_url(api: Api, site: str = SITE) -> str:
    return f"{api.url}/api/v1/sites/{site}/grid"


def test_grid_settings_are_stored_whole_and_read_back(api: Api, client: httpx.Client) -> None:
    headers = api.auth("dso")
    reply = client.put(grid_url(api), json=FULL, headers=headers)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert {k: body[k] for k in FULL} == {**FULL, "import_limit_w": 44000.0}
    assert body["site_id"] == SITE and body["updated_at"].endswith("Z")
    assert client.get(grid_url(api), headers=headers).json() == body
    stored = api.store.grid.settings(SITE)
    assert stored == SiteSettings(
        site_id=SITE,
        import_limit_w=44000.0,
        phase_limit_a=63.0,
        voltage_v=230.0,
        failsafe_w=11000.0,
        phase_assignment={"EVSE-1": "L1", "EVSE-2": "L3"},
        updated_at=stored.updated_at if stored else 0,
    )


def test_a_put_replaces_every_field_so_left_out_ones_fall_back_to_defaults(
    api: Api, client: httpx.Client
) -> None:
    headers = api.auth("dso")
    client.put(grid_url(api), json=FULL, headers=headers).raise_for_status()
    client.put(grid_url(api), json={"import_limit_w": 30000}, headers=headers).raise_for_status()
    stored = api.store.grid.settings(SITE)
    assert stored is not None
    assert (stored.import_limit_w, stored.phase_limit_a, stored.voltage_v, stored.failsafe_w) == (
        30000.0,
        None,
        None,
        None,
    )
    assert stored.phase_assignment == {}


def test_grid_settings_of_a_site_nobody_configured_are_a_404_problem(api: Api, client: httpx.Client) -> None:
    reply = client.get(grid_url(api, "NL-CPA-LOC3"), headers=api.auth("aggregator"))
    assert reply.status_code == 404
    assert "configured defaults" in reply.json()["detail"]


INVALID: list[tuple[dict[str, Any], str]] = [
    ({**FULL, "failsafe_w": 50000}, "failsafe_w"),
    ({**FULL, "import_limit_w": 0}, "import_limit_w"),
    ({**FULL, "import_limit_w": -5}, "import_limit_w"),
    ({**FULL, "import_limit_w": 1e300}, "import_limit_w"),
    ({**FULL, "import_limit_w": "lots"}, "import_limit_w"),
    ({k: v for k, v in FULL.items() if k != "import_limit_w"}, "import_limit_w"),
    ({**FULL, "phase_limit_a": 0}, "phase_limit_a"),
    ({**FULL, "voltage_v": 12}, "voltage_v"),
    ({**FULL, "voltage_v": 20000}, "voltage_v"),
    ({**FULL, "failsafe_w": -1}, "failsafe_w"),
    ({**FULL, "phase_assignment": {"EVSE-1": "L4"}}, "phase_assignment"),
    ({**FULL, "phase_assignment": {"": "L1"}}, "phase_assignment"),
    ({**FULL, "phase_assignment": ["EVSE-1"]}, "phase_assignment"),
    ({**FULL, "import_limit": 1000}, "import_limit"),
]


@pytest.mark.parametrize(("body", "field"), INVALID, ids=[f for _, f in INVALID])
def test_each_invalid_grid_field_is_named_and_nothing_is_stored(
    api: Api, client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    headers = api.auth("dso")
    before = client.put(grid_url(api), json={"import_limit_w": 20000}, headers=headers).json()
    reply = client.put(grid_url(api), json=body, headers=headers)
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert field in reply.json()["detail"]
    assert client.get(grid_url(api), headers=headers).json() == before
    assert api.events.calls == [SITE]  # only the valid PUT asked for a re-plan


def test_a_grid_change_asks_for_a_replan_of_that_site(api: Api, client: httpx.Client) -> None:
    client.put(grid_url(api), json=FULL, headers=api.auth("admin")).raise_for_status()
    client.put(grid_url(api, "NL-CPA-LOC9"), json=FULL, headers=api.auth("admin")).raise_for_status()
    assert api.events.calls == [SITE, "NL-CPA-LOC9"]
