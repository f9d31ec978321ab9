"""The DOWNTIME fault at the door: while it lasts every OCPI request gets HTTP 503 with status 3000.

An ASGI layer in front of the Litestar app (inside the OCPI edge, which still adds the request ids),
so it also answers requests that would fail authentication or match no route: a platform that is
down does neither. The control API (`/sim/...`) stays up.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cposim.runtime import SimulatedCpo
from ocpi221.types import OcpiResponse
from scsp.platform.transport import OCPI_PREFIX, Receive, Scope, Send, utcnow


class DowntimeGate:
    """Answer 503 / 3000 to OCPI requests while the simulator is down."""

    def __init__(self, app: Any, sim: SimulatedCpo) -> None:
        # `app` is an ASGI app (the Litestar app; its precise ASGI types differ from ours).
        self.app = app
        self.sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(OCPI_PREFIX) and self.sim.down():
            body = msgspec.json.encode(
                OcpiResponse[None](
                    status_code=3000,
                    status_message="the CPO platform is down (simulated downtime)",
                    timestamp=utcnow(),
                )
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode("ascii")),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
