"""The one place that talks SQLite (through sqlite-utils).

One connection per method call (sqlite3 connections refuse other threads); writes that belong
together run in one `BEGIN IMMEDIATE` transaction so concurrent writers (the server, the CLI in
another process, scheduler threads) queue on the lock instead of failing mid-transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
from sqlite_utils import Database

from ocpi221.credentials import CredentialsRole
from ocpi221.hubclientinfo import ConnectionStatus
from ocpi221.locations import Location
from ocpi221.sessions import Session, SessionPatch
from ocpi221.versions import Endpoint
from scsp.errors import MethodNotAllowed
from scsp.migrations import migrations
from scsp.models import Party, PartyStatus, TokenKind
from scsp.records import EvseFacts, StoredLocation, StoredSession, evse_facts, json_text, unix
from scsp.storage_api import ApiStoreMixin
from scsp.storage_planning import PlanningStoreMixin

# Seconds a connection waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 10.0


def hash_token(token: str) -> str:
    """SHA-256 of a token we issued. Tokens are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Store(PlanningStoreMixin, ApiStoreMixin):
    """SQLite-backed state of the service."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    # -- plumbing -------------------------------------------------------------------------------
    def _connect(self) -> Database:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return Database(conn, strict=True, execute_plugins=False)

    @contextmanager
    def _read(self) -> Iterator[Database]:
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self) -> Iterator[Database]:
        """One write transaction; rolled back whole on any error (nothing stored half-way)."""
        db = self._connect()
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.conn.rollback()
                raise
            db.conn.commit()
        finally:
            db.close()

    def migrate(self) -> list[str]:
        """Create the file if needed, switch to WAL and apply pending migrations; returns their names."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        try:
            db.conn.execute("PRAGMA journal_mode = WAL")
            pending = [m.name for m in migrations.pending(db)]
            migrations.apply(db)
            return pending
        finally:
            db.close()

    def applied_migrations(self) -> list[str]:
        """Names of applied migrations, oldest first."""
        with self._read() as db:
            return [m.name for m in migrations.applied(db)]

    def ping(self) -> None:
        """Raise if the database cannot be read (readiness probe)."""
        with self._read() as db:
            db.execute("SELECT count(*) FROM parties").fetchone()

    # -- parties and tokens ---------------------------------------------------------------------
    @staticmethod
    def _party(row: dict[str, Any]) -> Party:
        return Party(
            id=row["id"],
            role=row["role"],
            country_code=row["country_code"],
            party_id=row["party_id"],
            status=PartyStatus(row["status"]),
            business_name=row["business_name"],
            roles=msgspec.json.decode(row["roles"], type=list[CredentialsRole]),
            versions_url=row["versions_url"],
            version=row["version"],
            version_url=row["version_url"],
            endpoints=msgspec.json.decode(row["endpoints"], type=list[Endpoint]),
            token_out=row["token_out"],
            token_base64=bool(row["token_base64"]),
            connection_status=ConnectionStatus(row["connection_status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _get_party(self, db: Database, party: int) -> Party:
        rows = list(db.query("SELECT * FROM parties WHERE id = ?", [party]))
        if not rows:
            raise LookupError(f"no party with id {party}")
        return self._party(rows[0])

    def party(self, party: int) -> Party:
        """One party by its row id."""
        with self._read() as db:
            return self._get_party(db, party)

    def parties(self, *, include_unregistered: bool = True) -> list[Party]:
        """All parties, oldest first."""
        sql = "SELECT * FROM parties"
        if not include_unregistered:
            sql += " WHERE status != 'UNREGISTERED'"
        with self._read() as db:
            return [self._party(r) for r in db.query(sql + " ORDER BY id")]

    def registered_party(self, country_code: str, party_id: str) -> Party | None:
        """The registered party that has (country_code, party_id) among its roles, if any."""
        for party in self.parties(include_unregistered=False):
            if party.status == PartyStatus.REGISTERED and party.owns(country_code, party_id):
                return party
        return None

    def party_by_token(self, token: str) -> tuple[Party, TokenKind] | None:
        """The party holding this (not revoked) token we issued, and the token's kind."""
        with self._read() as db:
            rows = list(
                db.query(
                    "SELECT party, kind FROM tokens WHERE hash = ? AND revoked_at IS NULL",
                    [hash_token(token)],
                )
            )
            if not rows:
                return None
            return self._get_party(db, rows[0]["party"]), TokenKind(rows[0]["kind"])

    def create_party(
        self,
        *,
        status: PartyStatus,
        role: str,
        country_code: str,
        party_id: str,
        token: str,
        token_kind: TokenKind,
        now: int,
        versions_url: str | None = None,
        token_out: str | None = None,
        token_base64: bool = True,
    ) -> Party:
        """Insert a party with the token we issued it (an invitation or a pending registration)."""
        with self._write() as db:
            cursor = db.execute(
                """INSERT INTO parties (role, country_code, party_id, status, versions_url, token_out,
                   token_base64, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [role, country_code.upper(), party_id.upper(), status, versions_url, token_out,
                 int(token_base64), now, now],
            )
            party = int(cursor.lastrowid or 0)
            db.execute(
                "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, ?, ?)",
                [hash_token(token), party, token_kind, now],
            )
            return self._get_party(db, party)

    def delete_party(self, party: int) -> None:
        """Remove a party that never completed registration, with its tokens."""
        with self._write() as db:
            db.execute("DELETE FROM tokens WHERE party = ?", [party])
            db.execute("DELETE FROM parties WHERE id = ? AND status IN ('PENDING', 'INVITED')", [party])

    def complete_registration(
        self,
        party: int,
        *,
        roles: list[CredentialsRole],
        identity: CredentialsRole,
        versions_url: str,
        version: str,
        version_url: str,
        endpoints: list[Endpoint],
        token_out: str,
        token_base64: bool,
        new_token: str | None,
        now: int,
    ) -> Party:
        """Mark a party registered, in one transaction.

        Revokes every token A of the party (single use: credentials.asciidoc "it MAY no longer be
        used"), stores the new token C when we issued one, and retires any older registration of the
        same identity (a re-registration after the peer lost its state).
        """
        with self._write() as db:
            current = self._get_party(db, party)
            if current.status not in (PartyStatus.INVITED, PartyStatus.PENDING):
                # A concurrent registration with the same token A won the race.
                raise MethodNotAllowed(f"party {current.handle} is already registered")
            cc, pid = identity.country_code.upper(), identity.party_id.upper()
            for old in db.query(
                "SELECT id FROM parties WHERE country_code = ? AND party_id = ? AND role = ? "
                "AND status = 'REGISTERED' AND id != ?",
                [cc, pid, identity.role, party],
            ):
                db.execute("UPDATE parties SET status = 'UNREGISTERED', updated_at = ? WHERE id = ?",
                           [now, old["id"]])
                db.execute("UPDATE tokens SET revoked_at = ? WHERE party = ? AND revoked_at IS NULL",
                           [now, old["id"]])
            db.execute(
                """UPDATE parties SET status = 'REGISTERED', role = ?, country_code = ?, party_id = ?,
                   business_name = ?, roles = ?, versions_url = ?, version = ?, version_url = ?,
                   endpoints = ?, token_out = ?, token_base64 = ?, updated_at = ? WHERE id = ?""",
                [identity.role, cc, pid, identity.business_details.name,
                 msgspec.json.encode(roles).decode(), versions_url, version, version_url,
                 msgspec.json.encode(endpoints).decode(), token_out, int(token_base64), now, party],
            )
            db.execute("UPDATE tokens SET revoked_at = ? WHERE party = ? AND kind = 'A' AND revoked_at IS NULL",
                       [now, party])
            if new_token is not None:
                db.execute(
                    "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, 'C', ?)",
                    [hash_token(new_token), party, now],
                )
            return self._get_party(db, party)

    def update_credentials(
        self,
        party: int,
        *,
        roles: list[CredentialsRole] | None = None,
        versions_url: str | None = None,
        version: str | None = None,
        version_url: str | None = None,
        endpoints: list[Endpoint] | None = None,
        token_out: str | None = None,
        token_base64: bool | None = None,
        new_token: str | None = None,
        keep_token: str | None = None,
        now: int,
    ) -> Party:
        """Apply a credentials update in one transaction.

        With `new_token` (we issue it now) or `keep_token` (we issued it just before the update), every
        other token of the party is revoked: after a rotation only the newest token works.
        """
        with self._write() as db:
            current = self._get_party(db, party)
            if current.status != PartyStatus.REGISTERED:
                raise MethodNotAllowed(f"party {current.handle} is not registered")
            db.execute(
                """UPDATE parties SET roles = ?, business_name = ?, versions_url = ?, version = ?,
                   version_url = ?, endpoints = ?, token_out = ?, token_base64 = ?, updated_at = ?
                   WHERE id = ?""",
                [
                    msgspec.json.encode(roles if roles is not None else current.roles).decode(),
                    _business_name(roles, current),
                    versions_url or current.versions_url,
                    version or current.version,
                    version_url or current.version_url,
                    msgspec.json.encode(endpoints if endpoints is not None else current.endpoints).decode(),
                    token_out if token_out is not None else current.token_out,
                    int(token_base64 if token_base64 is not None else current.token_base64),
                    now,
                    party,
                ],
            )
            if new_token is not None:
                db.execute(
                    "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, 'C', ?)",
                    [hash_token(new_token), party, now],
                )
            survivor = new_token if new_token is not None else keep_token
            if survivor is not None:
                db.execute(
                    "UPDATE tokens SET revoked_at = ? WHERE party = ? AND revoked_at IS NULL AND hash != ?",
                    [now, party, hash_token(survivor)],
                )
            return self._get_party(db, party)

    def add_token(self, party: int, token: str, *, now: int) -> None:
        """Issue one more token C to a party (before a rotation whose outcome is not known yet)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, ?, 'C', ?)",
                [hash_token(token), party, now],
            )

    def revoke_token(self, token: str, *, now: int) -> None:
        """Revoke one token we issued."""
        with self._write() as db:
            db.execute("UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                       [now, hash_token(token)])

    def unregister(self, party: int, *, now: int) -> Party:
        """Mark a party unregistered and revoke every token we issued it: all traffic stops."""
        with self._write() as db:
            db.execute("UPDATE parties SET status = 'UNREGISTERED', updated_at = ? WHERE id = ?", [now, party])
            db.execute("UPDATE tokens SET revoked_at = ? WHERE party = ? AND revoked_at IS NULL", [now, party])
            return self._get_party(db, party)

    def set_connection_status(self, party: int, status: ConnectionStatus, *, now: int) -> Party:
        """Record what a Hub reported about a party (HubClientInfo)."""
        with self._write() as db:
            db.execute("UPDATE parties SET connection_status = ?, updated_at = ? WHERE id = ?",
                       [status, now, party])
            return self._get_party(db, party)


    # -- sessions (mod_sessions receiver and pull) ----------------------------------------------
    def session(self, party: int, country_code: str, party_id: str, session_id: str) -> StoredSession | None:
        """One session as stored."""
        with self._read() as db:
            return self._session_row(db, party, country_code, party_id, session_id)

    @staticmethod
    def _session_row(db: Database, party: int, cc: str, pid: str, sid: str) -> StoredSession | None:
        rows = list(db.query(
            "SELECT doc, received_at FROM sessions WHERE party = ? AND country_code = ? AND party_id = ? AND id = ?",
            [party, cc.upper(), pid.upper(), sid]))
        if not rows:
            return None
        return StoredSession(party=party, session=msgspec.json.decode(rows[0]["doc"], type=Session),
                             received_at=rows[0]["received_at"])

    @staticmethod
    def _write_session(db: Database, party: int, session: Session, now: int) -> None:
        db.execute(
            """INSERT INTO sessions (party, country_code, party_id, id, doc, status, location_id, evse_uid,
               connector_id, kwh, start_ts, end_ts, last_updated, received_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (party, country_code, party_id, id) DO UPDATE SET doc = excluded.doc,
               status = excluded.status, location_id = excluded.location_id, evse_uid = excluded.evse_uid,
               connector_id = excluded.connector_id, kwh = excluded.kwh, start_ts = excluded.start_ts,
               end_ts = excluded.end_ts, last_updated = excluded.last_updated, received_at = excluded.received_at""",
            [party, session.country_code.upper(), session.party_id.upper(), session.id, json_text(session),
             session.status, session.location_id, session.evse_uid, session.connector_id, session.kwh,
             unix(session.start_date_time), unix(session.end_date_time), unix(session.last_updated), now])

    def put_session(self, party: int, session: Session, *, now: int) -> tuple[bool, bool]:
        """Create or replace a session; returns (created, applied).

        An object whose `last_updated` is older than the stored one is not applied: older data never
        overwrites newer (pushes and pulls may cross).
        """
        with self._write() as db:
            current = self._session_row(db, party, session.country_code, session.party_id, session.id)
            if current is not None and current.session.last_updated > session.last_updated:
                return False, False
            self._write_session(db, party, session, now)
            return current is None, True

    def patch_session(self, party: int, country_code: str, party_id: str, session_id: str,
                      patch: SessionPatch, *, now: int) -> Session | None:
        """Apply a PATCH; None when the session is unknown. Returns the session after the patch.

        mod_sessions: `charging_periods` in a PATCH are appended to the existing ones. A patch older
        than the stored object is ignored (the stored session is returned unchanged).
        """
        with self._write() as db:
            current = self._session_row(db, party, country_code, party_id, session_id)
            if current is None:
                return None
            if patch.last_updated < current.session.last_updated:
                return current.session
            changes = {f: getattr(patch, f) for f in patch.__struct_fields__
                       if getattr(patch, f) is not msgspec.UNSET}
            added = changes.pop("charging_periods", None)
            if added:
                changes["charging_periods"] = [*(current.session.charging_periods or []), *added]
            merged = msgspec.structs.replace(current.session, **changes)
            merged = msgspec.convert(msgspec.to_builtins(merged), Session)  # re-validate the whole object
            self._write_session(db, party, merged, now)
            return merged

    def sessions(self, *, party: int | None = None, statuses: tuple[str, ...] | None = None,
                 location_id: str | None = None, updated_from: int | None = None, updated_to: int | None = None,
                 offset: int = 0, limit: int | None = None) -> tuple[list[StoredSession], int]:
        """Sessions matching the filters, oldest `last_updated` first, and the total count."""
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if party is not None:
            where.append("party = ?")
            args.append(party)
        if statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            args += list(statuses)
        if location_id is not None:
            where.append("location_id = ?")
            args.append(location_id)
        if updated_from is not None:
            where.append("last_updated >= ?")
            args.append(updated_from)
        if updated_to is not None:
            where.append("last_updated < ?")
            args.append(updated_to)
        clause = " AND ".join(where)
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM sessions WHERE {clause}", args).fetchone()[0]
            sql = f"SELECT party, doc, received_at FROM sessions WHERE {clause} ORDER BY last_updated, id"
            page = args[:]
            if limit is not None:
                sql += " LIMIT ? OFFSET ?"
                page += [limit, offset]
            rows = [StoredSession(party=r["party"], session=msgspec.json.decode(r["doc"], type=Session),
                                  received_at=r["received_at"]) for r in db.query(sql, page)]
            return rows, int(total)

    def sessions_by_owner(self, country_code: str, party_id: str, session_id: str) -> list[StoredSession]:
        """Sessions with these CPO ids, through any connection."""
        with self._read() as db:
            return [StoredSession(party=r["party"], session=msgspec.json.decode(r["doc"], type=Session),
                                  received_at=r["received_at"])
                    for r in db.query("SELECT party, doc, received_at FROM sessions WHERE country_code = ? "
                                      "AND party_id = ? AND id = ?", [country_code.upper(), party_id.upper(),
                                                                       session_id])]

    def sessions_by_id(self, party: int, session_id: str) -> list[StoredSession]:
        """Sessions of one connection with this id (normally one; several owners behind a Hub may clash)."""
        with self._read() as db:
            return [StoredSession(party=r["party"], session=msgspec.json.decode(r["doc"], type=Session),
                                  received_at=r["received_at"])
                    for r in db.query("SELECT party, doc, received_at FROM sessions WHERE party = ? AND id = ?",
                                      [party, session_id])]

    # -- locations (mod_locations receiver and pull) --------------------------------------------
    def location(self, party: int, country_code: str, party_id: str, location_id: str) -> Location | None:
        """One location as stored."""
        with self._read() as db:
            return self._location_row(db, party, country_code, party_id, location_id)

    @staticmethod
    def _location_row(db: Database, party: int, cc: str, pid: str, lid: str) -> Location | None:
        rows = list(db.query(
            "SELECT doc FROM locations WHERE party = ? AND country_code = ? AND party_id = ? AND id = ?",
            [party, cc.upper(), pid.upper(), lid]))
        return msgspec.json.decode(rows[0]["doc"], type=Location) if rows else None

    @staticmethod
    def _write_location(db: Database, party: int, location: Location) -> None:
        cc, pid = location.country_code.upper(), location.party_id.upper()
        db.execute(
            """INSERT INTO locations (party, country_code, party_id, id, doc, time_zone, last_updated)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (party, country_code, party_id, id) DO UPDATE SET
               doc = excluded.doc, time_zone = excluded.time_zone, last_updated = excluded.last_updated""",
            [party, cc, pid, location.id, json_text(location), location.time_zone, unix(location.last_updated)])
        db.execute("DELETE FROM evses WHERE party = ? AND country_code = ? AND party_id = ? AND location_id = ?",
                   [party, cc, pid, location.id])
        for f in evse_facts(party, location):
            db.execute(
                """INSERT INTO evses (party, country_code, party_id, location_id, uid, status, capable, power_type,
                   phases, voltage_v, max_amperage_a, max_power_w) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [f.party, f.country_code, f.party_id, f.location_id, f.uid, f.status, int(f.capable), f.power_type,
                 f.phases, f.voltage_v, f.max_amperage_a, f.max_power_w])

    def put_location(self, party: int, location: Location, *, replace_all: bool = True) -> tuple[bool, bool]:
        """Create or replace a location; returns (created, applied). Older data never overwrites newer."""
        with self._write() as db:
            current = self._location_row(db, party, location.country_code, location.party_id, location.id)
            if current is not None and current.last_updated > location.last_updated:
                return False, False
            self._write_location(db, party, location)
            return current is None, True

    def update_location(self, party: int, country_code: str, party_id: str, location_id: str,
                        change: Callable[[Location | None], Location]) -> Location:
        """Read-modify-write one location in a single transaction (EVSE/connector PUTs and PATCHes)."""
        with self._write() as db:
            current = self._location_row(db, party, country_code, party_id, location_id)
            updated = change(current)
            self._write_location(db, party, updated)
            return updated

    def locations(self, *, party: int | None = None) -> list[StoredLocation]:
        """Every stored location."""
        sql, args = "SELECT party, doc FROM locations", []
        if party is not None:
            sql, args = sql + " WHERE party = ?", [party]
        with self._read() as db:
            return [StoredLocation(party=r["party"], location=msgspec.json.decode(r["doc"], type=Location))
                    for r in db.query(sql + " ORDER BY last_updated", args)]

    def evses(self, *, location_id: str | None = None) -> list[EvseFacts]:
        """EVSE facts, optionally of one location id (any connection)."""
        sql, args = "SELECT * FROM evses", []
        if location_id is not None:
            sql, args = sql + " WHERE location_id = ?", [location_id]
        with self._read() as db:
            return [EvseFacts(party=r["party"], country_code=r["country_code"], party_id=r["party_id"],
                              location_id=r["location_id"], uid=r["uid"], status=r["status"],
                              capable=bool(r["capable"]), power_type=r["power_type"], phases=r["phases"],
                              voltage_v=r["voltage_v"], max_amperage_a=r["max_amperage_a"],
                              max_power_w=r["max_power_w"]) for r in db.query(sql, args)]


def _business_name(roles: list[CredentialsRole] | None, current: Party) -> str | None:
    if not roles:
        return current.business_name
    for role in roles:
        if (role.country_code.upper(), role.party_id.upper()) == (current.country_code, current.party_id):
            return role.business_details.name
    return roles[0].business_details.name

