"""The `scsp` command line against real servers: invite, register, parties, rotate, unregister."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ocpi221.types import InterfaceRole
from ocpi221.versions import Endpoint
from tests.conftest import Running, register_party, token_header


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


def test_invite_refuses_a_malformed_country_code_or_party_id_and_stores_nothing(
        tmp_path: Path, service: Running) -> None:
    config = write_config(tmp_path, service)
    for option, value in (("--country-code", "NLD"), ("--country-code", "N1"), ("--party-id", "ABCD"),
                          ("--party-id", "A B")):
        args = {"--country-code": "NL", "--party-id": "ABC", option: value}
        done = scsp(config, "invite", "--role", "CPO", *[x for pair in args.items() for x in pair])
        assert done.returncode == 2, (option, value, done.stdout)
        assert option in done.stderr and repr(value) in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""
    assert json.loads(scsp(config, "parties", "--json").stdout) == []


def token_count(service: Running) -> int:
    with closing(sqlite3.connect(service.config.db_path)) as db:
        count: int = db.execute("SELECT count(*) FROM tokens").fetchone()[0]
        return count


def test_rotating_a_party_that_is_not_registered_is_refused_locally(
        tmp_path: Path, service: Running) -> None:
    assert service.store is not None
    config = write_config(tmp_path, service)
    peer = socket.create_server(("127.0.0.1", 0))
    peer.setblocking(False)
    credentials_url = f"http://127.0.0.1:{peer.getsockname()[1]}/credentials"
    _, party = register_party(service.store, "NL", "OLD", endpoints=[
        Endpoint(identifier="credentials", role=InterfaceRole.SENDER, url=credentials_url)])
    service.store.parties.unregister(party.id, now=datetime.now(UTC))
    invited = json.loads(scsp(config, "invite", "--role", "CPO", "--country-code", "NL", "--party-id", "NEW").stdout)
    assert invited["token_a"]
    tokens_before = token_count(service)
    try:
        for handle, status in (("NL-OLD", "UNREGISTERED"), ("NL-NEW", "INVITED")):
            done = scsp(config, "parties", "rotate", handle)
            assert done.returncode == 2, (handle, done.stdout, done.stderr)
            assert handle in done.stderr and status in done.stderr and "Traceback" not in done.stderr
        with pytest.raises(BlockingIOError):
            peer.accept()  # the peer's credentials endpoint was never called
    finally:
        peer.close()
    assert token_count(service) == tokens_before  # no token issued


def test_only_the_operator_adds_an_identity_and_never_one_another_connection_holds(
        tmp_path: Path, service: Running) -> None:
    assert service.store is not None
    register_party(service.store, "NL", "ABC")
    register_party(service.store, "DE", "XYZ")
    config = write_config(tmp_path, service)
    taken = scsp(config, "parties", "allow", "DE-XYZ", "NL-ABC")
    assert taken.returncode == 1 and "NL-ABC is held by another connection" in taken.stderr
    done = scsp(config, "parties", "allow", "DE-XYZ", "at-xyz")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["identities"] == ["DE-XYZ", "AT-XYZ"]
    assert scsp(config, "parties", "allow", "DE-XYZ", "ATXYZ").returncode == 2
    # An invitation can carry a further identity, but not one a connection holds.
    refused = scsp(config, "invite", "--role", "CPO", "--country-code", "FR", "--party-id", "NEW",
                   "--also", "AT-XYZ")
    assert refused.returncode == 1 and "AT-XYZ is held by another connection" in refused.stderr
    done = scsp(config, "parties", "deny", "DE-XYZ", "AT-XYZ")
    assert done.returncode == 0 and json.loads(done.stdout)["identities"] == ["DE-XYZ"]
    done = scsp(config, "invite", "--role", "CPO", "--country-code", "FR", "--party-id", "NEW", "--also", "AT-XYZ")
    assert done.returncode == 0, done.stderr
    listed = {p["handle"]: p for p in json.loads(scsp(config, "parties", "--json").stdout)}
    assert listed["FR-NEW"]["identities"] == ["FR-NEW", "AT-XYZ"]
