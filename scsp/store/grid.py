"""What the JSON API (`/api/v1`) receives: API keys, site grid settings, signals, preferences.

One connection per call, one `BEGIN IMMEDIATE` transaction per write, so a request is stored whole or
not at all. `site_settings`, `signals` and `preferences` are read by the planner every cycle for
every site: each is one indexed query.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from scsp.records.grid import ApiKey, ApiRole, ArrivalReserve, SignalKind, SignalPoint, SiteSettings
from scsp.records.sessions import Preferences
from scsp.store.codec import moment, require_finite, unix
from scsp.store.db import Aggregate, hash_token


def hash_api_key(key: str) -> str:
    """SHA-256 of an API key (hex): the same hash as for tokens (`scsp.store.db.hash_token`)."""
    return hash_token(key)


_decode_sites = msgspec.json.Decoder(tuple[str, ...]).decode


_decode_phases = msgspec.json.Decoder(dict[str, str]).decode


def _api_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        id=row["id"],
        role=ApiRole(row["role"]),
        sites=_decode_sites(row["sites"]),
        label=row["label"],
        created_at=moment(row["created_at"]),
        revoked_at=moment(row["revoked_at"]),
    )


def _signal(row: dict[str, Any]) -> SignalPoint:
    return SignalPoint(
        kind=SignalKind(row["kind"]),
        source=row["source"],
        start=moment(row["start_ts"]),
        end=moment(row["end_ts"]),
        value=row["value"],
        expires_at=moment(row["expires_ts"]),
        submitted_at=moment(row["submitted_at"]),
    )


def _same_points(stored: list[SignalPoint], new: list[SignalPoint]) -> bool:
    """True when `stored` holds exactly the ranges, values and expiry of `new` (submission time aside)."""

    def shape(p: SignalPoint) -> tuple[datetime, datetime, float, datetime]:
        return p.start, p.end, p.value, p.expires_at

    return [shape(p) for p in stored] == [shape(p) for p in new]


_SIGNAL_COLUMNS = "kind, source, start_ts, end_ts, value, expires_ts, submitted_at"


# The planner's reads, run every cycle for every site: each one is an index lookup (a test checks the
# query plans). Signals narrow on the (site_id, kind, end_ts) index; the rest are primary-key lookups.
SITE_SETTINGS_SQL = "SELECT * FROM site_settings WHERE site_id = ?"


SIGNALS_SQL = f"""SELECT {_SIGNAL_COLUMNS} FROM signals
    WHERE site_id = ? AND kind = ? AND end_ts > ? AND start_ts < ? AND expires_ts > ?
    ORDER BY start_ts, end_ts, submitted_at, source, id"""


PREFERENCES_SQL = "SELECT * FROM preferences WHERE country_code = ? AND party_id = ? AND session_id = ?"



class GridStore(Aggregate):
    """API keys, site grid settings, signals and preferences."""

    def create_api_key(
        self, key: str, *, role: ApiRole, sites: tuple[str, ...], label: str | None, now: datetime
    ) -> ApiKey:
        """Store a new key (hashed) with its role and site scope."""
        with self._write() as db:
            cursor = db.execute(
                "INSERT INTO api_keys (hash, role, sites, label, created_at) VALUES (?, ?, ?, ?, ?)",
                [hash_api_key(key), role.value, msgspec.json.encode(sorted(set(sites))).decode(), label, unix(now)],
            )
            rows = list(db.query("SELECT * FROM api_keys WHERE id = ?", [cursor.lastrowid]))
            return _api_key(rows[0])

    def api_key(self, key: str) -> ApiKey | None:
        """The live (not revoked) key matching `key`, if any."""
        with self._read() as db:
            rows = list(
                db.query("SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL", [hash_api_key(key)])
            )
            return _api_key(rows[0]) if rows else None

    def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._read() as db:
            return [_api_key(r) for r in db.query("SELECT * FROM api_keys ORDER BY id")]

    def revoke_api_key(self, key_id: int, *, now: datetime) -> ApiKey | None:
        """Revoke a key by id (a second revocation keeps the first time); None when there is no such key."""
        with self._write() as db:
            db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [unix(now), key_id]
            )
            rows = list(db.query("SELECT * FROM api_keys WHERE id = ?", [key_id]))
            return _api_key(rows[0]) if rows else None

    def settings(self, site_id: str) -> SiteSettings | None:
        """The grid connection of a site as set through the API; None when nobody set it."""
        with self._read() as db:
            rows = list(db.query(SITE_SETTINGS_SQL, [site_id]))
        if not rows:
            return None
        r = rows[0]
        return SiteSettings(
            site_id=r["site_id"],
            import_limit_w=r["import_limit_w"],
            phase_limit_a=r["phase_limit_a"],
            voltage_v=r["voltage_v"],
            failsafe_w=r["failsafe_w"],
            phase_assignment=_decode_phases(r["phase_assignment"]),
            updated_at=moment(r["updated_at"]),
            arrival_reserve=ArrivalReserve(r["arrival_reserve"]) if r["arrival_reserve"] is not None else None,
            arrival_reserve_w=r["arrival_reserve_w"],
        )

    def put_settings(self, settings: SiteSettings) -> None:
        """Replace the whole grid settings of a site."""
        require_finite(import_limit_w=settings.import_limit_w, phase_limit_a=settings.phase_limit_a,
                       voltage_v=settings.voltage_v, failsafe_w=settings.failsafe_w,
                       arrival_reserve_w=settings.arrival_reserve_w)
        with self._write() as db:
            db.execute(
                """INSERT INTO site_settings (site_id, import_limit_w, phase_limit_a, voltage_v, failsafe_w,
                   phase_assignment, updated_at, arrival_reserve, arrival_reserve_w)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (site_id) DO UPDATE SET import_limit_w = excluded.import_limit_w,
                   phase_limit_a = excluded.phase_limit_a, voltage_v = excluded.voltage_v,
                   failsafe_w = excluded.failsafe_w, phase_assignment = excluded.phase_assignment,
                   updated_at = excluded.updated_at, arrival_reserve = excluded.arrival_reserve,
                   arrival_reserve_w = excluded.arrival_reserve_w""",
                [
                    settings.site_id,
                    settings.import_limit_w,
                    settings.phase_limit_a,
                    settings.voltage_v,
                    settings.failsafe_w,
                    msgspec.json.encode(settings.phase_assignment).decode(),
                    unix(settings.updated_at),
                    settings.arrival_reserve,
                    settings.arrival_reserve_w,
                ],
            )

    def signals(
        self, site_id: str, kind: SignalKind, *, start: datetime, end: datetime, now: datetime
    ) -> list[SignalPoint]:
        """Every unexpired point of `kind` overlapping [start, end), all sources, ordered by start."""
        with self._read() as db:
            # The (site_id, kind, end_ts) index narrows to points ending after start_ts.
            rows = db.query(SIGNALS_SQL, [site_id, kind, unix(start), unix(end), unix(now)])
            return [_signal(r) for r in rows]

    def site_signals(self, site_id: str, kind: SignalKind | None, *, now: datetime) -> list[SignalPoint]:
        """Every unexpired point of a site (of one kind, or all), ordered by kind, start and source."""
        sql, args = (
            "SELECT " + _SIGNAL_COLUMNS + " FROM signals WHERE site_id = ? AND expires_ts > ?",
            [site_id, unix(now)],
        )
        if kind is not None:
            sql, args = sql + " AND kind = ?", [*args, kind]
        with self._read() as db:
            return [_signal(r) for r in db.query(sql + " ORDER BY kind, start_ts, source, id", args)]

    def replace_signals(
        self, site_id: str, points: list[SignalPoint], *, now: datetime
    ) -> tuple[bool, list[SignalPoint]]:
        """Store one submission: it replaces the same source and kind over the range it covers.

        `points` share kind, source, expiry and submission time, are ordered and do not overlap. The
        covered range is [first start, last end): stored points of the same source inside it are
        removed, ones reaching into it are trimmed to the part outside. Other sources are untouched.

        Returns:
            (changed, points stored for the submission). A submission identical to what is stored
            (same ranges, values and expiry) changes nothing and returns the stored points, with
            their original submission time: a replay is idempotent.
        """
        for i, point in enumerate(points):
            require_finite(**{f"points[{i}].value": point.value})
        kind, source = points[0].kind, points[0].source
        covered_start, covered_end = points[0].start, points[-1].end
        overlapping = f"""SELECT id, {_SIGNAL_COLUMNS} FROM signals
            WHERE site_id = ? AND kind = ? AND end_ts > ? AND start_ts < ? AND source = ? AND expires_ts > ?
            ORDER BY start_ts"""
        with self._write() as db:
            rows = list(db.query(overlapping, [site_id, kind, unix(covered_start), unix(covered_end), source,
                                               unix(now)]))
            current = [_signal(r) for r in rows]
            if _same_points(current, points):
                return False, current
            # Expired points are never read again: drop them while we hold the write lock anyway.
            db.execute(
                "DELETE FROM signals WHERE site_id = ? AND kind = ? AND expires_ts <= ?",
                [site_id, kind, unix(now)],
            )
            kept: list[SignalPoint] = []
            for old in current:
                if old.start < covered_start:
                    kept.append(msgspec.structs.replace(old, end=covered_start))
                if old.end > covered_end:
                    kept.append(msgspec.structs.replace(old, start=covered_end))
            db.execute(
                f"DELETE FROM signals WHERE id IN ({', '.join('?' * len(rows))})", [r["id"] for r in rows]
            )
            for p in [*kept, *points]:
                db.execute(
                    f"INSERT INTO signals (site_id, {_SIGNAL_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [site_id, p.kind, p.source, unix(p.start), unix(p.end), p.value, unix(p.expires_at),
                     unix(p.submitted_at)],
                )
            return True, points

    def preferences(self, country_code: str, party_id: str, session_id: str) -> Preferences | None:
        """A session's preferences as set through the API, if any."""
        with self._read() as db:
            rows = list(
                db.query(
                    PREFERENCES_SQL,
                    [country_code.upper(), party_id.upper(), session_id],
                )
            )
        if not rows:
            return None
        r = rows[0]
        return Preferences(
            country_code=r["country_code"],
            party_id=r["party_id"],
            session_id=r["session_id"],
            profile_type=r["profile_type"],
            departure=moment(r["departure_ts"]),
            energy_kwh=r["energy_kwh"],
            discharge_allowed=bool(r["discharge_allowed"]),
            source=r["source"],
            updated_at=moment(r["updated_at"]),
        )

    def put_preferences(self, prefs: Preferences) -> None:
        """Replace a session's preferences (the session need not be known yet)."""
        with self._write() as db:
            db.execute(
                """INSERT INTO preferences (country_code, party_id, session_id, profile_type, departure_ts,
                   energy_kwh, discharge_allowed, source, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (country_code, party_id, session_id) DO UPDATE SET
                   profile_type = excluded.profile_type, departure_ts = excluded.departure_ts,
                   energy_kwh = excluded.energy_kwh, discharge_allowed = excluded.discharge_allowed,
                   source = excluded.source, updated_at = excluded.updated_at""",
                [
                    prefs.country_code.upper(),
                    prefs.party_id.upper(),
                    prefs.session_id,
                    prefs.profile_type,
                    unix(prefs.departure),
                    prefs.energy_kwh,
                    int(prefs.discharge_allowed),
                    prefs.source,
                    unix(prefs.updated_at),
                ],
            )
