"""Per party: when we last pulled, whether it answers, and what Hubs report about it (HubClientInfo)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from sqlite_utils import Database

from scsp.records.parties import SyncState
from scsp.store.db import Db


class SyncStore:
    """Sync state per party and Hub client info."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def _read(self) -> AbstractContextManager[Database]:
        return self._db.read()

    def _write(self) -> AbstractContextManager[Database]:
        return self._db.write()

    def state(self, party: int) -> SyncState:
        """A party's sync state (a fresh one needs a resync)."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM sync_state WHERE party = ?", [party]))
        if not rows:
            return SyncState(party=party)
        r = rows[0]
        return SyncState(party=party, sessions_pulled_at=r["sessions_pulled_at"],
                         locations_pulled_at=r["locations_pulled_at"], unreachable_since=r["unreachable_since"],
                         needs_resync=bool(r["needs_resync"]))

    def update_sync_state(self, party: int, **fields: Any) -> None:
        """Set fields of a party's sync state."""
        with self._write() as db:
            db.execute("INSERT INTO sync_state (party) VALUES (?) ON CONFLICT DO NOTHING", [party])
            if fields:
                assignments = ", ".join(f"{name} = ?" for name in fields)
                db.execute(f"UPDATE sync_state SET {assignments} WHERE party = ?", [*fields.values(), party])

    def put_client_info(self, via: int, country_code: str, party_id: str, role: str, status: str,
                        last_updated: int) -> tuple[str | None, bool]:
        """Store a Hub's ClientInfo; returns (the previous status or None, whether it was applied).

        Older news never overwrites newer (`last_updated`).
        """
        with self._write() as db:
            rows = list(db.query(
                "SELECT status, last_updated FROM client_info WHERE via = ? AND country_code = ? AND party_id = ? "
                "AND role = ?", [via, country_code, party_id, role]))
            previous = str(rows[0]["status"]) if rows else None
            if rows and rows[0]["last_updated"] > last_updated:
                return previous, False
            db.execute(
                """INSERT INTO client_info (via, country_code, party_id, role, status, last_updated)
                   VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (via, country_code, party_id, role) DO UPDATE SET
                   status = excluded.status, last_updated = excluded.last_updated""",
                [via, country_code, party_id, role, status, last_updated])
            return previous, True

    def client_info(self, via: int, country_code: str, party_id: str) -> list[dict[str, Any]]:
        """What a Hub reported about (country_code, party_id), one row per role."""
        with self._read() as db:
            return list(db.query("SELECT * FROM client_info WHERE via = ? AND country_code = ? AND party_id = ?",
                                 [via, country_code, party_id]))

    def offline_parties(self) -> set[tuple[int, str, str]]:
        """(via, country_code, party_id) a Hub reported as not CONNECTED."""
        with self._read() as db:
            return {(r["via"], r["country_code"], r["party_id"]) for r in db.query(
                "SELECT via, country_code, party_id FROM client_info WHERE status != 'CONNECTED'")}
