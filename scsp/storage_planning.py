"""Store methods for plans, commands, session control, readback, sync state and hub client info.

Mixed into `scsp.storage.Store`; uses its `_read()` / `_write()` (one connection per call, one
`BEGIN IMMEDIATE` transaction per write).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import msgspec
from sqlite_utils import Database

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile
from scsp.records import (
    ActiveProfileRecord,
    Command,
    PlanSession,
    SessionControl,
    SessionKey,
    StoredPlan,
    SyncState,
    json_text,
)

_decode_profile = msgspec.json.Decoder(ChargingProfile).decode
_decode_active = msgspec.json.Decoder(ActiveChargingProfile).decode
_decode_floats = msgspec.json.Decoder(list[float]).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode

# Command states in which a request is still "in flight" (one per session at most).
IN_FLIGHT = ("pending", "awaiting_result")


def _profile(text: str | None) -> ChargingProfile | None:
    return _decode_profile(text) if text else None


def _key_args(key: SessionKey) -> list[Any]:
    return [key.party, key.country_code, key.party_id, key.session_id]


_KEY = "party = ? AND country_code = ? AND party_id = ? AND session_id = ?"


class PlanningStoreMixin:
    """Planning-cycle persistence."""

    if TYPE_CHECKING:  # provided by Store
        def _read(self) -> AbstractContextManager[Database]: ...

        def _write(self) -> AbstractContextManager[Database]: ...

    # -- plans ----------------------------------------------------------------------------------
    def save_plan(self, plan: StoredPlan) -> int:
        """Persist one site's plan with its session rows; returns the plan id."""
        with self._write() as db:
            cursor = db.execute(
                """INSERT INTO plans (site_id, created_at, start_ts, slot_s, n_slots, status, path, limit_w,
                   site_power_w, fixed_load_w, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [plan.site_id, plan.created_at, plan.start_ts, plan.slot_s, plan.n_slots, plan.status, plan.path,
                 json_text(plan.limit_w), json_text(plan.site_power_w), json_text(plan.fixed_load_w),
                 json_text(plan.detail)])
            plan_id = int(cursor.lastrowid or 0)
            for row in plan.sessions:
                db.execute(
                    """INSERT INTO plan_sessions (plan, party, country_code, party_id, session_id, controllable,
                       power_w, energy_kwh, shortfall_kwh, profile) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [plan_id, row.party, row.country_code, row.party_id, row.session_id, int(row.controllable),
                     json_text(row.power_w), row.energy_kwh, row.shortfall_kwh,
                     json_text(row.profile) if row.profile is not None else None])
            return plan_id

    @staticmethod
    def _plan(db: Database, row: dict[str, Any], with_sessions: bool = True) -> StoredPlan:
        sessions = []
        if with_sessions:
            sessions = [
                PlanSession(party=r["party"], country_code=r["country_code"], party_id=r["party_id"],
                            session_id=r["session_id"], controllable=bool(r["controllable"]),
                            power_w=_decode_floats(r["power_w"]), energy_kwh=r["energy_kwh"],
                            shortfall_kwh=r["shortfall_kwh"], profile=_profile(r["profile"]))
                for r in db.query("SELECT * FROM plan_sessions WHERE plan = ? ORDER BY session_id", [row["id"]])
            ]
        return StoredPlan(id=row["id"], site_id=row["site_id"], created_at=row["created_at"],
                          start_ts=row["start_ts"], slot_s=row["slot_s"], n_slots=row["n_slots"],
                          status=row["status"], path=row["path"], limit_w=_decode_floats(row["limit_w"]),
                          site_power_w=_decode_floats(row["site_power_w"]),
                          fixed_load_w=_decode_floats(row["fixed_load_w"]), detail=_decode_dict(row["detail"]),
                          sessions=sessions)

    def latest_plan(self, site_id: str) -> StoredPlan | None:
        """The newest plan of a site."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM plans WHERE site_id = ? ORDER BY id DESC LIMIT 1", [site_id]))
            return self._plan(db, rows[0]) if rows else None

    def latest_plans(self) -> dict[str, StoredPlan]:
        """Each site's newest plan, without session rows."""
        with self._read() as db:
            rows = db.query("SELECT * FROM plans WHERE id IN (SELECT max(id) FROM plans GROUP BY site_id)")
            return {r["site_id"]: self._plan(db, r, with_sessions=False) for r in rows}

    def site_ids(self) -> set[str]:
        """Every site we know of: from Locations, planned Sessions, grid settings and plans."""
        with self._read() as db:
            ids = {r["site_id"] for r in db.query(
                "SELECT country_code || '-' || party_id || '-' || id AS site_id FROM locations "
                "UNION SELECT country_code || '-' || party_id || '-' || location_id FROM sessions "
                "WHERE status = 'ACTIVE' "
                "UNION SELECT site_id FROM site_settings UNION SELECT DISTINCT site_id FROM plans")}
            return ids

    def plan(self, plan_id: int) -> StoredPlan | None:
        """One plan by id."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM plans WHERE id = ?", [plan_id]))
            return self._plan(db, rows[0]) if rows else None

    def plan_history(self, site_id: str, *, since_ts: int, limit: int = 500) -> list[StoredPlan]:
        """A site's plans created since `since_ts`, oldest first, without session rows."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM plans WHERE site_id = ? AND created_at >= ? ORDER BY id DESC LIMIT ?",
                                 [site_id, since_ts, limit]))
            return [self._plan(db, r, with_sessions=False) for r in reversed(rows)]

    def plan_row(self, key: SessionKey, plan_id: int | None = None) -> tuple[StoredPlan, PlanSession] | None:
        """A plan containing this session (that plan, else the newest) and the session's row in it."""
        with self._read() as db:
            rows = list(db.query(
                f"SELECT plan FROM plan_sessions WHERE {_KEY} AND (? IS NULL OR plan = ?) ORDER BY plan DESC LIMIT 1",
                [*_key_args(key), plan_id, plan_id]))
            if not rows and plan_id is not None:
                rows = list(db.query(
                    f"SELECT plan FROM plan_sessions WHERE {_KEY} ORDER BY plan DESC LIMIT 1", _key_args(key)))
            if not rows:
                return None
            plan_rows = list(db.query("SELECT * FROM plans WHERE id = ?", [rows[0]["plan"]]))
            plan = self._plan(db, plan_rows[0])
            row = next(s for s in plan.sessions if (s.party, s.country_code, s.party_id, s.session_id)
                       == (key.party, key.country_code, key.party_id, key.session_id))
            return plan, row

    def prune_plans(self, *, before_ts: int) -> int:
        """Delete plans created before `before_ts` except each site's newest; returns how many."""
        with self._write() as db:
            keep = "SELECT max(id) FROM plans GROUP BY site_id"
            db.execute(f"DELETE FROM plan_sessions WHERE plan IN (SELECT id FROM plans WHERE created_at < ? "
                       f"AND id NOT IN ({keep}))", [before_ts])
            cursor = db.execute(f"DELETE FROM plans WHERE created_at < ? AND id NOT IN ({keep})", [before_ts])
            return int(cursor.rowcount)

    # -- session control ------------------------------------------------------------------------
    @staticmethod
    def _control(row: dict[str, Any]) -> SessionControl:
        return SessionControl(
            party=row["party"], country_code=row["country_code"], party_id=row["party_id"],
            session_id=row["session_id"], controllable=bool(row["controllable"]), reason=row["reason"],
            sent_profile=_profile(row["sent_profile"]), sent_at=row["sent_at"],
            accepted_profile=_profile(row["accepted_profile"]), accepted_at=row["accepted_at"],
            backoff_until=row["backoff_until"], too_often=row["too_often"])

    def session_control(self, key: SessionKey) -> SessionControl:
        """What we know about controlling a session (defaults when nothing yet)."""
        with self._read() as db:
            rows = list(db.query(f"SELECT * FROM session_control WHERE {_KEY}", _key_args(key)))
        if rows:
            return self._control(rows[0])
        return SessionControl(party=key.party, country_code=key.country_code, party_id=key.party_id,
                              session_id=key.session_id)

    def all_session_control(self) -> dict[tuple[int, str, str, str], SessionControl]:
        """Every session's control record, keyed by (party, country_code, party_id, session_id)."""
        with self._read() as db:
            return {(r["party"], r["country_code"], r["party_id"], r["session_id"]): self._control(r)
                    for r in db.query("SELECT * FROM session_control")}

    @staticmethod
    def _update_control(db: Database, key: SessionKey, **fields: Any) -> None:
        db.execute(
            "INSERT INTO session_control (party, country_code, party_id, session_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", _key_args(key))
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            values = [json_text(v) if isinstance(v, msgspec.Struct) else v for v in fields.values()]
            db.execute(f"UPDATE session_control SET {assignments} WHERE {_KEY}", [*values, *_key_args(key)])

    def set_controllable(self, key: SessionKey, controllable: bool, reason: str | None) -> None:
        """Mark a session (un)controllable, with the reason (e.g. the CPO answered NOT_SUPPORTED)."""
        with self._write() as db:
            self._update_control(db, key, controllable=int(controllable), reason=reason)

    # -- commands -------------------------------------------------------------------------------
    @staticmethod
    def _command(row: dict[str, Any]) -> Command:
        return Command(id=row["id"], kind=row["kind"], party=row["party"], country_code=row["country_code"],
                       party_id=row["party_id"], session_id=row["session_id"], plan=row["plan"],
                       profile=_profile(row["profile"]), state=row["state"], response=row["response"],
                       result=row["result"], error=row["error"], created_at=row["created_at"],
                       responded_at=row["responded_at"], timeout_at=row["timeout_at"], result_at=row["result_at"])

    def create_command(self, command: Command) -> bool:
        """Record a command before it is sent. False (nothing stored) when one of its kind is in flight."""
        key = SessionKey(party=command.party, country_code=command.country_code, party_id=command.party_id,
                         session_id=command.session_id)
        # A readback GET never holds up a profile (a decrease must not wait for it), and vice versa:
        # the one-in-flight rule applies to set/clear among themselves and to GETs among themselves.
        family = ("get",) if command.kind == "get" else ("set", "clear")
        with self._write() as db:
            busy = db.execute(
                f"SELECT count(*) FROM commands WHERE {_KEY} AND state IN {IN_FLIGHT} "
                f"AND kind IN ({', '.join('?' * len(family))})", [*_key_args(key), *family]).fetchone()[0]
            if busy:
                return False
            db.execute(
                """INSERT INTO commands (id, kind, party, country_code, party_id, session_id, plan, profile, state,
                   created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)""",
                [command.id, command.kind, command.party, command.country_code, command.party_id,
                 command.session_id, command.plan,
                 json_text(command.profile) if command.profile is not None else None, command.created_at])
            if command.kind == "set":
                self._update_control(db, key, sent_profile=command.profile, sent_at=command.created_at)
            return True

    def in_flight(self, key: SessionKey, kinds: tuple[str, ...] = ("set", "clear")) -> bool:
        """Whether a command of these kinds awaits its answer or result for the session."""
        with self._read() as db:
            return bool(db.execute(
                f"SELECT count(*) FROM commands WHERE {_KEY} AND state IN {IN_FLIGHT} "
                f"AND kind IN ({', '.join('?' * len(kinds))})", [*_key_args(key), *kinds]).fetchone()[0])

    def command(self, command_id: str) -> Command | None:
        """One command by id."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
            return self._command(rows[0]) if rows else None

    def commands(self, *, key: SessionKey | None = None, states: tuple[str, ...] | None = None,
                 kinds: tuple[str, ...] | None = None, limit: int = 1000) -> list[Command]:
        """Commands, newest first, optionally of one session, in some states and/or of some kinds."""
        where, args = ["1 = 1"], []
        if key is not None:
            where.append(_KEY)
            args += _key_args(key)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args += list(states)
        if kinds:
            where.append(f"kind IN ({', '.join('?' * len(kinds))})")
            args += list(kinds)
        with self._read() as db:
            return [self._command(r) for r in db.query(
                f"SELECT * FROM commands WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                [*args, limit])]

    def record_response(self, command_id: str, *, response: str, timeout_s: int, now: int,
                        control: dict[str, Any] | None = None) -> Command:
        """Store the CPO's synchronous ChargingProfileResponse (and what it means for the session).

        A result that arrived before this reply (the CPO may post it first) is kept: the state only
        moves on from `pending`.
        """
        with self._write() as db:
            state = "awaiting_result" if response == "ACCEPTED" else "refused"
            db.execute(
                """UPDATE commands SET response = ?, responded_at = ?, timeout_at = ?,
                   state = CASE WHEN state = 'pending' THEN ? ELSE state END WHERE id = ?""",
                [response, now, now + max(timeout_s, 0), state, command_id])
            command = self._command(next(iter(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))))
            if control:
                self._update_control(db, _command_key(command), **control)
            return command

    def record_failure(self, command_id: str, *, error: str, now: int) -> None:
        """The request itself failed (transport, HTTP or OCPI error)."""
        with self._write() as db:
            db.execute("UPDATE commands SET state = 'failed', error = ?, responded_at = ? WHERE id = ? "
                       "AND state = 'pending'", [error[:1000], now, command_id])

    def record_result(self, command_id: str, *, result: str, now: int,
                      control: dict[str, Any] | None = None) -> Command | None:
        """Store the asynchronous result posted to our response_url; None if the command is unknown."""
        with self._write() as db:
            rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
            if not rows:
                return None
            db.execute("UPDATE commands SET result = ?, result_at = ?, state = 'completed' WHERE id = ?",
                       [result, now, command_id])
            command = self._command(next(iter(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))))
            if control:
                self._update_control(db, _command_key(command), **control)
            return command

    def expire_commands(self, *, now: int) -> list[Command]:
        """Commands whose `timeout` passed without a result become `unknown` (mod_charging_profiles)."""
        with self._write() as db:
            rows = [self._command(r) for r in db.query(
                "SELECT * FROM commands WHERE state = 'awaiting_result' AND timeout_at <= ?", [now])]
            db.execute("UPDATE commands SET state = 'unknown' WHERE state = 'awaiting_result' AND timeout_at <= ?",
                       [now])
            return rows

    def abandon_in_flight(self, *, now: int) -> int:
        """At start-up: requests of a previous run that are still in flight are `unknown` (never resent)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE commands SET state = 'unknown', error = coalesce(error, 'service restarted') "
                "WHERE state IN ('pending', 'awaiting_result')")
            return int(cursor.rowcount)

    def update_control(self, key: SessionKey, **fields: Any) -> None:
        """Set fields of a session's control record (backoff, acceptance, controllability)."""
        with self._write() as db:
            self._update_control(db, key, **fields)

    # -- active profiles and compliance ---------------------------------------------------------
    def save_active_profile(self, record: ActiveProfileRecord) -> int:
        """Store a received ActiveChargingProfile with its compliance; returns its id."""
        with self._write() as db:
            cursor = db.execute(
                """INSERT INTO active_profiles (party, country_code, party_id, session_id, source, received_at, doc,
                   plan, verdict, worst_excess_w, compliance, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [record.party, record.country_code, record.party_id, record.session_id, record.source,
                 record.received_at, json_text(record.profile), record.plan, record.verdict, record.worst_excess_w,
                 record.compliance, json_text(record.detail)])
            return int(cursor.lastrowid or 0)

    def latest_active_profiles(self, keys: list[SessionKey]) -> dict[SessionKey, ActiveProfileRecord]:
        """The newest received ActiveChargingProfile of each session."""
        out: dict[SessionKey, ActiveProfileRecord] = {}
        with self._read() as db:
            for key in keys:
                rows = list(db.query(
                    f"SELECT * FROM active_profiles WHERE {_KEY} ORDER BY id DESC LIMIT 1", _key_args(key)))
                if rows:
                    out[key] = _active(rows[0])
        return out

    def active_profiles(self, *, since_ts: int = 0, limit: int = 1000) -> list[ActiveProfileRecord]:
        """Received ActiveChargingProfiles since `since_ts`, newest first."""
        with self._read() as db:
            return [_active(r) for r in db.query(
                "SELECT * FROM active_profiles WHERE received_at >= ? ORDER BY id DESC LIMIT ?", [since_ts, limit])]

    # -- operator figures -----------------------------------------------------------------------
    def metrics_snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Counts for `/metrics`: parties by status, sessions by status, commands by outcome, verdicts."""
        with self._read() as db:
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

    # -- sync state and hub client info ---------------------------------------------------------
    def sync_state(self, party: int) -> SyncState:
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


def _command_key(command: Command) -> SessionKey:
    return SessionKey(party=command.party, country_code=command.country_code, party_id=command.party_id,
                      session_id=command.session_id)


def _active(row: dict[str, Any]) -> ActiveProfileRecord:
    return ActiveProfileRecord(
        id=row["id"], party=row["party"], country_code=row["country_code"], party_id=row["party_id"],
        session_id=row["session_id"], source=row["source"], received_at=row["received_at"],
        profile=_decode_active(row["doc"]), plan=row["plan"], verdict=row["verdict"],
        worst_excess_w=row["worst_excess_w"], compliance=row["compliance"], detail=_decode_dict(row["detail"] or "{}"))


def iter_keys(rows: list[PlanSession]) -> Iterator[SessionKey]:
    """Session keys of plan rows."""
    for row in rows:
        yield SessionKey(party=row.party, country_code=row.country_code, party_id=row.party_id,
                         session_id=row.session_id)
