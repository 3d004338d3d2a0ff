"""The store's index in SQLite (the default, one file beside the case folders): WAL mode, so readers
never wait for a writer, and every write transaction takes the write lock at its start (BEGIN
IMMEDIATE), so saves and repair() are serialised across processes."""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from core.errors import DelineateError


class SqliteIndex:
    kind = "sqlite"
    #: dialect pieces the schema and the team tables are written with
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "REAL"
    #: the database's clock in seconds since the epoch: lock times never depend on a client's clock
    now = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "index.sqlite"
        self.where = str(self.path)
        # autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE) where they matter
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row  # rows read by column name, whatever order the table has
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.version()
        except sqlite3.DatabaseError as exc:
            self.db.close()
            raise DelineateError(f"{self.path}: cannot open the store's index ({exc})") from None

    def query(self, sql: str, params=()) -> list:
        return self.db.execute(sql, params).fetchall()

    def one(self, sql: str, params=()):
        return self.db.execute(sql, params).fetchone()

    def execute(self, sql: str, params=()) -> int:
        """Runs a statement; the number of rows it changed."""
        return self.db.execute(sql, params).rowcount

    @contextlib.contextmanager
    def writing(self):
        """One write transaction holding the index's write lock from the start: other savers and
        repair() wait for it, readers (WAL) do not."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]  # reading takes no lock

    def set_version(self, version: int) -> None:
        self.db.execute(f"PRAGMA user_version = {int(version)}")

    def integrity(self) -> list[str]:
        return [f"index: {r[0]}" for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]

    def close(self) -> None:
        self.db.close()
