"""API keys over real HTTP: who gets in (401), who may do what (403), site scopes, hashing."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from scsp.store.db import hash_token
from scsp.store.grid import hash_api_key
from tests.api.conftest import Api, bearer, iso

SITE = "NL-CPA-LOC1"


def signal_body() -> dict[str, Any]:
    now = time.time()
    return {"source": "dso", "points": [{"start": iso(now), "end": iso(now + 3600), "value": 11000}]}


def grid_body() -> dict[str, Any]:
    return {"import_limit_w": 50000}


def prefs_body() -> dict[str, Any]:
    return {"profile_type": "CHEAP", "energy_need": 20}


def assert_problem(reply: httpx.Response, status: int, *words: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    body = reply.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    for word in words:
        assert word in body["detail"]


def test_a_request_without_a_key_is_a_401_problem(api: Api, client: httpx.Client) -> None:
    reply = client.put(f"{api.url}/api/v1/sites/{SITE}/grid", json=grid_body())
    assert_problem(reply, 401, "Bearer")
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert api.store.grid.settings(SITE) is None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer scsp_not-a-key-we-issued",
        "Bearer",
        "Token scsp_whatever",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_an_unknown_key_or_another_scheme_is_a_401_problem(
    api: Api, client: httpx.Client, header: str
) -> None:
    reply = client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers={"Authorization": header})
    assert_problem(reply, 401)


def test_an_ocpi_token_is_not_an_api_key(api: Api, client: httpx.Client) -> None:
    from tests.conftest import register_party

    token, _ = register_party(api.store, "NL", "CPA")
    reply = client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers=bearer(token))
    assert_problem(reply, 401, "unknown or revoked")


def test_a_revoked_key_stops_working_at_once(api: Api, client: httpx.Client) -> None:
    key = api.key("admin")
    assert client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers=bearer(key)).status_code == 200
    live = api.store.grid.api_key(key)
    assert live is not None
    revoked = api.store.grid.revoke_api_key(live.id, now=datetime.now(UTC))
    assert revoked is not None and revoked.revoked_at is not None
    assert_problem(client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers=bearer(key)), 401, "revoked")
    assert_problem(
        client.put(f"{api.url}/api/v1/sites/{SITE}/grid", json=grid_body(), headers=bearer(key)), 401
    )


def test_the_key_is_checked_before_the_body(api: Api, client: httpx.Client) -> None:
    reply = client.put(
        f"{api.url}/api/v1/sites/{SITE}/grid",
        content=b"{not json",
        headers={"Authorization": "Bearer wrong", "Content-Type": "application/json"},
    )
    assert_problem(reply, 401)


# (method, path, body, roles allowed to write)
WRITES = [
    ("PUT", f"/api/v1/sites/{SITE}/signals/import_limit", signal_body, {"aggregator", "dso", "admin"}),
    ("POST", f"/api/v1/sites/{SITE}/signals/price", signal_body, {"aggregator", "dso", "admin"}),
    ("PUT", "/api/v1/sessions/NL/CPA/S1/preferences", prefs_body, {"aggregator", "admin"}),
    ("PUT", f"/api/v1/sites/{SITE}/grid", grid_body, {"dso", "admin"}),
]


@pytest.mark.parametrize("role", ["aggregator", "dso", "admin"])
@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"), WRITES, ids=[f"{m} {p}" for m, p, _, _ in WRITES]
)
def test_each_role_may_write_only_what_it_is_allowed_to(
    api: Api, client: httpx.Client, role: str, method: str, path: str, body: Any, allowed: set[str]
) -> None:
    reply = client.request(method, f"{api.url}{path}", json=body(), headers=api.auth(role))
    if role in allowed:
        assert reply.status_code == 200, reply.text
    else:
        assert_problem(reply, 403, role)
        assert api.store.grid.settings(SITE) is None
        assert api.store.grid.preferences("NL", "CPA", "S1") is None
        assert api.store.grid.site_signals(SITE, None, now=datetime.now(UTC)) == []


@pytest.mark.parametrize("role", ["aggregator", "dso", "admin"])
def test_every_role_may_read(api: Api, client: httpx.Client, role: str) -> None:
    admin = api.auth("admin")
    client.put(f"{api.url}/api/v1/sites/{SITE}/grid", json=grid_body(), headers=admin).raise_for_status()
    client.put(
        f"{api.url}/api/v1/sessions/NL/CPA/S1/preferences", json=prefs_body(), headers=admin
    ).raise_for_status()
    headers = api.auth(role)
    assert client.get(f"{api.url}/api/v1/sites/{SITE}/grid", headers=headers).status_code == 200
    assert client.get(f"{api.url}/api/v1/sites/{SITE}/signals", headers=headers).status_code == 200
    assert client.get(f"{api.url}/api/v1/sessions/NL/CPA/S1/preferences", headers=headers).status_code == 200


def test_a_key_limited_to_sites_may_touch_only_those(api: Api, client: httpx.Client) -> None:
    headers = api.auth("dso", sites=[SITE])
    assert (
        client.put(f"{api.url}/api/v1/sites/{SITE}/grid", json=grid_body(), headers=headers).status_code
        == 200
    )
    other = "NL-CPA-LOC2"
    assert_problem(
        client.put(f"{api.url}/api/v1/sites/{other}/grid", json=grid_body(), headers=headers), 403, other
    )
    assert_problem(
        client.put(
            f"{api.url}/api/v1/sites/{other}/signals/import_limit", json=signal_body(), headers=headers
        ),
        403,
        other,
    )
    assert_problem(client.get(f"{api.url}/api/v1/sites/{other}/signals", headers=headers), 403, other)
    assert_problem(client.get(f"{api.url}/api/v1/sites/{other}/grid", headers=headers), 403, other)
    assert api.store.grid.settings(other) is None
    assert api.store.grid.site_signals(other, None, now=datetime.now(UTC)) == []


def test_a_site_limited_key_sets_preferences_only_of_known_sessions_at_its_sites(
    api: Api, client: httpx.Client
) -> None:
    api.session(session_id="IN", location_id="LOC1")
    api.session(session_id="OUT", location_id="LOC2")
    headers = api.auth("aggregator", sites=[SITE])
    url = f"{api.url}/api/v1/sessions/NL/CPA/{{}}/preferences"
    assert client.put(url.format("IN"), json=prefs_body(), headers=headers).status_code == 200
    assert_problem(client.put(url.format("OUT"), json=prefs_body(), headers=headers), 403, "NL-CPA-LOC2")
    assert_problem(
        client.put(url.format("UNKNOWN"), json=prefs_body(), headers=headers), 403, "not known yet"
    )
    assert api.store.grid.preferences("NL", "CPA", "OUT") is None
    assert api.store.grid.preferences("NL", "CPA", "UNKNOWN") is None
    # A key without site limits may set preferences ahead of the session.
    assert (
        client.put(url.format("UNKNOWN"), json=prefs_body(), headers=api.auth("aggregator")).status_code
        == 200
    )


def test_keys_are_random_and_stored_only_as_their_sha256(api: Api) -> None:
    keys = [api.key("aggregator") for _ in range(3)]
    assert len(set(keys)) == 3
    assert all(len(k) >= 43 + len("scsp_") for k in keys)  # 32 random bytes, base64url
    with sqlite3.connect(api.running.config.db_path) as db:
        rows = db.execute("SELECT * FROM api_keys").fetchall()
    stored = " ".join(str(value) for row in rows for value in row)
    assert all(k not in stored for k in keys)
    assert {hash_api_key(k) for k in keys} <= {row[1] for row in rows}
    assert all(hash_api_key(k) == hash_token(k) for k in keys)
