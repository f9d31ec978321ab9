"""Versioned schema migrations, applied at start-up (`Store.migrate`, `PartyStore` alone: `migrate_parties`).

Every table is STRICT; columns filtered by time are INTEGER unix seconds. A migration is never
edited once released: schema changes are new functions appended below.
"""

from __future__ import annotations

import json
import re

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from scsp.store.db import Db

migrations = Migrations("scsp")
# The parties aggregate alone (the CPO simulator keeps only its registrations). The same set name
# and migration, so a file migrated by either records m001 once.
platform_migrations = Migrations("scsp")


@platform_migrations()
@migrations()
def m001_parties_and_tokens(db: Database) -> None:
    """Connected platforms and the tokens we issued them (hashed)."""
    db.execute(
        """
        CREATE TABLE parties (
            id INTEGER PRIMARY KEY,
            role TEXT NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            status TEXT NOT NULL,
            business_name TEXT,
            roles TEXT NOT NULL DEFAULT '[]',
            versions_url TEXT,
            version TEXT,
            version_url TEXT,
            endpoints TEXT NOT NULL DEFAULT '[]',
            token_out TEXT,
            token_base64 INTEGER NOT NULL DEFAULT 1,
            connection_status TEXT NOT NULL DEFAULT 'CONNECTED',
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) STRICT
        """
    )
    db.execute("CREATE INDEX parties_identity ON parties (country_code, party_id, status)")
    db.execute(
        """
        CREATE TABLE tokens (
            hash TEXT PRIMARY KEY,
            party INTEGER NOT NULL REFERENCES parties (id),
            kind TEXT NOT NULL CHECK (kind IN ('A', 'C')),
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        ) STRICT
        """
    )
    db.execute("CREATE INDEX tokens_party ON tokens (party)")


@migrations()
def m002_charging(db: Database) -> None:
    """Locations, sessions, preferences, grid settings and signals, plans, commands, readback, API keys."""
    statements = [
        # A Location as pushed/pulled (the whole JSON document), keyed per connection and owner.
        """CREATE TABLE locations (
            party INTEGER NOT NULL REFERENCES parties (id),
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            time_zone TEXT,
            last_updated INTEGER NOT NULL,
            PRIMARY KEY (party, country_code, party_id, id)
        ) STRICT""",
        # Derived from the location document on every write (same transaction): the EVSE facts
        # the planner needs, without parsing documents each cycle.
        """CREATE TABLE evses (
            party INTEGER NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            location_id TEXT NOT NULL,
            uid TEXT NOT NULL,
            status TEXT NOT NULL,
            capable INTEGER NOT NULL,
            power_type TEXT NOT NULL,
            phases INTEGER NOT NULL,
            voltage_v REAL NOT NULL,
            max_amperage_a REAL NOT NULL,
            max_power_w REAL NOT NULL,
            PRIMARY KEY (party, country_code, party_id, location_id, uid)
        ) STRICT""",
        """CREATE TABLE sessions (
            party INTEGER NOT NULL REFERENCES parties (id),
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            status TEXT NOT NULL,
            location_id TEXT NOT NULL,
            evse_uid TEXT NOT NULL,
            connector_id TEXT NOT NULL,
            kwh REAL NOT NULL,
            start_ts INTEGER NOT NULL,
            end_ts INTEGER,
            last_updated INTEGER NOT NULL,
            received_at INTEGER NOT NULL,
            PRIMARY KEY (party, country_code, party_id, id)
        ) STRICT""",
        "CREATE INDEX sessions_status ON sessions (status, location_id)",
        "CREATE INDEX sessions_updated ON sessions (last_updated)",
        # What we know about controlling a session: last profile sent/accepted, backoff, control.
        """CREATE TABLE session_control (
            party INTEGER NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            controllable INTEGER NOT NULL DEFAULT 1,
            reason TEXT,
            sent_profile TEXT,
            sent_at INTEGER,
            accepted_profile TEXT,
            accepted_at INTEGER,
            backoff_until INTEGER,
            too_often INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (party, country_code, party_id, session_id)
        ) STRICT""",
        """CREATE TABLE preferences (
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            profile_type TEXT NOT NULL,
            departure_ts INTEGER,
            energy_kwh REAL,
            discharge_allowed INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (country_code, party_id, session_id)
        ) STRICT""",
        """CREATE TABLE site_settings (
            site_id TEXT PRIMARY KEY,
            import_limit_w REAL,
            phase_limit_a REAL,
            voltage_v REAL,
            failsafe_w REAL,
            phase_assignment TEXT NOT NULL DEFAULT '{}',
            updated_at INTEGER NOT NULL
        ) STRICT""",
        """CREATE TABLE signals (
            id INTEGER PRIMARY KEY,
            site_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('import_limit', 'price', 'carbon')),
            source TEXT NOT NULL,
            start_ts INTEGER NOT NULL,
            end_ts INTEGER NOT NULL,
            value REAL NOT NULL,
            expires_ts INTEGER NOT NULL,
            submitted_at INTEGER NOT NULL,
            CHECK (end_ts > start_ts)
        ) STRICT""",
        "CREATE INDEX signals_site ON signals (site_id, kind, end_ts)",
        """CREATE TABLE plans (
            id INTEGER PRIMARY KEY,
            site_id TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            start_ts INTEGER NOT NULL,
            slot_s INTEGER NOT NULL,
            n_slots INTEGER NOT NULL,
            status TEXT NOT NULL,
            path TEXT NOT NULL,
            limit_w TEXT NOT NULL,
            site_power_w TEXT NOT NULL,
            fixed_load_w TEXT NOT NULL,
            detail TEXT NOT NULL
        ) STRICT""",
        "CREATE INDEX plans_site ON plans (site_id, created_at)",
        """CREATE TABLE plan_sessions (
            plan INTEGER NOT NULL REFERENCES plans (id) ON DELETE CASCADE,
            party INTEGER NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            controllable INTEGER NOT NULL,
            power_w TEXT NOT NULL,
            energy_kwh REAL NOT NULL,
            shortfall_kwh REAL NOT NULL,
            profile TEXT,
            PRIMARY KEY (plan, party, country_code, party_id, session_id)
        ) STRICT""",
        # Every ChargingProfiles request we made; recorded before it is sent.
        """CREATE TABLE commands (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('set', 'get', 'clear')),
            party INTEGER NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            plan INTEGER,
            profile TEXT,
            state TEXT NOT NULL,
            response TEXT,
            result TEXT,
            error TEXT,
            created_at INTEGER NOT NULL,
            responded_at INTEGER,
            timeout_at INTEGER,
            result_at INTEGER
        ) STRICT""",
        "CREATE INDEX commands_session ON commands (party, country_code, party_id, session_id, created_at)",
        "CREATE INDEX commands_state ON commands (state, timeout_at)",
        """CREATE TABLE active_profiles (
            id INTEGER PRIMARY KEY,
            party INTEGER NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            source TEXT NOT NULL,
            received_at INTEGER NOT NULL,
            doc TEXT NOT NULL,
            plan INTEGER,
            verdict TEXT,
            worst_excess_w REAL,
            compliance REAL,
            detail TEXT
        ) STRICT""",
        "CREATE INDEX active_profiles_session ON active_profiles (party, country_code, party_id, session_id, id)",
        """CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL CHECK (role IN ('aggregator', 'dso', 'admin')),
            sites TEXT NOT NULL DEFAULT '[]',
            label TEXT,
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        ) STRICT""",
        # Per party: when we last pulled, whether it is reachable, whether it needs a resync.
        """CREATE TABLE sync_state (
            party INTEGER PRIMARY KEY REFERENCES parties (id),
            sessions_pulled_at INTEGER,
            locations_pulled_at INTEGER,
            unreachable_since INTEGER,
            needs_resync INTEGER NOT NULL DEFAULT 1
        ) STRICT""",
        # HubClientInfo: what a Hub reports about the parties behind it.
        """CREATE TABLE client_info (
            via INTEGER NOT NULL REFERENCES parties (id),
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            role TEXT NOT NULL,
            status TEXT NOT NULL,
            last_updated INTEGER NOT NULL,
            PRIMARY KEY (via, country_code, party_id, role)
        ) STRICT""",
    ]
    for statement in statements:
        db.execute(statement)


@migrations()
def m003_session_lookup(db: Database) -> None:
    """Find sessions by the CPO's ids alone (preferences arrive keyed by them, without the connection)."""
    db.execute("CREATE INDEX sessions_owner_id ON sessions (country_code, party_id, id)")


@migrations()
def m004_typed_plan_sessions(db: Database) -> None:
    """Each plan row keeps its session's facts in columns of its own, not in the plan's detail document.

    Plans stored before kept them in `plans.detail` under "sessions" (facts by session key text) and
    "reasons"; they move to the rows. Rows of plans older still, which recorded only `max_w`, take it
    as their EVSE maximum, 3 phases at 230 V AC: what dispatch and compliance assumed for them.
    """
    for column, kind in (("reason", "TEXT"), ("facts", "TEXT"), ("max_w", "REAL"), ("evse_max_w", "REAL"),
                         ("failsafe_w", "REAL")):
        db.execute(f"ALTER TABLE plan_sessions ADD COLUMN {column} {kind}")
    plans = list(db.query("SELECT id, detail FROM plans"))
    for plan in plans:
        detail = json.loads(plan["detail"])
        facts = detail.pop("sessions", {}) or {}
        reasons = detail.pop("reasons", {}) or {}
        for row in list(db.query("SELECT party, country_code, party_id, session_id FROM plan_sessions WHERE plan = ?",
                                 [plan["id"]])):
            text = f"{row['party']}/{row['country_code']}/{row['party_id']}/{row['session_id']}"
            info = facts.get(text, {})
            evse_max_w = float(info.get("evse_max_w", info.get("max_w", 1e9)))
            phases = int(info.get("phases", 3))
            electrical = {"phases": phases if phases in (1, 2, 3) else 3, "dc": bool(info.get("dc", False)),
                          "voltage_v": float(info.get("voltage_v", 230.0)), "max_electric_power_w": evse_max_w}
            db.execute(
                "UPDATE plan_sessions SET reason = ?, facts = ?, max_w = ?, evse_max_w = ?, failsafe_w = ? "
                "WHERE plan = ? AND party = ? AND country_code = ? AND party_id = ? AND session_id = ?",
                [reasons.get(text), json.dumps(electrical), float(info.get("max_w", evse_max_w)), evse_max_w,
                 info.get("failsafe_w"), plan["id"], row["party"], row["country_code"], row["party_id"],
                 row["session_id"]])
        detail.setdefault("failsafe_w", 0.0)
        db.execute("UPDATE plans SET detail = ? WHERE id = ?", [json.dumps(detail), plan["id"]])


@migrations()
def m005_evidence(db: Database) -> None:
    """What the planner needs to trust evidence over memory, and sites an operator declares.

    - evses.last_updated: when the CPO last changed the EVSE (its status counts against a session
      only when it is newer than the session's start);
    - sessions.kwh_changed_at: when the CPO-reported energy last grew (an idle session is planned
      at what it draws); existing rows start from when they were received;
    - session_control.ended_at / ended_reason: the CPO said it does not know the session
      (UNKNOWN_SESSION), or left it out of a complete pull: not planned unless it is updated later;
    - sync_state.refused_since: the CPO refuses the token we hold (401 on a resync);
    - sites: sites an operator declared before any CPO named them.
    """
    db.execute("ALTER TABLE evses ADD COLUMN last_updated INTEGER")
    db.execute("ALTER TABLE sessions ADD COLUMN kwh_changed_at INTEGER")
    db.execute("UPDATE sessions SET kwh_changed_at = received_at")
    db.execute("ALTER TABLE session_control ADD COLUMN ended_at INTEGER")
    db.execute("ALTER TABLE session_control ADD COLUMN ended_reason TEXT")
    db.execute("ALTER TABLE sync_state ADD COLUMN refused_since INTEGER")
    db.execute("CREATE TABLE sites (site_id TEXT PRIMARY KEY, declared_at INTEGER NOT NULL) STRICT")


@migrations()
def m006_arrival_reserve(db: Database) -> None:
    """A site's arrival reserve: what its plan keeps free for EVs before their first profile."""
    db.execute("ALTER TABLE site_settings ADD COLUMN arrival_reserve TEXT")
    db.execute("ALTER TABLE site_settings ADD COLUMN arrival_reserve_w REAL")


# The CiString ids that key rows (types.asciidoc "CiString": case-insensitive string), by table.
CISTRING_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "locations": ("id",),
    "evses": ("location_id", "uid"),
    "sessions": ("id", "location_id", "evse_uid", "connector_id"),
    "session_control": ("session_id",),
    "preferences": ("session_id",),
    "plan_sessions": ("session_id",),
    "commands": ("session_id",),
    "active_profiles": ("session_id",),
}


@migrations()
def m007_cistring_nocase_keys(db: Database) -> None:
    """CiString ids compare case-insensitively where they are keys (`…/case-1` and `…/CASE-1` are one).

    types.asciidoc: a CiString is "case-insensitive"; values are stored as received. SQLite cannot
    change a column's collation in place, so each table is rebuilt with `COLLATE NOCASE` on its id
    columns (primary keys, upserts, lookups and indexes then all ignore case). Rows that differed
    only in case become one: the most recently written (highest rowid) stays.
    """
    for table, columns in CISTRING_KEY_COLUMNS.items():
        sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()[0]
        indexes = [r[0] for r in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", [table])]
        for column in columns:
            sql, n = re.subn(rf"(\b{column} TEXT NOT NULL)(?! COLLATE)", r"\1 COLLATE NOCASE", sql)
            assert n == 1, (table, column)
        sql = re.sub(rf"^CREATE TABLE {table}\b", f"CREATE TABLE {table}_nocase", sql)
        db.execute(sql)
        names = ", ".join(r[1] for r in db.execute(f"PRAGMA table_info({table})"))
        db.execute(f"INSERT OR REPLACE INTO {table}_nocase ({names}) SELECT {names} FROM {table} ORDER BY rowid")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_nocase RENAME TO {table}")
        for index in indexes:
            db.execute(index)


@platform_migrations()
@migrations()
def m008_bound_identities(db: Database) -> None:
    """The identities (`CC-PID`) each connection may act for: a grant, not a claim.

    A peer's CredentialsRoles say what it would like to push as; the identities column says what
    it was invited or registered with, or what the operator added (`scsp parties allow`). Existing
    connections keep their primary identity and every role no earlier connection already holds.
    """
    db.execute("ALTER TABLE parties ADD COLUMN identities TEXT NOT NULL DEFAULT '[]'")
    held: set[str] = set()
    rows = list(db.query("SELECT id, country_code, party_id, status, roles FROM parties ORDER BY id"))
    for row in rows:
        if row["status"] != "UNREGISTERED":
            held.add(f"{row['country_code']}-{row['party_id']}")
    for row in rows:
        primary = f"{row['country_code']}-{row['party_id']}"
        granted: list[str] = []  # besides the primary identity, which every connection holds
        if row["status"] == "REGISTERED":
            for role in json.loads(row["roles"] or "[]"):
                handle = f"{str(role.get('country_code', '')).upper()}-{str(role.get('party_id', '')).upper()}"
                if handle != primary and handle not in held and handle not in granted:
                    granted.append(handle)
                    held.add(handle)
        db.execute("UPDATE parties SET identities = ? WHERE id = ?", [json.dumps(granted), row["id"]])


@migrations()
def m009_site_owners(db: Database) -> None:
    """Which connection a site belongs to: the first that pushed (or served) its Location or a Session.

    Two connections never meet inside one site; existing sites go to the connection that told us
    of them first.
    """
    db.execute("""CREATE TABLE site_owners (
        site_id TEXT PRIMARY KEY,
        party INTEGER NOT NULL REFERENCES parties (id),
        claimed_at INTEGER NOT NULL
    ) STRICT""")
    db.execute("CREATE INDEX site_owners_party ON site_owners (party)")
    db.execute("""INSERT OR IGNORE INTO site_owners (site_id, party, claimed_at)
        SELECT country_code || '-' || party_id || '-' || id, party, last_updated FROM locations ORDER BY rowid""")
    db.execute("""INSERT OR IGNORE INTO site_owners (site_id, party, claimed_at)
        SELECT country_code || '-' || party_id || '-' || location_id, party, received_at FROM sessions
        ORDER BY received_at, rowid""")


@migrations()
def m010_command_log(db: Database) -> None:
    """The commands log: why each ChargingProfiles request was sent and the site it was for.

    `site_id` is filled for stored commands from their session's Location (NULL when unknown), so
    the log filters by site without a join on sessions that may have been pruned since.
    """
    db.execute("ALTER TABLE commands ADD COLUMN reason TEXT")
    db.execute("ALTER TABLE commands ADD COLUMN site_id TEXT")
    db.execute(
        """UPDATE commands SET site_id = (
               SELECT upper(s.country_code) || '-' || upper(s.party_id) || '-' || s.location_id FROM sessions s
               WHERE s.party = commands.party AND s.country_code = commands.country_code
               AND s.party_id = commands.party_id AND s.id = commands.session_id)""")
    db.execute("CREATE INDEX commands_site ON commands (site_id, created_at)")
    db.execute("CREATE INDEX commands_created ON commands (created_at)")


@migrations()
def m011_session_energy(db: Database) -> None:
    """What each session's energy was when: the delivered power of the past, from the CPO's own `kwh`.

    One row each time a session's reported energy changes (and when it is first seen), at the
    CPO's `last_updated` of that report. Sessions stored before start with their current energy.
    Also an index of received ActiveChargingProfiles by time, for the history's window.
    """
    db.execute(
        """CREATE TABLE session_energy (
            party INTEGER NOT NULL,
            country_code TEXT NOT NULL,
            party_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            site_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            kwh REAL NOT NULL
        ) STRICT""")
    db.execute("CREATE INDEX session_energy_site ON session_energy (site_id, at)")
    # The history reads a window of received ActiveChargingProfiles.
    db.execute("CREATE INDEX active_profiles_received ON active_profiles (received_at)")
    db.execute(
        """INSERT INTO session_energy (party, country_code, party_id, session_id, site_id, at, kwh)
           SELECT party, country_code, party_id, id,
           upper(country_code) || '-' || upper(party_id) || '-' || location_id, last_updated, kwh FROM sessions""")


def apply(db: Db, which: Migrations) -> list[str]:
    """Create the file if needed, switch to WAL and apply the pending migrations of `which`; their names."""
    db.path.parent.mkdir(parents=True, exist_ok=True)
    conn = db.connect()
    try:
        conn.conn.execute("PRAGMA journal_mode = WAL")
        pending = [m.name for m in which.pending(conn)]
        which.apply(conn)
        return pending
    finally:
        conn.close()


def applied(db: Db) -> list[str]:
    """Names of applied migrations, oldest first."""
    with db.read() as conn:
        return [m.name for m in migrations.applied(conn)]
