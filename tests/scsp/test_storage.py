"""The SQLite store: migrations from every earlier version, WAL, hashed tokens, atomic writes."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scsp.records.parties import PartyStatus, TokenKind
from scsp.store import Store
from scsp.store.db import hash_token
from scsp.store.migrations import migrations

ALL = [m.name for m in migrations._migrations]

# A fixed time long past, where a test needs some time and the value does not matter.
EPOCH1 = datetime.fromtimestamp(1, UTC)


def test_migrations_create_strict_tables_in_wal_mode_from_an_empty_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "new.db")
    assert store.migrate() == ALL
    assert store.migrate() == []  # idempotent
    assert store.applied_migrations() == ALL
    conn = sqlite3.connect(tmp_path / "new.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' "
                          "ESCAPE '\\' AND name NOT LIKE 'sqlite%'").fetchall()
    assert tables and all(sql.rstrip().endswith("STRICT") for _, sql in tables), tables


@pytest.mark.parametrize("stop_before", ALL[1:] or [None])
def test_an_upgrade_from_every_earlier_schema_version_keeps_the_data(tmp_path: Path, stop_before: str | None) -> None:
    """Apply migrations up to an earlier version, store a party, then upgrade to the newest."""
    from sqlite_utils import Database

    path = tmp_path / "old.db"
    with Database(path) as db:
        migrations.apply(db, stop_before=stop_before)
        # What the code of that version stored: the columns of m001 (later ones may not exist yet).
        db.execute("INSERT INTO parties (role, country_code, party_id, status, roles, created_at, updated_at) "
                   "VALUES ('CPO', 'NL', 'ABC', 'INVITED', '[]', 1, 1)")
        db.execute("INSERT INTO tokens (hash, party, kind, created_at) VALUES (?, 1, 'A', 1)",
                   [hash_token("old-token")])
        db.conn.commit()
    store = Store(path)
    store.migrate()
    assert store.applied_migrations() == ALL
    assert store.parties.get(1).handle == "NL-ABC"
    found = store.parties.by_token("old-token")
    assert found is not None and found[1] == TokenKind.A


def test_the_identities_of_existing_connections_are_what_no_earlier_one_holds(tmp_path: Path) -> None:
    """m008: a registered party keeps its roles as identities, except those an earlier connection holds."""
    import json

    from sqlite_utils import Database

    path = tmp_path / "old.db"

    def roles(*handles: str) -> str:
        return json.dumps([{"role": "CPO", "country_code": h[:2], "party_id": h[3:],
                            "business_details": {"name": h}} for h in handles])

    with Database(path) as db:
        migrations.apply(db, stop_before="m008_bound_identities")
        for cc, pid, status, held in (("NL", "ABC", "REGISTERED", roles("NL-ABC", "BE-ABC")),
                                      ("DE", "XYZ", "REGISTERED", roles("DE-XYZ", "NL-ABC", "AT-XYZ"))):
            db.execute("INSERT INTO parties (role, country_code, party_id, status, roles, created_at, updated_at) "
                       "VALUES ('CPO', ?, ?, ?, ?, 1, 1)", [cc, pid, status, held])
        db.conn.commit()
    store = Store(path)
    store.migrate()
    a, b = store.parties.all()
    assert a.identities == ["BE-ABC"] and b.identities == ["AT-XYZ"]
    assert not b.owns("NL", "ABC") and a.owns("nl", "abc")


def test_tokens_we_issue_are_stored_only_as_hashes(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.migrate()
    store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="ABC",
                       token="secret-token-a", token_kind=TokenKind.A, now=datetime.now(UTC))
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("s.db*"))
    assert b"secret-token-a" not in raw
    assert hash_token("secret-token-a").encode() in raw


def test_a_failed_write_leaves_nothing_half_stored(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.migrate()
    store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="ABC",
                       token="dup", token_kind=TokenKind.A, now=EPOCH1)
    with pytest.raises(sqlite3.IntegrityError):
        # Same token hash again: the party row inserted first must be rolled back with it.
        store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="NL", party_id="XYZ",
                           token="dup", token_kind=TokenKind.A, now=EPOCH1)
    assert [p.handle for p in store.parties.all()] == ["NL-ABC"]


def test_every_connection_of_the_store_syncs_fully(tmp_path: Path) -> None:
    """PRAGMA synchronous = FULL (2): a committed registration or token survives a power cut, even in WAL."""
    store = Store(tmp_path / "s.db")
    store.migrate()
    with store.db.read() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    with store.db.write() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
