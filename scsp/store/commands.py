"""ChargingProfiles requests we made, what we know of controlling each session, the active profiles CPOs report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import msgspec
from sqlite_utils import Database

from ocpi221.chargingprofiles import ActiveChargingProfile
from scsp.records.commands import ActiveProfileRecord, Command, SessionControl
from scsp.records.plans import PlanSession
from scsp.records.sessions import SessionKey
from scsp.store.codec import KEY_SQL, decode_dict, json_text, key_args, profile_of
from scsp.store.db import Db

_decode_active = msgspec.json.Decoder(ActiveChargingProfile).decode


# Command states in which a request is still "in flight" (one per session at most).
IN_FLIGHT = ("pending", "awaiting_result")



class CommandStore:
    """Commands, session control and received active profiles."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def _read(self) -> AbstractContextManager[Database]:
        return self._db.read()

    def _write(self) -> AbstractContextManager[Database]:
        return self._db.write()

    @staticmethod
    def _control(row: dict[str, Any]) -> SessionControl:
        return SessionControl(
            party=row["party"], country_code=row["country_code"], party_id=row["party_id"],
            session_id=row["session_id"], controllable=bool(row["controllable"]), reason=row["reason"],
            sent_profile=profile_of(row["sent_profile"]), sent_at=row["sent_at"],
            accepted_profile=profile_of(row["accepted_profile"]), accepted_at=row["accepted_at"],
            backoff_until=row["backoff_until"], too_often=row["too_often"])

    def control(self, key: SessionKey) -> SessionControl:
        """What we know about controlling a session (defaults when nothing yet)."""
        with self._read() as db:
            rows = list(db.query(f"SELECT * FROM session_control WHERE {KEY_SQL}", key_args(key)))
        if rows:
            return self._control(rows[0])
        return SessionControl(party=key.party, country_code=key.country_code, party_id=key.party_id,
                              session_id=key.session_id)

    def all_control(self) -> dict[tuple[int, str, str, str], SessionControl]:
        """Every session's control record, keyed by (party, country_code, party_id, session_id)."""
        with self._read() as db:
            return {(r["party"], r["country_code"], r["party_id"], r["session_id"]): self._control(r)
                    for r in db.query("SELECT * FROM session_control")}

    @staticmethod
    def _update_control(db: Database, key: SessionKey, **fields: Any) -> None:
        db.execute(
            "INSERT INTO session_control (party, country_code, party_id, session_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING", key_args(key))
        if fields:
            assignments = ", ".join(f"{name} = ?" for name in fields)
            values = [json_text(v) if isinstance(v, msgspec.Struct) else v for v in fields.values()]
            db.execute(f"UPDATE session_control SET {assignments} WHERE {KEY_SQL}", [*values, *key_args(key)])

    def set_controllable(self, key: SessionKey, controllable: bool, reason: str | None) -> None:
        """Mark a session (un)controllable, with the reason (e.g. the CPO answered NOT_SUPPORTED)."""
        with self._write() as db:
            self._update_control(db, key, controllable=int(controllable), reason=reason)

    def update_control(self, key: SessionKey, **fields: Any) -> None:
        """Set fields of a session's control record (backoff, acceptance, controllability)."""
        with self._write() as db:
            self._update_control(db, key, **fields)

    @staticmethod
    def _command(row: dict[str, Any]) -> Command:
        return Command(id=row["id"], kind=row["kind"], party=row["party"], country_code=row["country_code"],
                       party_id=row["party_id"], session_id=row["session_id"], plan=row["plan"],
                       profile=profile_of(row["profile"]), state=row["state"], response=row["response"],
                       result=row["result"], error=row["error"], created_at=row["created_at"],
                       responded_at=row["responded_at"], timeout_at=row["timeout_at"], result_at=row["result_at"])

    def create(self, command: Command) -> bool:
        """Record a command before it is sent. False (nothing stored) when one of its kind is in flight."""
        key = SessionKey(party=command.party, country_code=command.country_code, party_id=command.party_id,
                         session_id=command.session_id)
        # A readback GET never holds up a profile (a decrease must not wait for it), and vice versa:
        # the one-in-flight rule applies to set/clear among themselves and to GETs among themselves.
        family = ("get",) if command.kind == "get" else ("set", "clear")
        with self._write() as db:
            busy = db.execute(
                f"SELECT count(*) FROM commands WHERE {KEY_SQL} AND state IN {IN_FLIGHT} "
                f"AND kind IN ({', '.join('?' * len(family))})", [*key_args(key), *family]).fetchone()[0]
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
                f"SELECT count(*) FROM commands WHERE {KEY_SQL} AND state IN {IN_FLIGHT} "
                f"AND kind IN ({', '.join('?' * len(kinds))})", [*key_args(key), *kinds]).fetchone()[0])

    def get(self, command_id: str) -> Command | None:
        """One command by id."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
            return self._command(rows[0]) if rows else None

    def find(self, *, key: SessionKey | None = None, states: tuple[str, ...] | None = None,
                 kinds: tuple[str, ...] | None = None, limit: int = 1000) -> list[Command]:
        """Commands, newest first, optionally of one session, in some states and/or of some kinds."""
        where, args = ["1 = 1"], []
        if key is not None:
            where.append(KEY_SQL)
            args += key_args(key)
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

    def expire(self, *, now: int) -> list[Command]:
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
                    f"SELECT * FROM active_profiles WHERE {KEY_SQL} ORDER BY id DESC LIMIT 1", key_args(key)))
                if rows:
                    out[key] = _active(rows[0])
        return out

    def active_profiles(self, *, since_ts: int = 0, limit: int = 1000) -> list[ActiveProfileRecord]:
        """Received ActiveChargingProfiles since `since_ts`, newest first."""
        with self._read() as db:
            return [_active(r) for r in db.query(
                "SELECT * FROM active_profiles WHERE received_at >= ? ORDER BY id DESC LIMIT ?", [since_ts, limit])]


def _command_key(command: Command) -> SessionKey:
    return SessionKey(party=command.party, country_code=command.country_code, party_id=command.party_id,
                      session_id=command.session_id)


def _active(row: dict[str, Any]) -> ActiveProfileRecord:
    return ActiveProfileRecord(
        id=row["id"], party=row["party"], country_code=row["country_code"], party_id=row["party_id"],
        session_id=row["session_id"], source=row["source"], received_at=row["received_at"],
        profile=_decode_active(row["doc"]), plan=row["plan"], verdict=row["verdict"],
        worst_excess_w=row["worst_excess_w"], compliance=row["compliance"], detail=decode_dict(row["detail"] or "{}"))


def iter_keys(rows: list[PlanSession]) -> Iterator[SessionKey]:
    """Session keys of plan rows."""
    for row in rows:
        yield SessionKey(party=row.party, country_code=row.country_code, party_id=row.party_id,
                         session_id=row.session_id)

