"""Faults one tenant's data may cause, contained where they happen, logged once and counted for `/metrics`.

Two kinds (issue "one tenant can never hurt another"):
- an **unreadable row** (written by an older version, or corrupted): a list skips it instead of
  failing whole, a lookup treats it as absent (so the owner can PUT it again);
- a **site whose planning failed** (gather, solve, profile building or saving): that site keeps its
  previous plan, and the profiles the charge points hold (with their failsafe tail); every other
  site is planned in the same cycle.

Counts live in the process (they say what this run met); the rows themselves stay in the database.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum

log = logging.getLogger("scsp.faults")


class PlanningStage(StrEnum):
    """Where planning a site failed."""

    GATHER = "gather"
    SOLVE = "solve"
    PROFILES = "profiles"


class Faults:
    """Thread-safe counts of unreadable rows (by table) and failed site plans (by site and stage)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._sites: dict[tuple[str, PlanningStage], int] = {}

    def unreadable_row(self, table: str, key: str, exc: BaseException) -> None:
        """A stored row of `table` could not be decoded: log its key (never its content) and count it."""
        log.error("unreadable row skipped", extra={"table": table, "key": key, "error": str(exc)[:200]})
        with self._lock:
            self._rows[table] = self._rows.get(table, 0) + 1

    def site_failed(self, site_id: str, stage: PlanningStage, exc: BaseException) -> None:
        """Planning `site_id` failed at `stage`: log it with the site id and the traceback, and count it."""
        log.error("planning a site failed: it keeps its previous plan", exc_info=exc,
                  extra={"site": site_id, "stage": stage.value})
        with self._lock:
            key = (site_id, stage)
            self._sites[key] = self._sites.get(key, 0) + 1

    def unreadable_rows(self) -> dict[str, int]:
        """Unreadable rows met so far, by table."""
        with self._lock:
            return dict(self._rows)

    def site_failures(self) -> dict[tuple[str, PlanningStage], int]:
        """Failed site plans so far, by (site, stage)."""
        with self._lock:
            return dict(self._sites)
