"""Running ASGI apps under uvicorn on pre-bound sockets (so a port 0 is known before start-up)."""

from __future__ import annotations

import asyncio
import errno
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn


class PortInUse(OSError):
    """Another process listens on the address: one line a person can act on."""

    def __init__(self, host: str, port: int, hint: str = "") -> None:
        super().__init__(errno.EADDRINUSE, f"{host}:{port}: the port is in use (another scsp running?)"
                         + (f"; {hint}" if hint else ""))
        self.host, self.port = host, port

    def __str__(self) -> str:
        return str(self.strerror)


def bind(host: str, port: int, *, hint: str = "") -> socket.socket:
    """A listening TCP socket; port 0 picks a free port (read it with `sock.getsockname()[1]`).

    Raises:
        PortInUse: the port is taken (`hint` says how to choose another).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # socket says it is TCP (`base_events._set_nodelay`); with proto 0 every response written in
    # two parts (headers, body) waited for the peer's delayed ACK, about 40 ms per request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port, hint) from None
        raise
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def make_server(app: Any, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for `app` without access logs (the OCPI edge logs requests, without tokens)."""
    config = uvicorn.Config(app, log_level=log_level.lower(), access_log=False, lifespan="on",
                            log_config=None, timeout_graceful_shutdown=5)
    return uvicorn.Server(config)


async def serve_all(servers: list[tuple[uvicorn.Server, socket.socket]],
                    after_start: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
    """Serve several apps in this event loop; run `after_start` once all of them accept connections."""
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in servers]
    while not all(server.started for server, _ in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.02)
    if after_start is not None and all(server.started for server, _ in servers):
        try:
            await after_start()
        except BaseException:
            for server, _ in servers:
                server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
    await asyncio.gather(*tasks)


class ServerThread:
    """One app served by uvicorn in a background thread (tests and tools)."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.server = make_server(app)
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> ServerThread:
        """Start serving; returns once the server accepts connections."""
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        """Ask the server to finish and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
