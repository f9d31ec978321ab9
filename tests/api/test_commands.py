"""The commands log over real HTTP: what we sent, why, what the CPO answered, scoped like every read."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest

from ocpi221.chargingprofiles import ChargingProfile, ChargingProfilePeriod, ChargingRateUnit
from profiles.selection import SendReason
from scsp.records.commands import Command, CommandKind, CommandReason, CommandState
from scsp.records.sessions import SessionKey
from tests.api.conftest import Api

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
PROFILE = ChargingProfile(charging_rate_unit=ChargingRateUnit.A, start_date_time=T0,
                          charging_profile_period=[ChargingProfilePeriod(start_period=0, limit=16.0)])


def url(api: Api) -> str:
    return f"{api.url}/api/v1/commands"


def record(api: Api, session_id: str, location_id: str, kind: CommandKind, at: datetime, *,
           response: str | None = None, result: str | None = None, reason: str | None = None) -> SessionKey:
    """A command as the dispatcher records it: created before sending, then its answer and result."""
    api.session(session_id=session_id, location_id=location_id)
    party = api.store.parties.registered("NL", "CPA")
    assert party is not None
    key = SessionKey(party=party.id, country_code="NL", party_id="CPA", session_id=session_id)
    command_id = f"{session_id}-{kind}-{int(at.timestamp())}"
    assert api.store.commands.create(Command(
        id=command_id, kind=kind, key=key, state=CommandState.PENDING, created_at=at,
        profile=PROFILE if kind == CommandKind.SET else None, reason=reason))
    if response is not None:
        api.store.commands.record_response(command_id, response=response, timeout_s=30, now=at + timedelta(seconds=1))
    if result is not None:
        api.store.commands.record_result(command_id, result=result, now=at + timedelta(seconds=3))
    return key


@pytest.fixture
def logged(api: Api) -> Api:
    record(api, "S1", "LOC1", CommandKind.SET, T0, response="ACCEPTED", result="ACCEPTED", reason=SendReason.FIRST)
    record(api, "S1", "LOC1", CommandKind.GET, T0 + timedelta(minutes=5), response="ACCEPTED",
           reason=CommandReason.READBACK)
    record(api, "S2", "LOC2", CommandKind.SET, T0 + timedelta(minutes=1), response="TOO_OFTEN",
           reason=SendReason.DECREASE)
    return api


def test_the_log_lists_every_request_newest_first_with_answer_result_times_and_reason(
        logged: Api, client: httpx.Client) -> None:
    reply = client.get(url(logged), headers=logged.auth("dso"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert [(c["session_id"], c["kind"]) for c in body] == [("S1", "get"), ("S2", "set"), ("S1", "set")]
    first = body[-1]
    assert first["site_id"] == "NL-CPA-LOC1"
    assert first["reason"] == "first profile of the session"
    assert (first["response"], first["result"], first["state"]) == ("ACCEPTED", "ACCEPTED", "completed")
    assert first["profile"]["charging_profile_period"] == [{"start_period": 0, "limit": 16.0}]
    assert first["created_at"] == "2030-05-01T12:00:00Z" and first["result_at"] == "2030-05-01T12:00:03Z"
    assert (first["response_ms"], first["result_ms"]) == (1000, 3000)
    refused = body[1]
    assert (refused["response"], refused["result"], refused["state"]) == ("TOO_OFTEN", None, "refused")
    assert refused["reason"] == "plan lowers the limit materially"
    assert body[0]["profile"] is None and body[0]["state"] == "awaiting_result"


def test_filters_by_site_session_since_and_kind(logged: Api, client: httpx.Client) -> None:
    headers = logged.auth("aggregator")

    def ids(**params: str) -> list[tuple[str, str]]:
        reply = client.get(url(logged), params=params, headers=headers)
        assert reply.status_code == 200, reply.text
        return [(c["session_id"], c["kind"]) for c in reply.json()]

    assert ids(site="NL-CPA-LOC2") == [("S2", "set")]
    assert ids(session="S1") == [("S1", "get"), ("S1", "set")]
    assert ids(since="2030-05-01T12:01:00Z") == [("S1", "get"), ("S2", "set")]
    # Without an offset a time is UTC; with one, it is converted.
    assert ids(since="2030-05-01T12:04:00") == [("S1", "get")]
    assert ids(since="2030-05-01T14:04:00+02:00") == [("S1", "get")]
    assert ids(kind="set") == [("S2", "set"), ("S1", "set")]
    reply = client.get(url(logged), params=[("kind", "set"), ("kind", "get")], headers=headers)
    assert len(reply.json()) == 3
    assert ids(limit="1") == [("S1", "get")]


def test_a_key_with_sites_sees_only_their_commands(logged: Api, client: httpx.Client) -> None:
    headers = logged.auth("dso", sites=["NL-CPA-LOC2"])
    reply = client.get(url(logged), headers=headers)
    assert [c["session_id"] for c in reply.json()] == ["S2"]
    # Naming the session of another site does not reach past the scope.
    assert client.get(url(logged), params={"session": "S1"}, headers=headers).json() == []
    forbidden = client.get(url(logged), params={"site": "NL-CPA-LOC1"}, headers=headers)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("params", [
    {"since": "yesterday"}, {"since": "2030-05-01"}, {"limit": "0"}, {"limit": "1001"}, {"limit": "ten"},
    {"kind": "put"}, {"site": ""}, {"site": "has space"}, {"since": "2030-13-01T00:00:00Z"},
])
def test_bad_parameters_are_problems_naming_the_parameter(logged: Api, client: httpx.Client,
                                                          params: dict[str, str]) -> None:
    reply = client.get(url(logged), params=params, headers=logged.auth("admin"))
    assert reply.status_code in (400, 422), reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["status"] == reply.status_code
    assert next(iter(params)) in problem["detail"]


def test_an_unknown_site_is_404_and_no_key_is_401(logged: Api, client: httpx.Client) -> None:
    assert client.get(url(logged), params={"site": "NL-CPA-NOWHERE"}, headers=logged.auth()).status_code == 404
    missing = client.get(url(logged))
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")


def scsp(api: Api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The `scsp` command line as a separate process on the service's database."""
    config = tmp_path / "cli.toml"
    config.write_text(f'db_path = "{api.running.config.db_path}"\n')
    return subprocess.run([sys.executable, "-m", "scsp.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_scsp_commands_prints_the_log_one_line_each_and_as_json(logged: Api, tmp_path: Path) -> None:
    done = scsp(logged, tmp_path, "commands")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("time (UTC)") and len(lines) == 4
    assert "2030-05-01 12:00:00Z  set    NL-CPA-LOC1" in lines[3]
    assert "ACCEPTED -> ACCEPTED 3.0 s" in lines[3] and lines[3].endswith("first profile of the session")
    assert "TOO_OFTEN" in lines[2] and "ACCEPTED -> (awaiting result)" in lines[1]
    only = scsp(logged, tmp_path, "commands", "--site", "NL-CPA-LOC2", "--json")
    assert [c["session_id"] for c in json.loads(only.stdout)] == ["S2"]
    since = scsp(logged, tmp_path, "commands", "--since", "2030-05-01T12:04:00Z", "--json")
    assert [c["kind"] for c in json.loads(since.stdout)] == ["get"]


def test_scsp_commands_names_a_bad_option_value(logged: Api, tmp_path: Path) -> None:
    done = scsp(logged, tmp_path, "commands", "--since", "yesterday")
    assert done.returncode == 2 and "--since" in done.stderr and "yesterday" in done.stderr
    assert scsp(logged, tmp_path, "commands", "--limit", "0").returncode == 2


def test_scsp_version_names_the_installed_version() -> None:
    done = subprocess.run([sys.executable, "-m", "scsp.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"scsp {version('scsp')}"
