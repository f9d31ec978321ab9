"""Versioned schema migrations, applied at start-up (`Store.migrate`).

Every table is STRICT; columns filtered by time are INTEGER unix seconds. A migration is never
edited once released: schema changes are new functions appended below.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("scsp")


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
