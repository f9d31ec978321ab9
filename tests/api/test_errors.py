"""Whatever a client sends, the answer is a 4xx problem body, never a 5xx, and nothing is stored."""

from __future__ import annotations

import sqlite3

import httpx
import pytest

from tests.api.conftest import Api

SITE = "NL-CPA-LOC1"

ENDPOINTS = [
    ("PUT", f"/api/v1/sites/{SITE}/grid"),
    ("PUT", f"/api/v1/sites/{SITE}/signals/import_limit"),
    ("POST", f"/api/v1/sites/{SITE}/signals/price"),
    ("PUT", "/api/v1/sessions/NL/CPA/S1/preferences"),
]

MALFORMED: list[tuple[str, bytes]] = [
    ("truncated", b'{"import_limit_w": 1000, "source": "A", "points": [{"start": '),
    ("not json", b"import_limit_w=1000"),
    ("NaN literal", b'{"import_limit_w": NaN, "profile_type": "FAST", "source": "A", "points": []}'),
    ("Infinity literal", b'{"import_limit_w": Infinity, "energy_need": -Infinity}'),
    (
        "huge number",
        b'{"import_limit_w": 1e999, "energy_need": 1e999, "source": "A", "points": '
        b'[{"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00Z", "value": 1e999}]}',
    ),
    (
        "huge integer",
        b'{"import_limit_w": '
        + b"9" * 400
        + b', "profile_type": "FAST", "energy_need": '
        + b"9" * 400
        + b"}",
    ),
    ("bad utf-8 in a string", b'{"source": "\xff\xfe", "profile_type": "\xc3\x28", "import_limit_w": 1}'),
    ("bad utf-8 outside strings", b'\xff{"import_limit_w": 1}'),
    ("empty", b""),
    ("null", b"null"),
    ("array", b"[1, 2, 3]"),
    ("string", b'"hello"'),
    (
        "wrong types",
        b'{"import_limit_w": [1], "phase_assignment": "L1", "source": 5, "points": {"a": 1}, '
        b'"profile_type": 3, "discharge_allowed": "yes"}',
    ),
    ("nested deeply", b'{"points": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    (
        "year zero",
        b'{"source": "A", "profile_type": "FAST", "departure_time": "0000-01-01T00:00:00Z", '
        b'"points": [{"start": "0001-01-01T00:00:00+14:00", "end": "9999-12-31T23:59:59-14:00", '
        b'"value": 1}]}',
    ),
    (
        "duplicate keys",
        b'{"import_limit_w": 1, "import_limit_w": -1, "profile_type": "FAST", "profile_type": 1}',
    ),
]


def stored_anything(api: Api) -> bool:
    with sqlite3.connect(api.running.config.db_path) as db:
        return any(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed table names
            for t in ("site_settings", "signals", "preferences")
        )


@pytest.mark.parametrize(("name", "body"), MALFORMED, ids=[n for n, _ in MALFORMED])
def test_a_malformed_body_is_a_4xx_problem_and_stores_nothing(
    api: Api, client: httpx.Client, name: str, body: bytes
) -> None:
    headers = {**api.auth("admin"), "Content-Type": "application/json"}
    for method, path in ENDPOINTS:
        reply = client.request(method, f"{api.url}{path}", content=body, headers=headers)
        assert reply.status_code in (400, 422), (method, path, reply.status_code, reply.text)
        assert reply.headers["content-type"].startswith("application/problem+json")
        problem = reply.json()
        assert problem["status"] == reply.status_code and problem["detail"]
    assert not stored_anything(api)
    assert api.events.calls == []


def test_unparseable_json_is_a_400_and_invalid_content_a_422(api: Api, client: httpx.Client) -> None:
    headers = {**api.auth("admin"), "Content-Type": "application/json"}
    url = f"{api.url}/api/v1/sites/{SITE}/grid"
    assert client.put(url, content=b'{"import_limit_w": ', headers=headers).status_code == 400
    assert client.put(url, content=b'{"import_limit_w": -1}', headers=headers).status_code == 422


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sites/%00/grid",
        "/api/v1/sites/a%20b/signals",
        "/api/v1/sites/" + "x" * 200 + "/grid",
        "/api/v1/sessions/N%C3%9F/CPA/S1/preferences",
        "/api/v1/sessions/NL/CPA/" + "s" * 37 + "/preferences",
    ],
)
def test_a_malformed_path_is_a_4xx_problem(api: Api, client: httpx.Client, path: str) -> None:
    reply = client.get(f"{api.url}{path}", headers=api.auth("admin"))
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")


def test_a_body_over_the_size_limit_is_a_413_problem(api: Api, client: httpx.Client) -> None:
    big = b'{"source": "' + b"x" * (api.running.config.http.max_body_bytes + 10) + b'"}'
    reply = client.put(
        f"{api.url}/api/v1/sites/{SITE}/signals/price",
        content=big,
        headers={**api.auth("admin"), "Content-Type": "application/json"},
    )
    assert reply.status_code == 413 and reply.headers["content-type"].startswith("application/problem+json")
    assert not stored_anything(api)
