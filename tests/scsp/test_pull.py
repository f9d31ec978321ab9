"""The resync with a CPO's Sender interfaces, against a fake CPO over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from litestar import Litestar, get
from litestar.response import Response

from ocpi221.types import InterfaceRole
from ocpi221.versions import Endpoint
from scsp.events import SiteEvents
from scsp.ingest import pull
from scsp.platform.client import OcpiClient
from scsp.platform.serving import ServerThread, bind
from tests.conftest import EXAMPLES, Running, register_party


def fake_cpo(sessions_reply: Response[Any]) -> tuple[ServerThread, str]:
    sock = bind("127.0.0.1", 0)

    @get("/sessions")
    async def sessions() -> Response[Any]:
        return sessions_reply

    return ServerThread(Litestar([sessions]), sock).start(), f"http://127.0.0.1:{sock.getsockname()[1]}"


def resync(service: Running, url: str) -> tuple[bool, set[str], Any]:
    assert service.store is not None
    _, party = register_party(service.store, "NL", "CPA", endpoints=[
        Endpoint(identifier="sessions", role=InterfaceRole.SENDER, url=f"{url}/sessions")])
    events = SiteEvents()

    async def run() -> bool:
        client = OcpiClient(country_code="NL", party_id="SCP")
        try:
            return await pull.resync(service.store, client, party, events, now=datetime.now(UTC))  # type: ignore[arg-type]
        finally:
            await client.aclose()

    answered = asyncio.run(run())
    return answered, events.drain(), service.store.sync.state(party.id)


def test_a_resync_plans_the_sessions_it_brought_and_clears_the_flag(service: Running) -> None:
    session = json.loads((EXAMPLES / "session_example_1_simple_start.json").read_text())
    session.update(country_code="NL", party_id="CPA", status="ACTIVE")
    thread, url = fake_cpo(Response({"data": [session], "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"},
                                    headers={"X-Total-Count": "1", "X-Limit": "100"}))
    try:
        answered, changed, state = resync(service, url)
    finally:
        thread.stop()
    assert answered and not state.needs_resync and state.unreachable_since is None
    assert changed == {f"NL-CPA-{session['location_id']}"}


def test_a_cpo_whose_sender_refuses_the_pull_is_steered_from_its_pushes(service: Running) -> None:
    """A 4xx is an answer: no retry every few seconds, no hold on its profiles (`Dispatcher.may_send`)."""
    thread, url = fake_cpo(Response({"status_code": 2000, "status_message": "no", "timestamp": "2026-01-01T00:00:00Z"},
                                    status_code=404))
    try:
        answered, _, state = resync(service, url)
    finally:
        thread.stop()
    assert not answered and not state.needs_resync and state.unreachable_since is None


def test_a_cpo_that_does_not_answer_the_resync_is_unreachable_and_stays_due(service: Running) -> None:
    thread, url = fake_cpo(Response({"status_code": 3000, "timestamp": "2026-01-01T00:00:00Z"}, status_code=503))
    try:
        answered, _, state = resync(service, url)
    finally:
        thread.stop()
    assert not answered and state.needs_resync and state.unreachable_since is not None
    assert state.unreachable_since.timestamp() <= time.time()
