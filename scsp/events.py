"""'A site changed' notifications, from request threads to the planning loop (debounced there)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

# Called with a site id whenever something the planner reads about that site changed.
SiteChanged = Callable[[str], None]


class SiteEvents:
    """Thread-safe set of changed sites; wakes the planner's event loop on each change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._urgent = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: Callable[[], None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        """Call `wake` (in `loop`) whenever a site changes."""
        self._loop, self._wake = loop, wake

    def unbind(self) -> None:
        """Stop waking anybody (shutdown)."""
        self._loop, self._wake = None, None

    def site_changed(self, site_id: str) -> None:
        """Record that `site_id` needs re-planning (callable from any thread)."""
        with self._lock:
            self._pending.add(site_id)
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake)

    def site_arrived(self, site_id: str) -> None:
        """A new session arrived at `site_id`: plan it at once, without waiting for the debounce.

        OCPI 2.2.1 has no profile for an idle EVSE: until its first profile reaches it, a new EV draws
        its maximum, so every second counts (README "Arrivals").
        """
        with self._lock:
            self._urgent = True
        self.site_changed(site_id)

    def take_urgent(self) -> bool:
        """Whether an arrival asked for planning at once since the last call (and clear it)."""
        with self._lock:
            urgent, self._urgent = self._urgent, False
        return urgent

    def drain(self) -> set[str]:
        """Take the changed sites recorded so far."""
        with self._lock:
            pending, self._pending = self._pending, set()
        return pending
