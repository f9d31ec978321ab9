"""ChargingProfiles requests we made, what we know of controlling each session, the active profiles CPOs report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlite_utils import Database

from ocpi221.chargingprofiles import ActiveChargingProfile, ChargingProfile
from profiles import ComplianceVerdict
from scsp.records.commands import (
    IN_FLIGHT,
    ActiveProfileRecord,
    Command,
    CommandKind,
    CommandState,
    ComplianceDetail,
    ControlUpdate,
    NotSteered,
    ProfileSource,
    SessionControl,
    SessionEnd,
)
from scsp.records.sessions import SessionKey
from scsp.store.codec import KEY_SQL, checked_json_text, json_text, key_args, key_of, moment, profile_of, unix
from scsp.store.db import Aggregate

_decode_active = msgspec.json.Decoder(ActiveChargingProfile).decode
_decode_detail = msgspec.json.Decoder(ComplianceDetail).decode
_IN_FLIGHT_SQL = "(" + ", ".join(f"'{s.value}'" for s in IN_FLIGHT) + ")"


def _in(values: Sequence[str]) -> str:
    return f"({', '.join('?' * len(values))})"


def _control(row: dict[str, Any]) -> SessionControl:
    return SessionControl(
        key=key_of(row), controllable=bool(row["controllable"]),
        reason=NotSteered(row["reason"]) if row["reason"] is not None else None,
        sent_profile=profile_of(row["sent_profile"]), sent_at=moment(row["sent_at"]),
        accepted_profile=profile_of(row["accepted_profile"]), accepted_at=moment(row["accepted_at"]),
        backoff_until=moment(row["backoff_until"]), too_often=row["too_often"], ended_at=moment(row["ended_at"]),
        ended_reason=SessionEnd(row["ended_reason"]) if row["ended_reason"] is not None else None)


def _command(row: dict[str, Any]) -> Command:
    return Command(id=row["id"], kind=CommandKind(row["kind"]), key=key_of(row), plan=row["plan"],
                   profile=profile_of(row["profile"]), state=CommandState(row["state"]), response=row["response"],
                   result=row["result"], error=row["error"], created_at=moment(row["created_at"]),
                   responded_at=moment(row["responded_at"]), timeout_at=moment(row["timeout_at"]),
                   result_at=moment(row["result_at"]), reason=row["reason"], site_id=row["site_id"])


def _active(row: dict[str, Any]) -> ActiveProfileRecord:
    return ActiveProfileRecord(
        id=row["id"], key=key_of(row), source=ProfileSource(row["source"]), received_at=moment(row["received_at"]),
        profile=_decode_active(row["doc"]), plan=row["plan"],
        verdict=ComplianceVerdict(row["verdict"]) if row["verdict"] is not None else None,
        worst_excess_w=row["worst_excess_w"], compliance=row["compliance"],
        detail=_decode_detail(row["detail"] or "{}"))


def _profile_text(profile: ChargingProfile | None) -> str | None:
    return checked_json_text(profile) if profile is not None else None


def _set_control(db: Database, key: SessionKey, columns: dict[str, Any]) -> None:
    """Write columns of a session's control record (created with its defaults when missing)."""
    db.execute(
        "INSERT INTO session_control (party, country_code, party_id, session_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING", key_args(key))
    if columns:
        # The column names come from this module only (never from input).
        assignments = ", ".join(f"{name} = ?" for name in columns)
        db.execute(f"UPDATE session_control SET {assignments} WHERE {KEY_SQL}", [*columns.values(), *key_args(key)])


def _update_columns(update: ControlUpdate) -> dict[str, Any]:
    """The session_control columns a ControlUpdate sets."""
    columns: dict[str, Any] = {}
    if update.controllable is not msgspec.UNSET:
        columns["controllable"] = int(update.controllable)
    if update.reason is not msgspec.UNSET:
        columns["reason"] = update.reason
    if update.accepted_profile is not msgspec.UNSET:
        columns["accepted_profile"] = _profile_text(update.accepted_profile)
    if update.accepted_at is not msgspec.UNSET:
        columns["accepted_at"] = unix(update.accepted_at)
    if update.backoff_until is not msgspec.UNSET:
        columns["backoff_until"] = unix(update.backoff_until)
    if update.too_often is not msgspec.UNSET:
        columns["too_often"] = update.too_often
    return columns


class CommandStore(Aggregate):
    """Commands, session control and received active profiles."""

    # -- session control ------------------------------------------------------------------------
    def control(self, key: SessionKey) -> SessionControl:
        """What we know about controlling a session (defaults when nothing yet)."""
        with self._read() as db:
            rows = list(db.query(f"SELECT * FROM session_control WHERE {KEY_SQL}", key_args(key)))
        return _control(rows[0]) if rows else SessionControl(key=key)

    def all_control(self) -> dict[SessionKey, SessionControl]:
        """Every session's control record."""
        out: dict[SessionKey, SessionControl] = {}
        with self._read() as db:
            for row in db.query("SELECT * FROM session_control"):
                try:
                    control = _control(row)
                except (msgspec.DecodeError, ValueError) as exc:  # a bad profile document or enum value
                    self._faults.unreadable_row("session_control", str(key_of(row)), exc)
                    continue
                out[control.key] = control
        return out

    def set_controllable(self, key: SessionKey, controllable: bool, reason: NotSteered | None) -> None:
        """Steer a session again, or stop steering it and say why (the operator released it, ...)."""
        with self._write() as db:
            _set_control(db, key, {"controllable": int(controllable), "reason": reason})

    def back_off(self, key: SessionKey, until: datetime) -> None:
        """Send the session no profile before `until` (its CPO failed or refused a request)."""
        with self._write() as db:
            _set_control(db, key, {"backoff_until": unix(until)})

    def end(self, key: SessionKey, reason: SessionEnd, at: datetime) -> None:
        """The CPO's evidence that a session it lists as ACTIVE is over (not planned unless updated after `at`)."""
        with self._write() as db:
            _set_control(db, key, {"ended_at": unix(at), "ended_reason": reason})

    def record_accepted(self, key: SessionKey, profile: ChargingProfile | None, at: datetime | None) -> None:
        """The profile the charge point holds now (None: none of ours), as a result or a restore told."""
        with self._write() as db:
            _set_control(db, key, {"accepted_profile": _profile_text(profile), "accepted_at": unix(at)})

    # -- commands -------------------------------------------------------------------------------
    def create(self, command: Command) -> bool:
        """Record a command before it is sent. False (nothing stored) when one of its kind is in flight."""
        key = command.key
        # A readback GET never holds up a profile (a decrease must not wait for it), and vice versa:
        # the one-in-flight rule applies to set/clear among themselves and to GETs among themselves.
        family = (CommandKind.GET,) if command.kind == CommandKind.GET else (CommandKind.SET, CommandKind.CLEAR)
        with self._write() as db:
            busy = db.execute(
                f"SELECT count(*) FROM commands WHERE {KEY_SQL} AND state IN {_IN_FLIGHT_SQL} "
                f"AND kind IN {_in(family)}", [*key_args(key), *family]).fetchone()[0]
            if busy:
                return False
            site = command.site_id
            if site is None:
                # The site of the session's Location as we know it now (the log filters by it).
                found = db.execute(
                    "SELECT upper(country_code) || '-' || upper(party_id) || '-' || location_id FROM sessions "
                    "WHERE party = ? AND country_code = ? AND party_id = ? AND id = ?", key_args(key)).fetchone()
                site = found[0] if found else None
            db.execute(
                """INSERT INTO commands (id, kind, party, country_code, party_id, session_id, plan, profile, state,
                   created_at, reason, site_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)""",
                [command.id, command.kind, *key_args(key), command.plan, _profile_text(command.profile),
                 unix(command.created_at), command.reason, site])
            if command.kind == CommandKind.SET:
                _set_control(db, key, {"sent_profile": _profile_text(command.profile),
                                       "sent_at": unix(command.created_at)})
            return True

    def in_flight(self, key: SessionKey, kinds: tuple[CommandKind, ...] = (CommandKind.SET, CommandKind.CLEAR)
                  ) -> bool:
        """Whether a command of these kinds awaits its answer or result for the session."""
        with self._read() as db:
            return bool(db.execute(
                f"SELECT count(*) FROM commands WHERE {KEY_SQL} AND state IN {_IN_FLIGHT_SQL} "
                f"AND kind IN {_in(kinds)}", [*key_args(key), *kinds]).fetchone()[0])

    def get(self, command_id: str) -> Command | None:
        """One command by id."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
            return _command(rows[0]) if rows else None

    def find(self, *, key: SessionKey | None = None, states: tuple[CommandState, ...] | None = None,
             kinds: tuple[CommandKind, ...] | None = None, limit: int = 1000) -> list[Command]:
        """Commands, newest first, optionally of one session, in some states and/or of some kinds."""
        where, args = ["1 = 1"], []
        if key is not None:
            where.append(KEY_SQL)
            args += key_args(key)
        if states:
            where.append(f"state IN {_in(states)}")
            args += list(states)
        if kinds:
            where.append(f"kind IN {_in(kinds)}")
            args += list(kinds)
        return self._newest(where, args, limit)

    def _newest(self, where: list[str], args: list[Any], limit: int) -> list[Command]:
        """The commands matching every condition of `where`, newest first."""
        with self._read() as db:
            return [_command(r) for r in db.query(
                f"SELECT * FROM commands WHERE {' AND '.join(where)} ORDER BY created_at DESC, rowid DESC LIMIT ?",
                [*args, limit])]

    def log(self, *, sites: Sequence[str] | None = None, session_id: str | None = None,
            since: datetime | None = None, kinds: Sequence[CommandKind] | None = None, limit: int = 200
            ) -> list[Command]:
        """The commands log, newest first: optionally of some sites, of a session id (any CPO), since a time.

        `sites` empty: nothing (a scope that covers no site); None: every site.
        """
        if sites is not None and not sites:
            return []
        where: list[str] = ["1 = 1"]
        args: list[Any] = []
        if sites is not None:
            where.append(f"site_id IN {_in(sites)}")
            args += list(sites)
        if session_id is not None:
            where.append("session_id = ?")
            args.append(session_id)
        if since is not None:
            where.append("created_at >= ?")
            args.append(unix(since))
        if kinds:
            where.append(f"kind IN {_in(kinds)}")
            args += list(kinds)
        return self._newest(where, args, limit)

    def record_response(self, command_id: str, *, response: str, timeout_s: int, now: datetime,
                        control: ControlUpdate | None = None) -> Command:
        """Store the CPO's synchronous ChargingProfileResponse (and what it means for the session).

        A result that arrived before this reply (the CPO may post it first) is kept: the state only
        moves on from `pending`.
        """
        with self._write() as db:
            state = CommandState.AWAITING_RESULT if response == "ACCEPTED" else CommandState.REFUSED
            db.execute(
                """UPDATE commands SET response = ?, responded_at = ?, timeout_at = ?,
                   state = CASE WHEN state = 'pending' THEN ? ELSE state END WHERE id = ?""",
                [response, unix(now), unix(now + timedelta(seconds=max(timeout_s, 0))), state, command_id])
            command = _command(next(iter(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))))
            if control is not None:
                _set_control(db, command.key, _update_columns(control))
            return command

    def record_failure(self, command_id: str, *, error: str, now: datetime) -> None:
        """The request itself failed (transport, HTTP or OCPI error)."""
        with self._write() as db:
            db.execute("UPDATE commands SET state = 'failed', error = ?, responded_at = ? WHERE id = ? "
                       "AND state = 'pending'", [error[:1000], unix(now), command_id])

    def record_result(self, command_id: str, *, result: str, now: datetime,
                      control: ControlUpdate | None = None) -> Command | None:
        """Store the asynchronous result posted to our response_url; None if the command is unknown."""
        with self._write() as db:
            rows = list(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))
            if not rows:
                return None
            db.execute("UPDATE commands SET result = ?, result_at = ?, state = 'completed' WHERE id = ?",
                       [result, unix(now), command_id])
            command = _command(next(iter(db.query("SELECT * FROM commands WHERE id = ?", [command_id]))))
            if control is not None:
                _set_control(db, command.key, _update_columns(control))
            return command

    def expire(self, *, now: datetime) -> list[Command]:
        """Commands whose `timeout` passed without a result become `unknown` (mod_charging_profiles)."""
        with self._write() as db:
            rows = [_command(r) for r in db.query(
                "SELECT * FROM commands WHERE state = 'awaiting_result' AND timeout_at <= ?", [unix(now)])]
            db.execute("UPDATE commands SET state = 'unknown' WHERE state = 'awaiting_result' AND timeout_at <= ?",
                       [unix(now)])
            return rows

    def abandon_in_flight(self) -> int:
        """At start-up: requests of a previous run that are still in flight are `unknown` (never resent)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE commands SET state = 'unknown', error = coalesce(error, 'service restarted') "
                f"WHERE state IN {_IN_FLIGHT_SQL}")
            return int(cursor.rowcount)

    # -- active profiles ------------------------------------------------------------------------
    def save_active_profile(self, record: ActiveProfileRecord) -> int:
        """Store a received ActiveChargingProfile with its compliance; returns its id."""
        with self._write() as db:
            cursor = db.execute(
                """INSERT INTO active_profiles (party, country_code, party_id, session_id, source, received_at, doc,
                   plan, verdict, worst_excess_w, compliance, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [*key_args(record.key), record.source, unix(record.received_at), checked_json_text(record.profile),
                 record.plan, record.verdict, record.worst_excess_w, record.compliance, json_text(record.detail)])
            return int(cursor.lastrowid or 0)

    def latest_active_profiles(self, keys: Sequence[SessionKey]) -> dict[SessionKey, ActiveProfileRecord]:
        """The newest received ActiveChargingProfile of each session."""
        out: dict[SessionKey, ActiveProfileRecord] = {}
        with self._read() as db:
            for key in keys:
                rows = list(db.query(
                    f"SELECT * FROM active_profiles WHERE {KEY_SQL} ORDER BY id DESC LIMIT 1", key_args(key)))
                found = self._readable_active(rows)
                if found:
                    out[key] = found[0]
        return out

    def _readable_active(self, rows: Iterable[dict[str, Any]]) -> list[ActiveProfileRecord]:
        """The rows that decode; an unreadable one is skipped, logged and counted (never a 500)."""
        out = []
        for r in rows:
            try:
                out.append(_active(r))
            except msgspec.DecodeError as exc:  # ValidationError included
                self._faults.unreadable_row("active_profiles", str(r["id"]), exc)
        return out

    def active_profiles(self, *, since: datetime | None = None, limit: int = 1000) -> list[ActiveProfileRecord]:
        """Received ActiveChargingProfiles since `since` (all without), newest first."""
        with self._read() as db:
            return self._readable_active(db.query(
                "SELECT * FROM active_profiles WHERE received_at >= ? ORDER BY id DESC LIMIT ?",
                [unix(since) if since is not None else 0, limit]))

    def active_profiles_at_site(self, site: str, *, since: datetime, until: datetime) -> list[ActiveProfileRecord]:
        """Received ActiveChargingProfiles of a site's sessions (by their Location) in [since, until], oldest first."""
        with self._read() as db:
            return self._readable_active(db.query(
                """SELECT a.* FROM active_profiles a JOIN sessions s ON s.party = a.party
                   AND s.country_code = a.country_code AND s.party_id = a.party_id AND s.id = a.session_id
                   WHERE upper(s.country_code) || '-' || upper(s.party_id) || '-' || s.location_id = ?
                   AND a.received_at >= ? AND a.received_at <= ? ORDER BY a.received_at, a.id""",
                [site, unix(since), unix(until)]))
