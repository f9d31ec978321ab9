"""Plans: each site's plan per cycle, with one row per session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlite_utils import Database

from profiles import ElectricalFacts
from scsp.records.commands import NotSteered
from scsp.records.plans import PlanDetail, PlanSession, StoredPlan
from scsp.records.sessions import SessionKey
from scsp.store.codec import KEY_SQL, decode_floats, json_text, key_args, key_of, moment, profile_of, unix
from scsp.store.db import Aggregate

_decode_detail = msgspec.json.Decoder(PlanDetail).decode
_decode_facts = msgspec.json.Decoder(ElectricalFacts).decode


def _session_row(r: dict[str, Any]) -> PlanSession:
    return PlanSession(
        key=key_of(r), controllable=bool(r["controllable"]),
        reason=NotSteered(r["reason"]) if r["reason"] is not None else None,
        facts=_decode_facts(r["facts"]), max_w=r["max_w"], evse_max_w=r["evse_max_w"], failsafe_w=r["failsafe_w"],
        power_w=decode_floats(r["power_w"]), energy_kwh=r["energy_kwh"], shortfall_kwh=r["shortfall_kwh"],
        profile=profile_of(r["profile"]))



# The ids of every site that exists (`PlanStore.site_ids`).
_SITE_IDS = ("SELECT country_code || '-' || party_id || '-' || id AS site_id FROM locations "
             "UNION SELECT country_code || '-' || party_id || '-' || location_id FROM sessions "
             "WHERE status = 'ACTIVE' UNION SELECT site_id FROM sites")

class PlanStore(Aggregate):
    """Plans and their session rows."""

    def save(self, plan: StoredPlan) -> StoredPlan:
        """Persist one site's plan with its session rows; returns it with its id."""
        with self._write() as db:
            cursor = db.execute(
                """INSERT INTO plans (site_id, created_at, start_ts, slot_s, n_slots, status, path, limit_w,
                   site_power_w, fixed_load_w, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [plan.site_id, unix(plan.created_at), unix(plan.start), plan.slot_s, plan.n_slots, plan.status,
                 plan.path, json_text(plan.limit_w), json_text(plan.site_power_w), json_text(plan.fixed_load_w),
                 json_text(plan.detail)])
            plan_id = int(cursor.lastrowid or 0)
            for row in plan.sessions:
                db.execute(
                    """INSERT INTO plan_sessions (plan, party, country_code, party_id, session_id, controllable,
                       power_w, energy_kwh, shortfall_kwh, profile, reason, facts, max_w, evse_max_w, failsafe_w)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [plan_id, *key_args(row.key), int(row.controllable), json_text(row.power_w), row.energy_kwh,
                     row.shortfall_kwh, json_text(row.profile) if row.profile is not None else None, row.reason,
                     json_text(row.facts), row.max_w, row.evse_max_w, row.failsafe_w])
            return msgspec.structs.replace(plan, id=plan_id)

    @staticmethod
    def _plan(db: Database, row: dict[str, Any], with_sessions: bool = True) -> StoredPlan:
        sessions = []
        if with_sessions:
            sessions = [_session_row(r) for r in db.query(
                "SELECT * FROM plan_sessions WHERE plan = ? ORDER BY session_id", [row["id"]])]
        return StoredPlan(id=row["id"], site_id=row["site_id"], created_at=moment(row["created_at"]),
                          start=moment(row["start_ts"]), slot_s=row["slot_s"], n_slots=row["n_slots"],
                          status=row["status"], path=row["path"], limit_w=decode_floats(row["limit_w"]),
                          site_power_w=decode_floats(row["site_power_w"]),
                          fixed_load_w=decode_floats(row["fixed_load_w"]), detail=_decode_detail(row["detail"]),
                          sessions=sessions)

    def latest(self, site_id: str) -> StoredPlan | None:
        """The newest plan of a site."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM plans WHERE site_id = ? ORDER BY id DESC LIMIT 1", [site_id]))
            return self._plan(db, rows[0]) if rows else None

    def latest_all(self) -> dict[str, StoredPlan]:
        """Each site's newest plan, without session rows."""
        with self._read() as db:
            rows = db.query("SELECT * FROM plans WHERE id IN (SELECT max(id) FROM plans GROUP BY site_id)")
            return {r["site_id"]: self._plan(db, r, with_sessions=False) for r in rows}

    def site_ids(self) -> set[str]:
        """Every site that exists: one a CPO's Location or active Session names, or an operator declared."""
        with self._read() as db:
            return {r["site_id"] for r in db.query(_SITE_IDS)}

    def site_exists(self, site_id: str) -> bool:
        """Whether one site exists (`site_ids`), by its own rows only."""
        with self._read() as db:
            if db.execute("SELECT 1 FROM sites WHERE site_id = ?", [site_id]).fetchone():
                return True
            parts = site_id.split("-", 2)
            if len(parts) != 3:
                return False
            cc, pid, location = parts
            return db.execute(
                "SELECT 1 FROM locations WHERE country_code = ? AND party_id = ? AND id = ? "
                "UNION ALL SELECT 1 FROM sessions WHERE status = 'ACTIVE' AND location_id = ? "
                "AND country_code = ? AND party_id = ? LIMIT 1", [cc, pid, location, location, cc, pid]
            ).fetchone() is not None

    def latest_id(self, site_id: str) -> int | None:
        """The id of a site's newest plan (cheap: no plan is read)."""
        with self._read() as db:
            row = db.execute("SELECT max(id) FROM plans WHERE site_id = ?", [site_id]).fetchone()
            return int(row[0]) if row and row[0] is not None else None

    def declare_site(self, site_id: str, *, now: datetime) -> bool:
        """An operator declares a site before any CPO names it; True when it did not exist before.

        Decided in the write transaction itself, so of concurrent declarations one alone is new.
        """
        with self._write() as db:
            exists = db.execute(f"SELECT 1 FROM ({_SITE_IDS}) WHERE site_id = ?", [site_id]).fetchone()
            db.execute("INSERT INTO sites (site_id, declared_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                       [site_id, unix(now)])
            return exists is None

    def get(self, plan_id: int) -> StoredPlan | None:
        """One plan by id."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM plans WHERE id = ?", [plan_id]))
            return self._plan(db, rows[0]) if rows else None

    def history(self, site_id: str, *, since: datetime, limit: int = 500) -> list[StoredPlan]:
        """A site's plans created since `since`, oldest first, without session rows."""
        with self._read() as db:
            rows = list(db.query("SELECT * FROM plans WHERE site_id = ? AND created_at >= ? ORDER BY id DESC LIMIT ?",
                                 [site_id, unix(since), limit]))
            return [self._plan(db, r, with_sessions=False) for r in reversed(rows)]

    def in_force(self, site_id: str, *, since: datetime, until: datetime) -> list[StoredPlan]:
        """The plans of a site in force during [since, until], oldest first, without session rows.

        Those created in the window and the last one created before it (in force when it began).
        """
        with self._read() as db:
            rows = list(db.query(
                """SELECT * FROM plans WHERE site_id = ? AND created_at <= ? AND (created_at >= ? OR id = (
                       SELECT max(id) FROM plans WHERE site_id = ? AND created_at < ?)) ORDER BY id""",
                [site_id, unix(until), unix(since), site_id, unix(since)]))
            return [self._plan(db, r, with_sessions=False) for r in rows]

    def row(self, key: SessionKey, plan_id: int | None = None) -> tuple[StoredPlan, PlanSession] | None:
        """A plan containing this session (that plan, else the newest) and the session's row in it."""
        with self._read() as db:
            rows = list(db.query(
                f"SELECT plan FROM plan_sessions WHERE {KEY_SQL} AND (? IS NULL OR plan = ?) "
                "ORDER BY plan DESC LIMIT 1",
                [*key_args(key), plan_id, plan_id]))
            if not rows and plan_id is not None:
                rows = list(db.query(
                    f"SELECT plan FROM plan_sessions WHERE {KEY_SQL} ORDER BY plan DESC LIMIT 1", key_args(key)))
            if not rows:
                return None
            plan_rows = list(db.query("SELECT * FROM plans WHERE id = ?", [rows[0]["plan"]]))
            plan = self._plan(db, plan_rows[0])
            row = plan.row(key)
            assert row is not None  # the plan was found by this row
            return plan, row

    def prune(self, *, before: datetime) -> int:
        """Delete plans created before `before` except each site's newest; returns how many."""
        with self._write() as db:
            keep = "SELECT max(id) FROM plans GROUP BY site_id"
            db.execute(f"DELETE FROM plan_sessions WHERE plan IN (SELECT id FROM plans WHERE created_at < ? "
                       f"AND id NOT IN ({keep}))", [unix(before)])
            cursor = db.execute(f"DELETE FROM plans WHERE created_at < ? AND id NOT IN ({keep})", [unix(before)])
            return int(cursor.rowcount)
