"""Shared fixtures: real servers on 127.0.0.1 (the service and the CPO simulator), real SQLite files."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from cposim.app import create_simulator_asgi
from scsp.app import create_app, edge
from scsp.config import Config, HttpConfig, PartyConfig, SimulatorConfig
from scsp.platform.serving import ServerThread, bind
from scsp.store import Store


class Running:
    """A server under test: its base URL, config and (for the service) store."""

    def __init__(self, thread: ServerThread, config: Config, store: Store | None, app: Any = None) -> None:
        self.thread = thread
        self.config = config
        self.store = store
        self.app = app
        self.url = f"http://127.0.0.1:{thread.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.url}/ocpi/versions"


def service_config(tmp_path: Path, port: int, **changes: Any) -> Config:
    """A service config on a free port with its database in tmp_path."""
    return msgspec.structs.replace(
        Config(
            db_path=str(tmp_path / "scsp.db"),
            party=PartyConfig(country_code="NL", party_id="SCP", business_name="scsp under test"),
            http=HttpConfig(host="127.0.0.1", port=port, public_url=f"http://127.0.0.1:{port}",
                            request_timeout_s=10.0),
            simulator=SimulatorConfig(db_path=str(tmp_path / "sim.db")),
        ),
        **changes,
    )


def start_service(tmp_path: Path, **changes: Any) -> Running:
    """Start the service on a free loopback port."""
    sock = bind("127.0.0.1", 0)
    config = service_config(tmp_path, sock.getsockname()[1], **changes)
    app = create_app(config)
    thread = ServerThread(edge(app), sock).start()
    return Running(thread, config, app.state.store, app)


def start_simulator(tmp_path: Path, party_id: str = "SIM", *, country_code: str = "NL", **changes: Any) -> Running:
    """Start the CPO simulator on a free loopback port (`changes`: further SimulatorConfig fields)."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    settings = SimulatorConfig(country_code=country_code, party_id=party_id, host="127.0.0.1", port=port,
                               public_url=f"http://127.0.0.1:{port}",
                               db_path=str(tmp_path / f"sim-{country_code}{party_id}.db"), **changes)
    config = Config(simulator=settings)
    thread = ServerThread(create_simulator_asgi(settings), sock).start()
    return Running(thread, config, Store(settings.db_path))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Running]:
    running = start_service(tmp_path)
    yield running
    running.thread.stop()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Running]:
    running = start_simulator(tmp_path)
    yield running
    running.thread.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


def token_header(token: str, *, raw: bool = False) -> dict[str, str]:
    """An OCPI Authorization header (Base64 unless raw)."""
    value = token if raw else base64.b64encode(token.encode()).decode()
    return {"Authorization": f"Token {value}"}


def register_party(store: Store, country_code: str = "NL", party_id: str = "CPA", *, role: str = "CPO",
                   endpoints: list[Any] | None = None, token_out: str = "peer-token",
                   versions_url: str = "http://127.0.0.1:9/versions") -> tuple[str, Any]:
    """A registered party created directly in the store; returns the token it calls us with and the party."""
    import time

    from ocpi221.credentials import CredentialsRole
    from ocpi221.types import BusinessDetails, Role
    from scsp.records.parties import PartyStatus, TokenKind

    token = f"tok-{country_code}{party_id}-{time.monotonic_ns()}"
    party = store.parties.create(status=PartyStatus.INVITED, role=role, country_code=country_code,
                               party_id=party_id, token=token, token_kind=TokenKind.C, now=datetime.now(UTC))
    credentials_role = CredentialsRole(role=Role(role), country_code=country_code, party_id=party_id,
                                       business_details=BusinessDetails(name=party_id))
    party = store.parties.complete_registration(
        party.id, roles=[credentials_role], identity=credentials_role, versions_url=versions_url,
        version="2.2.1", version_url=versions_url.rsplit("/", 1)[0] + "/2.2.1", endpoints=endpoints or [],
        token_out=token_out, token_base64=True, new_token=None, now=datetime.now(UTC))
    return token, party


EXAMPLES = Path(__file__).parent / "fixtures" / "ocpi-2.2.1"
