"""store: the only importer of sqlite. One small store per aggregate behind the `Store` facade.

`parties` (platforms and tokens), `sync` (pull state, reachability, Hub client info), `sessions`
(sessions, locations, EVSE facts), `plans`, `commands` (ChargingProfiles requests, session control,
active profiles), `grid` (API keys, site settings, signals, preferences). Each method opens its own
connection; a write is one transaction, acknowledged only after its commit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scsp.store.commands import CommandStore
from scsp.store.db import Db
from scsp.store.grid import GridStore
from scsp.store.migrations import applied, apply, migrations
from scsp.store.parties import PartyStore
from scsp.store.plans import PlanStore
from scsp.store.sessions import SessionStore
from scsp.store.sync import SyncStore

__all__ = ["CommandStore", "GridStore", "PartyStore", "PlanStore", "SessionStore", "Store", "SyncStore"]


class Store:
    """The service's state in one SQLite file: the stores of every aggregate, for wiring."""

    def __init__(self, path: Path | str) -> None:
        self.db = Db(path)
        self.path = self.db.path
        self.faults = self.db.faults
        self.parties = PartyStore(self.db)
        self.sync = SyncStore(self.db)
        self.sessions = SessionStore(self.db)
        self.plans = PlanStore(self.db)
        self.commands = CommandStore(self.db)
        self.grid = GridStore(self.db)

    def migrate(self) -> list[str]:
        """Create the file if needed, switch to WAL and apply pending migrations; returns their names."""
        return apply(self.db, migrations)

    def applied_migrations(self) -> list[str]:
        """Names of applied migrations, oldest first."""
        return applied(self.db)


    def metrics_snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Counts for `/metrics`: parties by status, sessions by status, commands by outcome, verdicts."""
        with self.db.read() as db:
            return {
                "parties": list(db.query("SELECT status, count(*) AS n FROM parties GROUP BY status")),
                "sessions": list(db.query("SELECT status, count(*) AS n FROM sessions GROUP BY status")),
                "commands": list(db.query(
                    "SELECT kind, state, coalesce(response, '') AS response, coalesce(result, '') AS result, "
                    "count(*) AS n FROM commands GROUP BY kind, state, response, result")),
                "verdicts": list(db.query(
                    "SELECT coalesce(verdict, 'NONE') AS verdict, count(*) AS n FROM active_profiles "
                    "GROUP BY verdict")),
                "unreachable": list(db.query(
                    "SELECT count(*) AS n FROM sync_state WHERE unreachable_since IS NOT NULL")),
            }
