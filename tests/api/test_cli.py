"""`scsp apikey create|list|revoke` as a separate process against the service's database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.conftest import Api, bearer


def apikey(api: Api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "cli.toml"
    config.write_text(f'db_path = "{api.running.config.db_path}"\n')
    return subprocess.run(
        [sys.executable, "-m", "scsp.cli.apikey", "apikey", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_create_prints_a_working_key_once_and_list_never_shows_it(
    api: Api, tmp_path: Path, client: httpx.Client
) -> None:
    done = apikey(
        api,
        tmp_path,
        "create",
        "--role",
        "dso",
        "--site",
        "NL-CPA-LOC1",
        "--site",
        "NL-CPA-LOC2",
        "--label",
        "grid operator east",
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["role"] == "dso" and created["sites"] == ["NL-CPA-LOC1", "NL-CPA-LOC2"]
    key = created["key"]
    reply = client.put(
        f"{api.url}/api/v1/sites/NL-CPA-LOC1/grid", json={"import_limit_w": 1000}, headers=bearer(key)
    )
    assert reply.status_code == 200
    assert (
        client.put(
            f"{api.url}/api/v1/sites/NL-CPA-LOC3/grid", json={"import_limit_w": 1000}, headers=bearer(key)
        ).status_code
        == 403
    )
    listed = apikey(api, tmp_path, "list")
    assert listed.returncode == 0 and key not in listed.stdout
    entries = json.loads(listed.stdout)
    assert [(e["id"], e["role"], e["label"], e["revoked_at"]) for e in entries] == [
        (created["id"], "dso", "grid operator east", None)
    ]


def test_revoke_stops_the_key_and_an_unknown_id_is_an_error(
    api: Api, tmp_path: Path, client: httpx.Client
) -> None:
    created = json.loads(apikey(api, tmp_path, "create", "--role", "aggregator").stdout)
    assert created["sites"] == []
    url = f"{api.url}/api/v1/sites/NL-CPA-LOC1/signals"
    assert client.get(url, headers=bearer(created["key"])).status_code == 200
    revoked = apikey(api, tmp_path, "revoke", str(created["id"]))
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["revoked_at"]
    assert client.get(url, headers=bearer(created["key"])).status_code == 401
    missing = apikey(api, tmp_path, "revoke", "999")
    assert missing.returncode == 1 and "999" in missing.stderr


def test_an_unknown_role_is_refused_by_the_parser(api: Api, tmp_path: Path) -> None:
    done = apikey(api, tmp_path, "create", "--role", "root")
    assert done.returncode == 2 and "invalid choice" in done.stderr
    assert api.store.grid.api_keys() == []
