"""The PostgreSQL store: for several replicas sharing one database (psycopg 3).

One connection per store in autocommit mode, serialised by a lock; each operation runs in
an explicit transaction. Publishing locks the ruleset's row (`FOR UPDATE`), so two
publishes with the same `expected_version` queue and the second sees the first's version.
Migrations take a transaction-scoped advisory lock, so replicas starting together migrate
one at a time. A broken connection is reopened once before an operation fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from termdesk.store.base import StoreError
from termdesk.store.sql import SqlStore, Tx

__all__ = ["PostgresStore"]

_MIGRATION_LOCK = 0x7465726D  # "term": any constant shared by every termdesk process


class PostgresStore(SqlStore):
    dialect = "postgresql"
    for_update = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._connection = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as error:
            raise StoreError(f"cannot connect to the PostgreSQL store: {error}") from error

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Tx]:
        with self._lock:
            if self._connection.broken or self._connection.closed:
                self._connection = self._connect()
            with self._connection.transaction(), self._connection.cursor() as cursor:
                yield Tx(cursor, "%s")

    def _lock_migrations(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", _MIGRATION_LOCK)

    def _time_param(self, value: datetime) -> object:
        return value

    def _time_value(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value

    def _json_param(self, value: object) -> object:
        return Jsonb(value)

    def close(self) -> None:
        with self._lock:
            self._connection.close()
