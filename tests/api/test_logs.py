"""Log lines: text or JSON, each naming its server; routine session PATCHes at DEBUG, domain events at INFO."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from scsp.logs import JsonFormatter, TextFormatter, server_of
from tests.api.conftest import Api
from tests.conftest import Running, register_party, start_simulator, token_header


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Running]:
    running = start_simulator(tmp_path)
    yield running
    running.thread.stop()


def records_of(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if message in r.getMessage()]


def test_each_line_names_the_server_that_wrote_it(api: Api, simulator: Running, client: httpx.Client,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client.get(f"{api.url}/healthz")
    client.get(f"{simulator.url}/sim/state")
    service_line = records_of(caplog, "GET /healthz -> 200")
    simulator_line = records_of(caplog, "GET /sim/state -> 200")
    assert [server_of(r) for r in service_line] == ["service"]
    assert [server_of(r) for r in simulator_line] == ["simulator"]
    text = TextFormatter().format(simulator_line[0])
    assert " INFO    simulator scsp.http " in text and "GET /sim/state -> 200" in text and "duration_ms=" in text
    entry = json.loads(JsonFormatter().format(service_line[0]))
    assert entry["server"] == "service" and entry["msg"] == "GET /healthz -> 200" and entry["ts"].endswith("Z")


def test_a_routine_session_patch_is_debug_and_a_domain_event_is_info(
        api: Api, client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token, _ = register_party(api.store, "NL", "CPA")
    api.session(session_id="S1", location_id="LOC1")
    moment = datetime.now(UTC)
    now = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (moment + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    patched = client.patch(f"{api.url}/ocpi/2.2.1/sessions/NL/CPA/S1", json={"kwh": 2.5, "last_updated": now},
                           headers=token_header(token))
    assert patched.status_code == 200, patched.text
    [access] = records_of(caplog, "PATCH /ocpi/2.2.1/sessions/NL/CPA/S1 -> 200")
    assert access.levelno == logging.DEBUG
    # A DSO's signal is a domain event: INFO, naming the site and source, never the key itself.
    key = api.key("dso")
    reply = client.put(f"{api.url}/api/v1/sites/NL-CPA-LOC1/signals/import_limit", headers={
        "Authorization": f"Bearer {key}"}, json={"source": "dso-east", "points": [
            {"start": now, "end": later, "value": 30000}]})
    assert reply.status_code == 200, reply.text
    [event] = records_of(caplog, "signal accepted")
    assert event.levelno == logging.INFO
    line = TextFormatter().format(event)
    assert "site=NL-CPA-LOC1" in line and "source=dso-east" in line and key not in line
    grid = client.put(f"{api.url}/api/v1/sites/NL-CPA-LOC1/grid", headers={"Authorization": f"Bearer {key}"},
                      json={"import_limit_w": 44000})
    assert grid.status_code == 200
    assert records_of(caplog, "grid settings changed")[0].levelno == logging.INFO


def test_tokens_never_reach_a_text_line() -> None:
    record = logging.LogRecord("scsp.x", logging.INFO, __file__, 1, "sent Token abc123 and Bearer scsp_xyz", None,
                               None)
    line = TextFormatter().format(record)
    assert "abc123" not in line and "scsp_xyz" not in line and "Token ***" in line
