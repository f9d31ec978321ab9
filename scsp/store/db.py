"""The SQLite file: one connection per thread, one `BEGIN IMMEDIATE` transaction per write.

sqlite3 connections refuse other threads, so each thread keeps its own. Writes that belong
together run in one `BEGIN IMMEDIATE` transaction, so concurrent writers (the server, the CLI in
another process, scheduler threads) queue on the lock instead of failing mid-transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlite_utils import Database

# Seconds a connection waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 10.0


def hash_token(token: str) -> str:
    """SHA-256 of a token or API key we issued. They are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Db:
    """Connections to one SQLite file (WAL, `synchronous=FULL`, foreign keys on).

    One connection per thread, opened on first use and kept: opening one (and its PRAGMAs) cost
    more than most of the statements run on it. sqlite3 connections refuse other threads, so a
    request thread, a scheduler thread and the CLI each hold their own.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def connect(self) -> Database:
        """A new connection for the calling thread (the caller closes it)."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return Database(conn, strict=True, execute_plugins=False)

    def _thread_db(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = self.connect()
            self._local.db = db
            self._local.writing = False
        return db

    @contextmanager
    def read(self) -> Iterator[Database]:
        """The thread's connection for reads (inside a write of the same thread: that transaction)."""
        db = self._thread_db()
        try:
            yield db
        finally:
            if not self._local.writing and db.conn.in_transaction:
                db.conn.rollback()  # a read never leaves a transaction (and its locks) open

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write transaction; rolled back whole on any error (nothing stored half-way)."""
        db = self._thread_db()
        if self._local.writing:
            raise RuntimeError("a write transaction of this thread is already open")
        if db.conn.in_transaction:
            db.conn.rollback()
        db.conn.execute("BEGIN IMMEDIATE")
        self._local.writing = True
        try:
            yield db
        except BaseException:
            db.conn.rollback()
            raise
        else:
            db.conn.commit()
        finally:
            self._local.writing = False


class Aggregate:
    """Base of the stores: one aggregate's tables in the file `db`."""

    def __init__(self, db: Db) -> None:
        self._db = db

    def _read(self) -> AbstractContextManager[Database]:
        return self._db.read()

    def _write(self) -> AbstractContextManager[Database]:
        return self._db.write()
