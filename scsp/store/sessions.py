"""Sessions and Locations as CPOs push them and we pull them (with the EVSE facts derived from each Location)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import msgspec
from sqlite_utils import Database

from ocpi221.locations import Location
from ocpi221.sessions import Session, SessionPatch
from scsp.errors import SiteOfAnother
from scsp.records.sessions import EvseFacts, SessionKey, StoredLocation, StoredSession, evse_facts, site_id
from scsp.store.codec import checked_json_text, key_of, moment, unix
from scsp.store.db import Aggregate

_SESSION_COLUMNS = "party, country_code, party_id, id, doc, received_at, kwh_changed_at"
_decode_session = msgspec.json.Decoder(Session).decode
_decode_location = msgspec.json.Decoder(Location).decode


def _stored(r: dict[str, Any]) -> StoredSession:
    return StoredSession(party=r["party"], session=_decode_session(r["doc"]), received_at=moment(r["received_at"]),
                         kwh_changed_at=moment(r["kwh_changed_at"]))


def _row_key(r: dict[str, Any]) -> str:
    return f"{r['party']}/{r['country_code']}/{r['party_id']}/{r['id']}"


class SessionStore(Aggregate):
    """Sessions, locations and EVSE facts, keyed per connection and owner."""

    def get(self, key: SessionKey) -> StoredSession | None:
        """One session as stored (None when absent or unreadable: a PUT of the owner replaces it)."""
        with self._read() as db:
            return self._session_row(db, key.party, key.country_code, key.party_id, key.session_id)

    def _readable(self, rows: Iterable[dict[str, Any]]) -> list[StoredSession]:
        """The session rows that decode; an unreadable one is skipped, logged and counted (never a 500)."""
        out = []
        for r in rows:
            try:
                out.append(_stored(r))
            except msgspec.DecodeError as exc:  # ValidationError included
                self._faults.unreadable_row("sessions", _row_key(r), exc)
        return out

    def _session_row(self, db: Database, party: int, cc: str, pid: str, sid: str) -> StoredSession | None:
        rows = self._readable(db.query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE party = ? AND country_code = ? AND party_id = ? AND id = ?",
            [party, cc.upper(), pid.upper(), sid]))
        return rows[0] if rows else None

    @staticmethod
    def _write_session(db: Database, party: int, session: Session, now: datetime,
                       current: StoredSession | None) -> None:
        # The energy grew (or the session is new): an idle session is one whose energy stopped growing.
        kwh_changed_at = now
        if current is not None and current.kwh_changed_at is not None and session.kwh <= current.session.kwh:
            kwh_changed_at = current.kwh_changed_at
        db.execute(
            """INSERT INTO sessions (party, country_code, party_id, id, doc, status, location_id, evse_uid,
               connector_id, kwh, start_ts, end_ts, last_updated, received_at, kwh_changed_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (party, country_code, party_id, id) DO UPDATE SET doc = excluded.doc,
               status = excluded.status, location_id = excluded.location_id, evse_uid = excluded.evse_uid,
               connector_id = excluded.connector_id, kwh = excluded.kwh, start_ts = excluded.start_ts,
               end_ts = excluded.end_ts, last_updated = excluded.last_updated, received_at = excluded.received_at,
               kwh_changed_at = excluded.kwh_changed_at""",
            [party, session.country_code.upper(), session.party_id.upper(), session.id, checked_json_text(session),
             session.status, session.location_id, session.evse_uid, session.connector_id, session.kwh,
             unix(session.start_date_time), unix(session.end_date_time), unix(session.last_updated), unix(now),
             unix(kwh_changed_at)])
        if current is None or session.kwh != current.session.kwh:
            # The energy history behind the delivered power of the past (`energy_history`): a row per
            # change, and the previous report's energy as of that report when it was not kept (its
            # energy then held since the last row: idle, not charging slowly across the gap).
            ident = [party, session.country_code.upper(), session.party_id.upper(), session.id]
            site = site_id(session.country_code, session.party_id, session.location_id)
            samples = [(unix(session.last_updated), session.kwh)]
            if current is not None:
                last = db.execute(
                    "SELECT max(at) FROM session_energy WHERE party = ? AND country_code = ? AND party_id = ? "
                    "AND session_id = ?", ident).fetchone()[0]
                before = unix(current.session.last_updated)
                if before is not None and (last is None or before > last):
                    samples.insert(0, (before, current.session.kwh))
            for moment_at, kwh in samples:
                db.execute(
                    "INSERT INTO session_energy (party, country_code, party_id, session_id, site_id, at, kwh) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", [*ident, site, moment_at, kwh])

    def canonical(self, party: int, session: Session) -> Session:
        """The session with its CiString ids spelled as we already hold them (the first spelling received).

        types.asciidoc: CiString is case-insensitive. The keys compare without case (m007), and one
        object keeps one spelling, so that every in-memory key (sites, EVSEs, session keys) agrees.
        """
        cc, pid = session.country_code.upper(), session.party_id.upper()
        changes: dict[str, str] = {}
        with self._read() as db:
            for column, sql, args in (
                ("id", "SELECT id FROM sessions WHERE party = ? AND country_code = ? AND party_id = ? "
                 "AND id = ?", [party, cc, pid, session.id]),
                ("location_id", "SELECT id FROM locations WHERE party = ? AND country_code = ? "
                 "AND party_id = ? AND id = ?", [party, cc, pid, session.location_id]),
                ("evse_uid", "SELECT uid FROM evses WHERE party = ? AND country_code = ? AND party_id = ? "
                 "AND location_id = ? AND uid = ?", [party, cc, pid, session.location_id, session.evse_uid]),
            ):
                row = db.execute(sql, args).fetchone()
                if row is not None and row[0] != getattr(session, column):
                    changes[column] = row[0]
        return msgspec.structs.replace(session, **changes) if changes else session

    def canonical_location(self, party: int, location: Location) -> Location:
        """The location with its id spelled as we already hold it (see `canonical`)."""
        with self._read() as db:
            row = db.execute("SELECT id FROM locations WHERE party = ? AND country_code = ? AND party_id = ? "
                             "AND id = ?", [party, location.country_code.upper(), location.party_id.upper(),
                                            location.id]).fetchone()
        return msgspec.structs.replace(location, id=row[0]) if row is not None and row[0] != location.id \
            else location

    @staticmethod
    def _claim(db: Database, party: int, site: str, now: datetime) -> None:
        """Make `party` the owner of `site` unless another live connection owns it (SiteOfAnother, 2001).

        A site belongs to the connection that first pushed or served its Location or a Session; a
        site whose owner unregistered passes to the next connection that speaks for it.
        """
        rows = list(db.query("SELECT o.party, p.status FROM site_owners o LEFT JOIN parties p ON p.id = o.party "
                             "WHERE o.site_id = ?", [site]))
        if not rows:
            db.execute("INSERT INTO site_owners (site_id, party, claimed_at) VALUES (?, ?, ?)",
                       [site, party, unix(now)])
        elif rows[0]["party"] != party:
            if rows[0]["status"] not in (None, "UNREGISTERED"):
                raise SiteOfAnother(f"site {site} belongs to another connection: its Locations and Sessions "
                                    "come only through the connection that first reported it")
            db.execute("UPDATE site_owners SET party = ?, claimed_at = ? WHERE site_id = ?",
                       [party, unix(now), site])

    def site_owner(self, site: str) -> int | None:
        """The connection that owns a site, if any has reported it."""
        with self._read() as db:
            rows = list(db.query("SELECT party FROM site_owners WHERE site_id = ?", [site]))
            return int(rows[0]["party"]) if rows else None

    def site_owners(self) -> dict[str, int]:
        """Every reported site and the connection that owns it."""
        with self._read() as db:
            return {r["site_id"]: int(r["party"]) for r in db.query("SELECT site_id, party FROM site_owners")}

    def put(self, party: int, session: Session, *, now: datetime) -> tuple[bool, bool]:
        """Create or replace a session; returns (created, applied).

        An object whose `last_updated` is older than the stored one is not applied: older data never
        overwrites newer (pushes and pulls may cross).
        """
        with self._write() as db:
            current = self._session_row(db, party, session.country_code, session.party_id, session.id)
            if current is not None and current.session.last_updated > session.last_updated:
                return False, False
            self._claim(db, party, site_id(session.country_code, session.party_id, session.location_id), now)
            self._write_session(db, party, session, now, current)
            return current is None, True

    def patch(self, key: SessionKey, patch: SessionPatch, *, now: datetime) -> Session | None:
        """Apply a PATCH; None when the session is unknown. Returns the session after the patch.

        mod_sessions: `charging_periods` in a PATCH are appended to the existing ones. A patch older
        than the stored object is ignored (the stored session is returned unchanged).
        """
        with self._write() as db:
            current = self._session_row(db, key.party, key.country_code, key.party_id, key.session_id)
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
            self._claim(db, key.party, site_id(merged.country_code, merged.party_id, merged.location_id), now)
            self._write_session(db, key.party, merged, now, current)
            return merged

    def energy_history(self, site: str, *, since: datetime, until: datetime
                       ) -> dict[SessionKey, list[tuple[datetime, float]]]:
        """Per session of a site, its reported energy (kWh) over time, oldest first.

        Each session's samples within [since, until] plus the last one before `since` (what it had
        delivered by then), so the energy at any moment of the window can be interpolated.
        """
        out: dict[SessionKey, list[tuple[datetime, float]]] = {}
        with self._read() as db:
            rows = db.query(
                """SELECT e.party, e.country_code, e.party_id, e.session_id, e.at, e.kwh FROM session_energy e
                   WHERE e.site_id = ? AND e.at <= ? AND (e.at >= ? OR e.at = (
                       SELECT max(p.at) FROM session_energy p WHERE p.site_id = e.site_id AND p.party = e.party
                       AND p.country_code = e.country_code AND p.party_id = e.party_id
                       AND p.session_id = e.session_id AND p.at < ?))
                   ORDER BY e.at, e.rowid""", [site, unix(until), unix(since), unix(since)])
            for r in rows:
                moment_at = moment(r["at"])
                assert moment_at is not None
                out.setdefault(key_of(r), []).append((moment_at, float(r["kwh"])))
            # Rows are kept only when the energy changes: the newest report (same energy, later) says
            # until when it is known, so an idle session counts as idle up to then, not as unknown.
            for r in db.query(
                    "SELECT party, country_code, party_id, id AS session_id, last_updated, kwh FROM sessions "
                    "WHERE upper(country_code) || '-' || upper(party_id) || '-' || location_id = ? "
                    "AND last_updated <= ?", [site, unix(until)]):
                samples = out.get(key_of(r))
                reported = moment(r["last_updated"])
                if samples and reported is not None and reported > samples[-1][0]:
                    samples.append((reported, float(r["kwh"])))
        return out

    def prune_energy(self, *, before: datetime) -> int:
        """Forget energy samples older than `before`, except each session's newest; returns how many."""
        with self._write() as db:
            cursor = db.execute(
                """DELETE FROM session_energy WHERE at < ? AND rowid NOT IN (
                       SELECT max(rowid) FROM session_energy GROUP BY party, country_code, party_id, session_id)""",
                [unix(before)])
            return int(cursor.rowcount)

    def find(self, *, party: int | None = None, statuses: tuple[str, ...] | None = None,
                 location_id: str | None = None, updated_from: datetime | None = None,
                 updated_to: datetime | None = None,
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
            args.append(unix(updated_from))
        if updated_to is not None:
            where.append("last_updated < ?")
            args.append(unix(updated_to))
        clause = " AND ".join(where)
        with self._read() as db:
            total = db.execute(f"SELECT count(*) FROM sessions WHERE {clause}", args).fetchone()[0]
            sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {clause} ORDER BY last_updated, id"
            page = args[:]
            if limit is not None:
                sql += " LIMIT ? OFFSET ?"
                page += [limit, offset]
            rows = self._readable(db.query(sql, page))
            return rows, int(total)

    def by_owner(self, country_code: str, party_id: str, session_id: str) -> list[StoredSession]:
        """Sessions with these CPO ids, through any connection."""
        with self._read() as db:
            return self._readable(db.query(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE country_code = ? "
                                           "AND party_id = ? AND id = ?", [country_code.upper(), party_id.upper(),
                                                                            session_id]))

    def by_id(self, party: int, session_id: str) -> list[StoredSession]:
        """Sessions of one connection with this id (normally one; several owners behind a Hub may clash)."""
        with self._read() as db:
            return self._readable(db.query(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE party = ? AND id = ?",
                                           [party, session_id]))

    def session_locations(self, country_code: str, party_id: str, session_id: str) -> list[str]:
        """The location ids a session is at (one per connection that reported it; usually one, or none)."""
        with self._read() as db:
            rows = db.query(
                "SELECT DISTINCT location_id FROM sessions WHERE country_code = ? AND party_id = ? AND id = ?"
                " ORDER BY location_id",
                [country_code.upper(), party_id.upper(), session_id],
            )
            return [r["location_id"] for r in rows]

    def location(self, party: int, country_code: str, party_id: str, location_id: str) -> Location | None:
        """One location as stored."""
        with self._read() as db:
            return self._location_row(db, party, country_code, party_id, location_id)

    def _location_row(self, db: Database, party: int, cc: str, pid: str, lid: str) -> Location | None:
        """One location (None when absent or unreadable: the owner's PUT replaces it)."""
        rows = list(db.query(
            "SELECT party, country_code, party_id, id, doc FROM locations WHERE party = ? AND country_code = ? "
            "AND party_id = ? AND id = ?", [party, cc.upper(), pid.upper(), lid]))
        found = self._readable_locations(rows)
        return found[0].location if found else None

    def _readable_locations(self, rows: Iterable[dict[str, Any]]) -> list[StoredLocation]:
        out = []
        for r in rows:
            try:
                out.append(StoredLocation(party=r["party"], location=_decode_location(r["doc"])))
            except msgspec.DecodeError as exc:
                self._faults.unreadable_row("locations", _row_key(r), exc)
        return out

    @staticmethod
    def _write_location(db: Database, party: int, location: Location) -> None:
        cc, pid = location.country_code.upper(), location.party_id.upper()
        SessionStore._claim(db, party, site_id(cc, pid, location.id), location.last_updated)
        db.execute(
            """INSERT INTO locations (party, country_code, party_id, id, doc, time_zone, last_updated)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (party, country_code, party_id, id) DO UPDATE SET
               doc = excluded.doc, time_zone = excluded.time_zone, last_updated = excluded.last_updated""",
            [party, cc, pid, location.id, checked_json_text(location), location.time_zone, unix(location.last_updated)])
        db.execute("DELETE FROM evses WHERE party = ? AND country_code = ? AND party_id = ? AND location_id = ?",
                   [party, cc, pid, location.id])
        for f in evse_facts(party, location):
            db.execute(
                """INSERT INTO evses (party, country_code, party_id, location_id, uid, status, capable, power_type,
                   phases, voltage_v, max_amperage_a, max_power_w, last_updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [f.party, f.country_code, f.party_id, f.location_id, f.uid, f.status, int(f.capable), f.power_type,
                 f.phases, f.voltage_v, f.max_amperage_a, f.max_power_w, unix(f.last_updated)])

    def put_location(self, party: int, location: Location) -> tuple[bool, bool]:
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
        sql, args = "SELECT party, country_code, party_id, id, doc FROM locations", []
        if party is not None:
            sql, args = sql + " WHERE party = ?", [party]
        with self._read() as db:
            return self._readable_locations(db.query(sql + " ORDER BY last_updated", args))

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
                              max_power_w=r["max_power_w"], last_updated=moment(r["last_updated"]))
                    for r in db.query(sql, args)]

    def adopt(self, old: list[int], new: int) -> int:
        """Move what the connections `old` told us (sessions, locations, control, requests) to `new`.

        A party that registered again under the same identity (it lost its state, or replaced its
        platform) still runs the sessions of its old registration: they are its sessions, not
        ghosts of a party that left. Rows the new connection already holds win. Returns the count
        of sessions moved.
        """
        if not old:
            return 0
        marks = ", ".join("?" * len(old))
        with self._write() as db:
            moved = db.execute(f"SELECT count(*) FROM sessions WHERE party IN ({marks})", old).fetchone()[0]
            for table in ("sessions", "locations", "evses", "session_control", "commands", "active_profiles",
                          "site_owners"):
                db.execute(f"UPDATE OR IGNORE {table} SET party = ? WHERE party IN ({marks})", [new, *old])
                db.execute(f"DELETE FROM {table} WHERE party IN ({marks})", old)
            return int(moved)
