"""A site exists because someone said so: a CPO's Location or active Session names it, or an admin declares it.

Anything else is a typo: every `/api/v1/sites/{site_id}` endpoint answers a 404 problem naming the
site, and nothing is stored under that name (the site appears neither in the site list nor in
`/metrics`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scsp.records.plans import PlanDetail, StoredPlan
from tests.api.conftest import Api, iso
from tests.api.test_cli import apikey
from tests.conftest import EXAMPLES, register_party, token_header

UNKNOWN = "NL-CPA-NOWHERE"


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    return data


def signal_body() -> dict[str, Any]:
    now = time.time()
    return {"source": "dso-east", "points": [{"start": iso(now), "end": iso(now + 3600), "value": 11000}]}


def assert_missing_site(reply: httpx.Response, site: str) -> None:
    """A 404 RFC 9457 problem whose detail names the site."""
    assert reply.status_code == 404, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body = reply.json()
    assert body["status"] == 404 and body["title"] and body["type"] == "about:blank"
    assert repr(site) in body["detail"]


def listed_sites(api: Api, client: httpx.Client) -> list[str]:
    reply = client.get(f"{api.url}/api/v1/sites", headers=api.auth("admin"))
    assert reply.status_code == 200, reply.text
    return [s["site_id"] for s in reply.json()]


def assert_nothing_stored(api: Api, client: httpx.Client, site: str) -> None:
    assert site not in listed_sites(api, client)
    assert site not in api.store.plans.site_ids()
    assert api.store.grid.settings(site) is None
    assert api.store.grid.site_signals(site, None, now=datetime.now(UTC)) == []
    assert api.store.plans.latest(site) is None
    metrics = client.get(f"{api.url}/metrics")
    assert metrics.status_code == 200 and site not in metrics.text


def grid(api: Api, site: str) -> str:
    return f"{api.url}/api/v1/sites/{site}/grid"


def price_body() -> dict[str, Any]:
    body = signal_body()
    body["points"][0]["value"] = 0.25
    return body


def no_body() -> None:
    return None


# (method, path after /api/v1/sites/{site_id}, body): every endpoint of a site.
REQUESTS: list[tuple[str, str, Callable[[], dict[str, Any] | None]]] = [
    ("GET", "", no_body),
    ("GET", "/grid", no_body),
    ("PUT", "/grid", lambda: {"import_limit_w": 44000}),
    ("GET", "/signals", no_body),
    ("PUT", "/signals/import_limit", signal_body),
    ("POST", "/signals/price", price_body),
    ("GET", "/plan", no_body),
    ("GET", "/compliance", no_body),
    ("GET", "/history", no_body),
]


@pytest.mark.parametrize(("method", "tail", "body"), REQUESTS, ids=[f"{m} {t or '/'}" for m, t, _ in REQUESTS])
def test_every_endpoint_of_an_unknown_site_is_a_404_problem_and_stores_nothing(
    api: Api, client: httpx.Client, method: str, tail: str, body: Callable[[], dict[str, Any] | None]
) -> None:
    reply = client.request(method, f"{api.url}/api/v1/sites/{UNKNOWN}{tail}", json=body(),
                           headers=api.auth("admin"))
    assert_missing_site(reply, UNKNOWN)
    assert "PUT /api/v1/sites/" in reply.json()["detail"]  # it says how a site comes to exist
    assert_nothing_stored(api, client, UNKNOWN)
    assert api.events.calls == []  # nothing was re-planned either


def test_the_same_requests_on_a_declared_site_succeed(api: Api, client: httpx.Client) -> None:
    # The contrast: the 404s above are about the site, not about the requests.
    site = "NL-CPA-LOC1"  # declared by the fixture
    headers = api.auth("admin")
    for method, tail, body in REQUESTS:
        reply = client.request(method, f"{api.url}/api/v1/sites/{site}{tail}", json=body(), headers=headers)
        if (method, tail) in {("GET", "/grid"), ("GET", "/plan")} and reply.status_code == 404:
            assert repr(site) in reply.json()["detail"] and "no site" not in reply.json()["detail"]
            continue  # nothing set or planned yet: a 404 about the settings or plan, not the site
        assert reply.status_code == 200, (method, tail, reply.text)
    assert api.store.grid.settings(site) is not None


def test_a_scope_check_comes_first_so_a_key_learns_nothing_of_sites_outside_its_scope(
    api: Api, client: httpx.Client
) -> None:
    # A key scoped to LOC1 asking for an unknown site: 403 (out of scope), not 404 (does not exist).
    reply = client.get(f"{api.url}/api/v1/sites/{UNKNOWN}/grid", headers=api.auth("admin", ["NL-CPA-LOC1"]))
    assert reply.status_code == 403, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")


def location_url(api: Api, cc: str, pid: str, location_id: str) -> str:
    return f"{api.url}/ocpi/2.2.1/locations/{cc}/{pid}/{location_id}"


@pytest.mark.parametrize(("cc", "pid"), [("BE", "BEC"), ("be", "bec")], ids=["upper", "lower"])
def test_a_location_a_cpo_pushes_names_a_site(api: Api, client: httpx.Client, cc: str, pid: str) -> None:
    site = "BE-BEC-LOC7"
    token, _ = register_party(api.store, "BE", "BEC")
    headers = api.auth("dso")
    assert_missing_site(client.put(grid(api, site), json={"import_limit_w": 44000}, headers=headers), site)

    # CiString: the country code and party id compare case-insensitively; the site id is upper case.
    location = dict(example("location_example.json"), id="LOC7", country_code=cc, party_id=pid)
    pushed = client.put(location_url(api, cc, pid, "LOC7"), json=location, headers=token_header(token))
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["status_code"] == 1000

    reply = client.put(grid(api, site), json={"import_limit_w": 44000}, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["site_id"] == site
    assert client.get(grid(api, site), headers=headers).json()["import_limit_w"] == 44000.0
    listed = client.get(f"{api.url}/api/v1/sites", headers=headers).json()
    mine = next(s for s in listed if s["site_id"] == site)
    assert mine["name"] == location.get("name")  # the site list shows what the Location says of itself


def session_url(api: Api, session_id: str) -> str:
    return f"{api.url}/ocpi/2.2.1/sessions/NL/STK/{session_id}"


def test_an_active_session_a_cpo_pushes_names_its_site(api: Api, client: httpx.Client) -> None:
    site = "NL-STK-LOC42"  # no Location for it was ever sent
    token, _ = register_party(api.store, "NL", "STK")
    headers = api.auth("aggregator")
    signal = f"{api.url}/api/v1/sites/{site}/signals/import_limit"
    assert_missing_site(client.put(signal, json=signal_body(), headers=headers), site)

    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    session = dict(example("session_example_1_simple_start.json"), id="S42", location_id="LOC42", status="ACTIVE",
                   start_date_time=stamp, last_updated=stamp)
    pushed = client.put(session_url(api, "S42"), json=session, headers=token_header(token))
    assert pushed.status_code == 201, pushed.text

    assert client.put(signal, json=signal_body(), headers=headers).status_code == 200
    dso = api.auth("dso")
    assert client.put(grid(api, site), json={"import_limit_w": 22000}, headers=dso).status_code == 200
    assert site in listed_sites(api, client)


def test_a_session_that_is_over_does_not_name_a_site(api: Api, client: httpx.Client) -> None:
    # Only an ACTIVE session names its site (`PlanStore.site_ids`): a CDR-era leftover is no site.
    site = "NL-STK-LOC43"
    token, _ = register_party(api.store, "NL", "STK")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    session = dict(example("session_example_1_simple_start.json"), id="S43", location_id="LOC43",
                   status="COMPLETED", start_date_time=stamp, end_date_time=stamp, last_updated=stamp)
    pushed = client.put(session_url(api, "S43"), json=session, headers=token_header(token))
    assert pushed.status_code == 201, pushed.text
    assert_missing_site(client.put(grid(api, site), json={"import_limit_w": 22000}, headers=api.auth("dso")), site)
    assert_nothing_stored(api, client, site)


def test_a_site_no_cpo_names_any_more_is_gone_with_its_old_plan(api: Api, client: httpx.Client) -> None:
    # Its session ended and no Location or declaration names it: the plan it had is no longer shown.
    site = "NL-STK-LOC44"
    token, party = register_party(api.store, "NL", "STK")
    api.store.sync.resynced(party.id)  # nothing to pull: the engine leaves the site alone meanwhile
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    session = dict(example("session_example_1_simple_start.json"), id="S44", location_id="LOC44", status="ACTIVE",
                   start_date_time=stamp, last_updated=stamp)
    assert client.put(session_url(api, "S44"), json=session, headers=token_header(token)).status_code == 201
    now = datetime.now(UTC).replace(microsecond=0)
    api.store.plans.save(StoredPlan(id=0, site_id=site, created_at=now, start=now, slot_s=900, n_slots=1,
                                    status="EMPTY", path="none", limit_w=[43210.0], site_power_w=[0.0],
                                    fixed_load_w=[0.0], detail=PlanDetail(failsafe_w=0.0)))
    headers = api.auth("aggregator")
    assert client.get(f"{api.url}/api/v1/sites/{site}/plan", headers=headers).status_code == 200
    assert f'scsp_site_limit_watts{{site="{site}"}}' in client.get(f"{api.url}/metrics").text

    ended = dict(session, status="COMPLETED", end_date_time=stamp,
                 last_updated=(datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert client.put(session_url(api, "S44"), json=ended, headers=token_header(token)).status_code == 200
    for tail in ("", "/plan", "/compliance", "/history"):
        assert_missing_site(client.get(f"{api.url}/api/v1/sites/{site}{tail}", headers=headers), site)
    assert site not in listed_sites(api, client)
    assert site not in client.get(f"{api.url}/metrics").text


def declare(api: Api, client: httpx.Client, site: str, headers: dict[str, str]) -> httpx.Response:
    return client.put(f"{api.url}/api/v1/sites/{site}", headers=headers)


def test_an_admin_declares_a_site_201_then_200(api: Api, client: httpx.Client) -> None:
    site = "NL-DSO-SUBSTATION-7"
    admin = api.auth("admin")
    assert_missing_site(client.get(f"{api.url}/api/v1/sites/{site}", headers=admin), site)

    first = declare(api, client, site, admin)
    assert first.status_code == 201, first.text
    assert first.json() == {"site_id": site, "created": True}
    again = declare(api, client, site, admin)
    assert again.status_code == 200, again.text
    assert again.json() == {"site_id": site, "created": False}

    assert listed_sites(api, client).count(site) == 1
    glance = client.get(f"{api.url}/api/v1/sites/{site}", headers=admin)
    assert glance.status_code == 200 and glance.json()["site_id"] == site
    assert glance.json()["plan_id"] is None and glance.json()["sessions"] == 0
    # Declared so its grid limit can be set before any CPO names it.
    assert client.put(grid(api, site), json={"import_limit_w": 30000}, headers=api.auth("dso")).status_code == 200
    assert client.get(f"{api.url}/api/v1/sites/{site}/compliance", headers=admin).json()["plan_id"] is None


def test_declaring_a_site_a_cpo_already_names_is_200_not_created(api: Api, client: httpx.Client) -> None:
    token, _ = register_party(api.store, "BE", "BEC")
    location = dict(example("location_example.json"), id="LOC8")
    assert client.put(location_url(api, "BE", "BEC", "LOC8"), json=location,
                      headers=token_header(token)).status_code == 201
    reply = declare(api, client, "BE-BEC-LOC8", api.auth("admin"))
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"site_id": "BE-BEC-LOC8", "created": False}


def test_concurrent_declarations_of_a_new_site_create_it_once(api: Api, client: httpx.Client) -> None:
    # "201 when it is new, 200 when it exists already": of simultaneous declarations, one created it.
    headers = api.auth("admin")
    workers = 8
    clients = [httpx.Client(timeout=30) for _ in range(workers)]
    try:
        for round_ in range(20):
            site = f"NL-DSO-RACE-{round_}"
            barrier = threading.Barrier(workers)

            def declare_now(i: int, site: str = site, barrier: threading.Barrier = barrier) -> int:
                barrier.wait()
                return clients[i].put(f"{api.url}/api/v1/sites/{site}", headers=headers).status_code

            with ThreadPoolExecutor(workers) as pool:
                codes = sorted(pool.map(declare_now, range(workers)))
            assert codes == [200] * (workers - 1) + [201], (site, codes)
            assert listed_sites(api, client).count(site) == 1
    finally:
        for c in clients:
            c.close()


@pytest.mark.parametrize("role", ["aggregator", "dso"])
def test_only_an_admin_may_declare_a_site(api: Api, client: httpx.Client, role: str) -> None:
    site = "NL-DSO-SUBSTATION-8"
    reply = declare(api, client, site, api.auth(role))
    assert reply.status_code == 403, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert role in reply.json()["detail"]
    assert_nothing_stored(api, client, site)


def test_an_admin_scoped_to_other_sites_may_not_declare_this_one(api: Api, client: httpx.Client) -> None:
    site = "NL-DSO-SUBSTATION-9"
    reply = declare(api, client, site, api.auth("admin", ["NL-CPA-LOC1"]))
    assert reply.status_code == 403, reply.text
    assert repr(site) in reply.json()["detail"]
    assert_nothing_stored(api, client, site)
    scoped = api.auth("admin", [site])
    assert declare(api, client, site, scoped).status_code == 201


def test_declaring_without_a_key_is_a_401_and_declares_nothing(api: Api, client: httpx.Client) -> None:
    site = "NL-DSO-SUBSTATION-10"
    reply = client.put(f"{api.url}/api/v1/sites/{site}")
    assert reply.status_code == 401
    assert_nothing_stored(api, client, site)


@pytest.mark.parametrize("site", ["NL CPA LOC1", "x" * 81])
def test_a_site_id_that_cannot_be_one_is_refused_and_not_declared(
    api: Api, client: httpx.Client, site: str
) -> None:
    reply = declare(api, client, site, api.auth("admin"))
    assert reply.status_code == 422, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    assert reply.json()["detail"].startswith("site_id:")
    assert site not in api.store.plans.site_ids()


def test_a_key_for_a_site_that_does_not_exist_is_issued_with_a_warning(
    api: Api, tmp_path: Path, client: httpx.Client
) -> None:
    # Not refused (a key may be handed out before the CPO's Locations arrive), but the typo is named.
    done = apikey(api, tmp_path, "create", "--role", "dso", "--site", "DOES-NOT-EXIST", "--site", "NL-CPA-LOC1")
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "'DOES-NOT-EXIST'" in done.stderr
    assert "NL-CPA-LOC1" not in done.stderr  # only the missing one is named
    created = json.loads(done.stdout)
    assert created["sites"] == ["DOES-NOT-EXIST", "NL-CPA-LOC1"]
    assert created["key"] not in done.stderr
    # The key works for the site that exists, and the missing one is still a 404 (not created by the key).
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert client.put(grid(api, "NL-CPA-LOC1"), json={"import_limit_w": 1000}, headers=headers).status_code == 200
    assert_missing_site(client.put(grid(api, "DOES-NOT-EXIST"), json={"import_limit_w": 1000}, headers=headers),
                        "DOES-NOT-EXIST")
    assert "DOES-NOT-EXIST" not in api.store.plans.site_ids()


def test_a_key_for_existing_sites_or_every_site_is_issued_without_a_warning(api: Api, tmp_path: Path) -> None:
    scoped = apikey(api, tmp_path, "create", "--role", "dso", "--site", "NL-CPA-LOC1")
    assert scoped.returncode == 0 and "warning" not in scoped.stderr, scoped.stderr
    unscoped = apikey(api, tmp_path, "create", "--role", "aggregator")
    assert unscoped.returncode == 0 and "warning" not in unscoped.stderr, unscoped.stderr
