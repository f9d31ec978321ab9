"""The `scsp` command line against real servers: invite, register, parties, rotate, unregister."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import Running, token_header


def write_config(tmp_path: Path, service: Running) -> Path:
    path = tmp_path / "cli.toml"
    path.write_text(
        f'db_path = "{service.config.db_path}"\n'
        f'[party]\ncountry_code = "NL"\nparty_id = "SCP"\n'
        f'[http]\npublic_url = "{service.url}"\n'
    )
    return path


def scsp(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scsp.cli", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_invite_prints_the_versions_url_and_a_token_a_that_works_once(
        tmp_path: Path, service: Running, simulator: Running, http: httpx.Client) -> None:
    config = write_config(tmp_path, service)
    done = scsp(config, "invite", "--role", "CPO", "--country-code", "NL", "--party-id", "SIM")
    assert done.returncode == 0, done.stderr
    invitation = json.loads(done.stdout)
    assert set(invitation) == {"versions_url", "token_a"}
    assert invitation["versions_url"] == service.versions_url
    assert http.get(service.versions_url, headers=token_header(invitation["token_a"])).status_code == 200
    reply = http.post(f"{simulator.url}/sim/register", json=invitation)
    assert reply.status_code == 201, reply.text
    assert http.get(service.versions_url, headers=token_header(invitation["token_a"])).status_code == 401
    listed = json.loads(scsp(config, "parties", "--json").stdout)
    assert [(p["handle"], p["status"], p["role"]) for p in listed] == [("NL-SIM", "REGISTERED", "CPO")]
    assert "token" not in json.dumps(listed).replace("token_base64", "")


def test_register_rotate_and_unregister_from_the_command_line(
        tmp_path: Path, service: Running, simulator: Running, http: httpx.Client) -> None:
    config = write_config(tmp_path, service)
    invitation = http.post(f"{simulator.url}/sim/invite", json={"country_code": "NL", "party_id": "SCP"}).json()
    done = scsp(config, "register", "--versions-url", invitation["versions_url"], "--token-a", invitation["token_a"])
    assert done.returncode == 0, done.stderr
    party = json.loads(done.stdout)
    assert (party["handle"], party["status"], party["version"]) == ("NL-SIM", "REGISTERED", "2.2.1")
    assert {e["identifier"] for e in party["endpoints"]} >= {"credentials"}

    table = scsp(config, "parties")
    assert table.returncode == 0 and "NL-SIM" in table.stdout and "REGISTERED" in table.stdout

    rotated = scsp(config, "parties", "rotate", "NL-SIM")
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout)["status"] == "REGISTERED"

    gone = scsp(config, "parties", "unregister", "NL-SIM")
    assert gone.returncode == 0, gone.stderr
    out = json.loads(gone.stdout)
    assert out["status"] == "UNREGISTERED" and out["remote_error"] is None
    sim_view = http.get(f"{simulator.url}/sim/parties").json()
    assert [p["status"] for p in sim_view if p["handle"] == "NL-SCP"] == ["UNREGISTERED"]


def test_register_with_a_bad_token_fails_cleanly_and_stores_nothing(
        tmp_path: Path, service: Running, simulator: Running) -> None:
    config = write_config(tmp_path, service)
    done = scsp(config, "register", "--versions-url", simulator.versions_url, "--token-a", "wrong")
    assert done.returncode == 1
    assert "ClientApiUnusable" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(scsp(config, "parties", "--json").stdout) == []


def test_an_unknown_party_is_reported_not_crashed_on(tmp_path: Path, service: Running) -> None:
    config = write_config(tmp_path, service)
    done = scsp(config, "parties", "rotate", "XX-NOP")
    assert done.returncode == 1 and "no party" in done.stderr
