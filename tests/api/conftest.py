"""Fixtures for the JSON API: the real service on 127.0.0.1 with `/api/v1` mounted, keys, recorded events."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from litestar import Litestar

from ocpi221.sessions import Session
from scsp.api import API_CONTROLLERS, API_OPENAPI_COMPONENTS, BEARER_SCHEME, ApiRole, issue_api_key
from scsp.app import create_app, edge
from scsp.events import SiteEvents
from scsp.platform.serving import ServerThread, bind
from scsp.store import Store
from tests.conftest import EXAMPLES, Running, register_party, service_config


class RecordingEvents(SiteEvents):
    """SiteEvents that also remembers every call, in order (request threads call it)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self._calls_lock = threading.Lock()

    def site_changed(self, site_id: str) -> None:
        """Record the call, then behave as SiteEvents."""
        with self._calls_lock:
            self.calls.append(site_id)
        super().site_changed(site_id)


def mount_api(app: Litestar) -> None:
    """Make sure the app serves `/api/v1` and documents its security scheme.

    `create_app` mounts `API_CONTROLLERS` and adds `API_OPENAPI_COMPONENTS`; until it does, the
    fixture registers them here, so these tests run against the same app either way.
    """
    if not any(route.path.startswith("/api/v1/") for route in app.routes):
        for controller in API_CONTROLLERS:
            app.register(controller)
    config = app.openapi_config
    assert config is not None
    current = config.components if isinstance(config.components, list) else [config.components]
    if not any(c.security_schemes and BEARER_SCHEME in c.security_schemes for c in current):
        config.components = [*current, API_OPENAPI_COMPONENTS]


class Api:
    """The running service seen by an API client: URL, store, recorded events, key factory."""

    def __init__(self, running: Running, events: RecordingEvents) -> None:
        self.running = running
        self.url = running.url
        assert running.store is not None
        self.store: Store = running.store
        self.events = events

    def key(self, role: str = "admin", sites: Sequence[str] = ()) -> str:
        """A fresh key with this role and site scope."""
        key, _ = issue_api_key(
            self.store, role=ApiRole(role), sites=sites, label="test", now=datetime.now(UTC)
        )
        return key

    def auth(self, role: str = "admin", sites: Sequence[str] = ()) -> dict[str, str]:
        """The Authorization header of a fresh key."""
        return bearer(self.key(role, sites))

    def session(
        self,
        country_code: str = "NL",
        party_id: str = "CPA",
        session_id: str = "S1",
        location_id: str = "LOC1",
    ) -> None:
        """A session the CPO (country_code, party_id) told us about, at `location_id`."""
        token_party = self.store.parties.registered(country_code, party_id)
        party = (
            token_party if token_party is not None else register_party(self.store, country_code, party_id)[1]
        )
        doc: dict[str, Any] = msgspec.json.decode(
            (EXAMPLES / "session_example_1_simple_start.json").read_bytes()
        )
        doc.update(
            country_code=country_code,
            party_id=party_id,
            id=session_id,
            location_id=location_id,
            status="ACTIVE",
        )
        self.store.sessions.put(party.id, msgspec.convert(doc, Session), now=datetime.now(UTC))


def bearer(key: str) -> dict[str, str]:
    """An `Authorization: Bearer` header."""
    return {"Authorization": f"Bearer {key}"}


def iso(ts: float) -> str:
    """A UTC DateTime with `Z`, whole seconds."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


TEST_SITES = ("NL-CPA-LOC1", "NL-CPA-LOC2", "NL-CPA-LOC3", "NL-CPA-LOC9")


def start_api_service(tmp_path: Path) -> tuple[Running, RecordingEvents]:
    """The service on a free loopback port, `/api/v1` mounted, site events recorded."""
    sock = bind("127.0.0.1", 0)
    config = service_config(tmp_path, sock.getsockname()[1])
    try:
        app = create_app(config)
        mount_api(app)
    except BaseException:
        sock.close()
        raise
    events = RecordingEvents()
    app.state.events = events
    # The sites these tests address exist (an operator declared them); NL-CPA-NOWHERE does not.
    for site in TEST_SITES:
        app.state.store.plans.declare_site(site, now=datetime.now(UTC))
    thread = ServerThread(edge(app), sock).start()
    return Running(thread, config, app.state.store, app), events


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    running, events = start_api_service(tmp_path)
    yield Api(running, events)
    running.thread.stop()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        yield http
