"""The SQLite store: the embedded default, one file under the data directory.

One connection per store, serialised by a lock; write transactions start with
`BEGIN IMMEDIATE`, which takes SQLite's write lock at once, so two processes sharing the
file (`--workers`) publish and migrate one after the other. WAL lets readers run
alongside a writer.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from termdesk.store.base import StoreError
from termdesk.store.sql import SqlStore, Tx

__all__ = ["SqliteStore"]


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the SQLite store {path}: {error}") from error

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    def _lock_migrations(self, tx: Tx) -> None:
        pass  # BEGIN IMMEDIATE already holds the database's write lock

    def _time_param(self, value: datetime) -> object:
        return value.isoformat(timespec="microseconds")

    def _time_value(self, value: Any) -> datetime:
        return datetime.fromisoformat(value)

    def _json_param(self, value: object) -> object:
        return json.dumps(value, separators=(",", ":"))

    def close(self) -> None:
        with self._lock:
            self._connection.close()
