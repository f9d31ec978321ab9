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
    store = Store(path)
    party = store.parties.create(status=PartyStatus.INVITED, role="CPO", country_code="nl", party_id="abc",
                               token="old-token", token_kind=TokenKind.A, now=EPOCH1)
    store.migrate()
    assert store.applied_migrations() == ALL
    assert store.parties.get(party.id).handle == "NL-ABC"
    found = store.parties.by_token("old-token")
    assert found is not None and found[1] == TokenKind.A


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
