"""The SQLite file: one connection per thread, one `BEGIN IMMEDIATE` transaction per write.

sqlite3 connections refuse other threads, so each thread keeps its own. Writes that belong
together run in one `BEGIN IMMEDIATE` transaction, so concurrent writers (the server, the CLI in
another process, scheduler threads) queue on the lock instead of failing mid-transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlite_utils import Database

from scsp.faults import Faults

# Seconds a connection waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 10.0
# Longest a commit waits for writers already queued behind the mutex to join it (s).
GROUP_COMMIT_WAIT_S = 0.002


def hash_token(token: str) -> str:
    """SHA-256 of a token or API key we issued. They are 256-bit random, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# Commits per database file in this process (`Db.generation`), shared by every `Db` of a file.
_GENERATIONS: dict[str, int] = {}
_GENERATIONS_LOCK = threading.Lock()


class CommitFailed(sqlite3.OperationalError):
    """The transaction a write was part of could not be committed: nothing of it is stored."""


class Db:
    """Connections to one SQLite file (WAL, `synchronous=FULL`, foreign keys on).

    Reads: one connection per thread, opened on first use and kept (opening one and setting its
    PRAGMAs cost more than most statements run on it).

    Writes: group commit. The writers of this process share one connection and one open
    transaction; each runs under the write mutex inside its own SAVEPOINT (an error undoes its own
    work only), then waits until a COMMIT that includes its work has returned. The first writer
    to wait commits for everyone who wrote before it, so concurrent writes share one fsync
    instead of paying one each. No write returns before its COMMIT (with `synchronous=FULL`)
    did: an acknowledged write survives a crash. Other processes (the CLI) write through their own
    connections and queue on SQLite's lock (`BUSY_TIMEOUT_S`).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._key = str(self.path.resolve())
        self._local = threading.local()
        self._wlock = threading.RLock()
        self._writer: Database | None = None
        self._done = threading.Condition()
        self._open = 0  # number of the transaction open on the writer (0: none)
        self._next = 1
        self._committed = 0  # every transaction numbered up to this one is settled
        self._failed: set[int] = set()
        self._committing = False
        self._pending = 0  # writers waiting for the mutex
        # Unreadable rows met by any store of this file (counted for /metrics, see scsp.faults).
        self.faults = Faults()

    def connect(self, *, shared: bool = False) -> Database:
        """A new connection (for the calling thread unless `shared`; the caller closes it)."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=not shared)
        if shared:
            conn.isolation_level = None  # transactions by explicit BEGIN / SAVEPOINT / COMMIT only
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return Database(conn, strict=True, execute_plugins=False)

    def _thread_db(self) -> Database:
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = self.connect()
            self._local.db = db
        return db

    def _depth(self) -> int:
        return int(getattr(self._local, "depth", 0))

    @contextmanager
    def read(self) -> Iterator[Database]:
        """The thread's connection for reads (inside a write of the same thread: that transaction)."""
        if self._depth() > 0 and self._writer is not None:
            yield self._writer
            return
        db = self._thread_db()
        try:
            yield db
        finally:
            if db.conn.in_transaction:
                db.conn.rollback()  # a read never leaves a transaction (and its locks) open

    @contextmanager
    def write(self) -> Iterator[Database]:
        """One write, all or nothing, durable when the block has returned (see the class)."""
        depth = self._depth()
        with self._done:
            self._pending += 1
        try:
            self._wlock.acquire()
        finally:
            with self._done:
                self._pending -= 1
        try:
            if self._writer is None:
                self._writer = self.connect(shared=True)
            db = self._writer
            if not db.conn.in_transaction:
                db.conn.execute("BEGIN IMMEDIATE")
                self._open, self._next = self._next, self._next + 1
            number = self._open
            savepoint = f"w{depth}"
            db.conn.execute(f"SAVEPOINT {savepoint}")
            self._local.depth = depth + 1
            try:
                yield db
            except BaseException:
                if db.conn.in_transaction:
                    db.conn.execute(f"ROLLBACK TO {savepoint}")
                    db.conn.execute(f"RELEASE {savepoint}")
                else:
                    # SQLite rolled the whole transaction back (disk full, I/O error): the other
                    # writes in it are lost too, and their writers must not be told otherwise.
                    self._settle(number, ok=False)
                raise
            else:
                db.conn.execute(f"RELEASE {savepoint}")
            finally:
                self._local.depth = depth
        finally:
            self._wlock.release()
        if depth == 0:
            self._wait_committed(number)

    @property
    def generation(self) -> int:
        """Grows with every commit of a write to this file from this process (any `Db` of it):
        a cached view of the data is current while it holds. Writes by other processes (the CLI)
        do not raise it."""
        return _GENERATIONS.get(self._key, 0)

    def _settle(self, number: int, *, ok: bool) -> None:
        with self._done:
            if ok:
                with _GENERATIONS_LOCK:
                    _GENERATIONS[self._key] = _GENERATIONS.get(self._key, 0) + 1
            else:
                self._failed.add(number)
            self._committed = max(self._committed, number)
            if self._open == number:
                self._open = 0
            self._done.notify_all()

    def _wait_committed(self, number: int) -> None:
        """Return once transaction `number` is committed (committing it if nobody else is)."""
        while True:
            with self._done:
                while self._committed < number and self._committing:
                    self._done.wait()
                if self._committed >= number:
                    if number in self._failed:
                        raise CommitFailed("the transaction holding this write was rolled back")
                    return
                self._committing = True
            try:
                # Writers queued on the mutex go first: their work joins this commit (bounded, so
                # a steady stream of writers cannot hold a commit back).
                deadline = time.monotonic() + GROUP_COMMIT_WAIT_S
                while self._pending and time.monotonic() < deadline:
                    time.sleep(0.0001)
                with self._wlock:
                    db = self._writer
                    open_number = self._open
                    ok = True
                    if db is not None and db.conn.in_transaction and open_number:
                        try:
                            db.conn.execute("COMMIT")
                        except sqlite3.Error:
                            ok = False
                            if db.conn.in_transaction:
                                db.conn.execute("ROLLBACK")
                    if open_number:
                        self._settle(open_number, ok=ok)
                    elif self._committed < number:  # already settled by a rollback
                        self._settle(number, ok=number not in self._failed)
            finally:
                with self._done:
                    self._committing = False
                    self._done.notify_all()


class Aggregate:
    """Base of the stores: one aggregate's tables in the file `db`."""

    def __init__(self, db: Db) -> None:
        self._db = db
        self._faults = db.faults

    def _read(self) -> AbstractContextManager[Database]:
        return self._db.read()

    def _write(self) -> AbstractContextManager[Database]:
        return self._db.write()
