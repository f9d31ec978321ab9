"""The SQLite file: one connection per call, one `BEGIN IMMEDIATE` transaction per write.

sqlite3 connections refuse other threads, so every store method opens its own. Writes that belong
together run in one `BEGIN IMMEDIATE` transaction, so concurrent writers (the server, the CLI in
another process, scheduler threads) queue on the lock instead of failing mid-transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlite_utils import Database

from scsp.faults import Faults

# Seconds a connection waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 10.0


def hash_token(token: str) -> str:
    """SHA-256 of a token or API key we issued. They are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Db:
    """Connections to one SQLite file (WAL, `synchronous=FULL`, foreign keys on)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # Unreadable rows met by any store of this file (counted for /metrics, see scsp.faults).
        self.faults = Faults()

    def connect(self) -> Database:
        """A new connection for the calling thread."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return Database(conn, strict=True, execute_plugins=False)

    @contextmanager
    def read(self) -> Iterator[Database]:
        """A connection for reads, closed afterwards."""
        db = self.connect()
        try:
            yield db
        finally:
            db.close()

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write transaction; rolled back whole on any error (nothing stored half-way)."""
        db = self.connect()
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.conn.rollback()
                raise
            db.conn.commit()
        finally:
            db.close()


class Aggregate:
    """Base of the stores: one aggregate's tables in the file `db`."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._faults = db.faults

    def _read(self) -> AbstractContextManager[Database]:
        return self._db.read()

    def _write(self) -> AbstractContextManager[Database]:
        return self._db.write()
