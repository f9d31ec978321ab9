"""Per party: when we last pulled, whether it answers, and what Hubs report about it (HubClientInfo)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpi221.hubclientinfo import ClientInfo, ConnectionStatus
from ocpi221.types import Role
from scsp.records.parties import SyncState
from scsp.store.codec import moment, unix
from scsp.store.db import Aggregate


class SyncStore(Aggregate):
    """Sync state per party and Hub client info."""

    def state(self, party: int) -> SyncState:
        """A party's sync state (a fresh one needs a resync)."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM sync_state WHERE party = ?", [party]))
        if not rows:
            return SyncState(party=party)
        r = rows[0]
        return SyncState(party=party, sessions_pulled_at=moment(r["sessions_pulled_at"]),
                         locations_pulled_at=moment(r["locations_pulled_at"]),
                         unreachable_since=moment(r["unreachable_since"]), needs_resync=bool(r["needs_resync"]),
                         refused_since=moment(r["refused_since"]))

    def _set(self, party: int, assignments: str, args: list[Any]) -> None:
        with self._write() as db:
            db.execute("INSERT INTO sync_state (party) VALUES (?) ON CONFLICT DO NOTHING", [party])
            db.execute(f"UPDATE sync_state SET {assignments} WHERE party = ?", [*args, party])

    def resync_due(self, party: int) -> None:
        """What we hold of the party may be stale (start-up, registration, back from away): pull first."""
        self._set(party, "needs_resync = 1", [])

    def resynced(self, party: int) -> None:
        """The party answered our pull: it is reachable and what we hold is current."""
        self._set(party, "needs_resync = 0, unreachable_since = NULL, refused_since = NULL", [])

    def resync_skipped(self, party: int) -> None:
        """The party answers but refuses our pull: steering goes on with what it pushes."""
        self._set(party, "needs_resync = 0", [])

    def refused(self, party: int, *, since: datetime) -> None:
        """The party refuses the token we hold (HTTP 401): what we hold of it can no longer be checked."""
        self._set(party, "refused_since = coalesce(refused_since, ?)", [unix(since)])

    def unreachable(self, party: int, *, since: datetime, resync: bool) -> None:
        """The party did not answer (from `since`, unless already known); `resync`: pull when it is back."""
        self._set(party, "unreachable_since = coalesce(unreachable_since, ?), needs_resync = max(needs_resync, ?)",
                  [unix(since), int(resync)])

    def sessions_pulled(self, party: int, at: datetime) -> None:
        """Sessions were pulled from the party at `at` (the next pull asks for changes since then)."""
        self._set(party, "sessions_pulled_at = ?", [unix(at)])

    def locations_pulled(self, party: int, at: datetime) -> None:
        """Locations were pulled from the party at `at`."""
        self._set(party, "locations_pulled_at = ?", [unix(at)])

    def put_client_info(self, via: int, info: ClientInfo) -> tuple[ConnectionStatus | None, bool]:
        """Store a Hub's ClientInfo; returns (the previous status or None, whether it was applied).

        Older news never overwrites newer (`last_updated`).
        """
        cc, pid = info.country_code.upper(), info.party_id.upper()
        with self._write() as db:
            rows = list(db.query(
                "SELECT status, last_updated FROM client_info WHERE via = ? AND country_code = ? AND party_id = ? "
                "AND role = ?", [via, cc, pid, info.role]))
            previous = ConnectionStatus(rows[0]["status"]) if rows else None
            if rows and rows[0]["last_updated"] > unix(info.last_updated):
                return previous, False
            db.execute(
                """INSERT INTO client_info (via, country_code, party_id, role, status, last_updated)
                   VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (via, country_code, party_id, role) DO UPDATE SET
                   status = excluded.status, last_updated = excluded.last_updated""",
                [via, cc, pid, info.role, info.status, unix(info.last_updated)])
            return previous, True

    def client_info(self, via: int, country_code: str, party_id: str) -> list[ClientInfo]:
        """What a Hub reported about (country_code, party_id), one per role."""
        with self._read() as db:
            return [ClientInfo(party_id=r["party_id"], country_code=r["country_code"], role=Role(r["role"]),
                               status=ConnectionStatus(r["status"]), last_updated=moment(r["last_updated"]))
                    for r in db.query("SELECT * FROM client_info WHERE via = ? AND country_code = ? AND party_id = ?",
                                      [via, country_code.upper(), party_id.upper()])]

    def offline_parties(self) -> set[tuple[int, str, str]]:
        """(via, country_code, party_id) a Hub reported as not CONNECTED."""
        with self._read() as db:
            return {(r["via"], r["country_code"], r["party_id"]) for r in db.query(
                "SELECT via, country_code, party_id FROM client_info WHERE status != 'CONNECTED'")}
