"""The hostile corpus (tests/corpus/hostile.json) over real HTTP against every OCPI receiver and /api/v1.

Per case: the protocol's answer (OCPI envelope with its HTTP and OCPI status, or an RFC 9457
problem on /api/v1, naming the field where one is at fault), never a 5xx, nothing stored half-way
(the stored rows are compared before and after), and at the end the other party's site is still
planned. Regenerate the corpus with `.venv/bin/python tests/corpus/build_corpus.py`.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scsp.api import ApiRole, issue_api_key
from scsp.config import PlanningConfig
from tests.conftest import Running, register_party, start_service, token_header

CORPUS = json.loads((Path(__file__).parents[1] / "corpus" / "hostile.json").read_text())
CASES: list[dict[str, Any]] = CORPUS["cases"]
# The rows a request may write: compared before and after every refused case.
TABLES = ("sessions", "locations", "evses", "active_profiles", "site_settings", "signals", "preferences",
          "client_info")  # session_control is the dispatcher's, written by the planning running meanwhile
OTHER_SITE = "DE-XYZ-LOC-2"
OUTCOMES: Counter[str] = Counter()


class World:
    """The service with CPO A (NL-CPA, the corpus' caller), CPO B (DE-XYZ, planned meanwhile) and an admin key."""

    def __init__(self, running: Running, a_token: str, b_token: str, admin_key: str) -> None:
        self.running = running
        assert running.store is not None
        self.store = running.store
        self.a_token, self.b_token, self.admin_key = a_token, b_token, admin_key

    def headers(self, who: str) -> dict[str, str]:
        if who == "cpo":
            return token_header(self.a_token)
        if who == "admin":
            return {"Authorization": f"Bearer {self.admin_key}"}
        return {}

    def snapshot(self) -> dict[str, str]:
        """A digest of every row a request may write, per table."""
        conn = sqlite3.connect(self.store.path)
        try:
            out = {}
            for table in TABLES:
                digest = hashlib.sha256()
                for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid"):  # noqa: S608 - fixed names
                    digest.update(repr(row).encode())
                out[table] = digest.hexdigest()[:16]
            return out
        finally:
            conn.close()


def b_session(sid: str, evse_uid: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = dict(CORPUS["base"]["session"], country_code="DE", party_id="XYZ", id=sid, location_id="LOC-2",
               evse_uid=evse_uid, start_date_time=now, last_updated=now, kwh=0.0)
    doc["cdr_token"] = dict(doc["cdr_token"], country_code="DE", party_id="XYZ")
    doc.pop("charging_periods")
    return doc


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    running = start_service(tmp_path_factory.mktemp("corpus"),
                            planning=PlanningConfig(debounce_s=0.2, horizon_h=2.0, slot_minutes=15))
    try:
        assert running.store is not None
        a_token, _ = register_party(running.store, "NL", "CPA")
        b_token, _ = register_party(running.store, "DE", "XYZ")
        admin_key, _ = issue_api_key(running.store, role=ApiRole.admin, sites=(), label="corpus",
                                     now=datetime.now(UTC))
        with httpx.Client(base_url=running.url, timeout=30) as http:
            base = CORPUS["base"]
            loc_url = f"/ocpi/2.2.1/locations/NL/CPA/{base['location']['id']}"
            assert http.put(loc_url, json=base["location"], headers=token_header(a_token)).status_code == 201
            assert http.put(f"/ocpi/2.2.1/sessions/NL/CPA/{base['session']['id']}", json=base["session"],
                            headers=token_header(a_token)).status_code == 201
            evse = base["location"]["evses"][0]
            b_location = dict(base["location"], country_code="DE", party_id="XYZ", id="LOC-2",
                              evses=[dict(evse, uid="B-E1"), dict(evse, uid="B-E2")])
            assert http.put("/ocpi/2.2.1/locations/DE/XYZ/LOC-2", json=b_location,
                            headers=token_header(b_token)).status_code == 201
            assert http.put("/ocpi/2.2.1/sessions/DE/XYZ/B-1", json=b_session("B-1", "B-E1"),
                            headers=token_header(b_token)).status_code == 201
        yield World(running, a_token, b_token, admin_key)
    finally:
        running.thread.stop()


def body_of(spec: dict[str, Any]) -> bytes | None:
    """The request body a corpus entry describes (with `$NOW+S` as DateTimes S seconds from now)."""
    if "none" in spec:
        return None
    if "text" in spec:
        return str(spec["text"]).encode()
    if "hex" in spec:
        return bytes.fromhex(spec["hex"])
    if "nest" in spec:
        return b"[" * spec["nest"] + b"]" * spec["nest"]
    if "repeat" in spec:
        r = spec["repeat"]
        return (r["prefix"] + r["fill"] * r["count"] + r["suffix"]).encode()
    now = datetime.now(UTC).replace(microsecond=0)
    text = json.dumps(spec["json"])
    return re.sub(r"\$NOW\+(\d+)", lambda m: (now + timedelta(seconds=int(m.group(1)))).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), text).encode()


@pytest.mark.parametrize("item", CASES, ids=[c["name"] for c in CASES])
def test_a_hostile_request_gets_the_protocols_answer_and_stores_nothing_half_way(world: World,
                                                                                item: dict[str, Any]) -> None:
    before = world.snapshot()
    body = body_of(item["body"])
    headers = world.headers(item["who"])
    if body is not None:
        headers["Content-Type"] = "application/json"
    with httpx.Client(base_url=world.running.url, timeout=60) as http:
        reply = http.request(item["method"], item["path"], content=body, headers=headers)
    expect = item["expect"]
    assert reply.status_code < 500, reply.text[:300]
    assert reply.status_code == expect["http"], (reply.status_code, reply.text[:300])
    answer = reply.json()
    if item["path"].startswith("/ocpi"):
        assert set(answer) >= {"status_code", "timestamp"} and answer["timestamp"].endswith("Z")
        assert answer["status_code"] == expect["ocpi"], answer
        message = answer.get("status_message") or ""
    else:
        assert reply.headers["content-type"].startswith("application/problem+json")
        assert answer["status"] == expect["http"]
        message = answer["detail"]
    if "names" in expect:
        assert expect["names"] in message, message
    if not item["changes"]:
        assert world.snapshot() == before, "a refused request changed what is stored"
    OUTCOMES[f"HTTP {reply.status_code}" + (f" / OCPI {answer['status_code']}" if "ocpi" in expect else "")] += 1


def test_the_other_party_is_still_planned_after_the_corpus(world: World) -> None:
    with httpx.Client(base_url=world.running.url, timeout=30) as http:
        reply = http.put("/ocpi/2.2.1/sessions/DE/XYZ/B-2", json=b_session("B-2", "B-E2"),
                         headers=token_header(world.b_token))
        assert reply.status_code == 201
    deadline = time.monotonic() + 60
    planned: set[str] = set()
    while time.monotonic() < deadline:
        plan = world.store.plans.latest(OTHER_SITE)
        planned = {s.key.session_id for s in plan.sessions} if plan is not None else set()
        if {"B-1", "B-2"} <= planned:
            break
        time.sleep(0.2)
    assert {"B-1", "B-2"} <= planned, planned
    # The corpus' own site is planned too: its poisoned attempts were refused, not stored.
    own = world.store.plans.latest(CORPUS["base"]["site"])
    assert own is not None
    print(f"\ncorpus: {len(CASES)} cases, outcomes: {dict(sorted(OUTCOMES.items()))}")
