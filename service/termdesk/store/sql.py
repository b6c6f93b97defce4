"""The SQL both backends share: every query, the publish transaction and the migrations.

A backend supplies a transaction (`Tx`) and how times and JSON travel to its driver; the
queries are written once, with `?` placeholders (the PostgreSQL backend translates them).
Migrations are `migrations/<dialect>/NNNN_*.sql`, applied in order, each in its own
transaction, and recorded in `schema_migrations`; a backend serialises concurrent starts.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import json
import threading
from collections.abc import Sequence
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

from termdesk.store.base import (
    AuditRecord,
    DecisionNotFoundError,
    DecisionRecord,
    RulesetSummary,
    Store,
    StoredVersion,
    VersionConflictError,
    not_found,
    utc_now,
)

__all__ = ["SqlStore", "Tx", "migration_scripts"]

Row = Sequence[Any]


class _Cursor(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def executemany(self, query: Any, params_seq: Any, /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


class Tx:
    """One transaction's cursor, with `?` placeholders translated for the driver."""

    def __init__(self, cursor: _Cursor, placeholder: str = "?") -> None:
        self._cursor = cursor
        self._placeholder = placeholder

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def run(self, sql: str, *params: object) -> None:
        self._cursor.execute(self._sql(sql), params)

    def one(self, sql: str, *params: object) -> Row | None:
        self._cursor.execute(self._sql(sql), params)
        row: Row | None = self._cursor.fetchone()
        return row

    def all(self, sql: str, *params: object) -> list[Row]:
        self._cursor.execute(self._sql(sql), params)
        return list(self._cursor.fetchall())

    def many(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._cursor.executemany(self._sql(sql), rows)

    def script(self, text: str) -> None:
        for statement in text.split(";\n"):
            if statement.strip():
                self._cursor.execute(statement)


def migration_scripts(dialect: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every migration of `dialect`, in order."""
    folder = resources.files("termdesk.store") / "migrations" / dialect
    scripts = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            scripts.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(scripts)


_VERSION_COLUMNS = "v.name, v.version, v.source, v.digest, v.author, v.comment, v.created_at"
_DECISION_COLUMNS = (
    "decision_id, deal_id, ruleset, ruleset_version, ruleset_digest, decision, violations, "
    "package, created_at"
)


class SqlStore(Store):
    """Every store operation in SQL; subclasses connect and adapt types."""

    dialect = ""
    for_update = ""  # row lock for the publish transaction, where the database has one

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # -- what a backend supplies

    @abc.abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[Tx]: ...

    @abc.abstractmethod
    def _lock_migrations(self, tx: Tx) -> None:
        """Holds off other processes migrating the same database until commit."""

    @abc.abstractmethod
    def _time_param(self, value: datetime) -> object: ...

    @abc.abstractmethod
    def _time_value(self, value: Any) -> datetime: ...

    @abc.abstractmethod
    def _json_param(self, value: object) -> object: ...

    def _json_value(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    # -- migrations

    def migrate(self) -> int:
        applied = 0
        for version, name, sql in migration_scripts(self.dialect):
            with self._transaction() as tx:
                self._lock_migrations(tx)
                tx.run(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                if tx.one("SELECT 1 FROM schema_migrations WHERE version = ?", version) is None:
                    tx.script(sql)
                    tx.run(
                        "INSERT INTO schema_migrations (version, name, applied_at) "
                        "VALUES (?, ?, ?)",
                        version,
                        name,
                        utc_now().isoformat(),
                    )
            applied = version
        return applied

    # -- ruleset versions

    def publish(
        self,
        name: str,
        source: str,
        digest: str,
        *,
        author: str,
        comment: str,
        expected_version: int | None = None,
    ) -> StoredVersion:
        created = utc_now()
        with self._transaction() as tx:
            tx.run(
                "INSERT INTO rulesets (name, active_version, latest_version) VALUES (?, 0, 0) "
                "ON CONFLICT (name) DO NOTHING",
                name,
            )
            row = tx.one(
                f"SELECT latest_version FROM rulesets WHERE name = ?{self.for_update}", name
            )
            latest = int(row[0]) if row else 0
            if expected_version is not None and expected_version != latest:
                raise VersionConflictError(name, expected_version, latest)
            version = latest + 1
            tx.run(
                "INSERT INTO ruleset_versions "
                "(name, version, source, digest, author, comment, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                name,
                version,
                source,
                digest,
                author,
                comment,
                self._time_param(created),
            )
            tx.run(
                "UPDATE rulesets SET latest_version = ?, active_version = ? WHERE name = ?",
                version,
                version,
                name,
            )
        return StoredVersion(name, version, source, digest, author, comment, created, True)

    def activate(self, name: str, version: int) -> tuple[StoredVersion, int]:
        with self._transaction() as tx:
            row = tx.one(
                f"SELECT active_version FROM rulesets WHERE name = ?{self.for_update}", name
            )
            if row is None:
                raise not_found(name, version, None)
            previous = int(row[0])
            stored = self._version(tx, name, version)
            tx.run("UPDATE rulesets SET active_version = ? WHERE name = ?", version, name)
        return dataclasses.replace(stored, active=True), previous

    def get(self, name: str, version: int = 0) -> StoredVersion:
        with self._transaction() as tx:
            row = tx.one("SELECT active_version FROM rulesets WHERE name = ?", name)
            if row is None:
                raise not_found(name, version, None)
            active = int(row[0])
            stored = self._version(tx, name, version or active)
        return dataclasses.replace(stored, active=stored.version == active)

    def _version(self, tx: Tx, name: str, version: int) -> StoredVersion:
        row = tx.one(
            f"SELECT {_VERSION_COLUMNS} FROM ruleset_versions v WHERE v.name = ? AND v.version = ?",
            name,
            version,
        )
        if row is None:
            known = [
                int(r[0])
                for r in tx.all(
                    "SELECT version FROM ruleset_versions WHERE name = ? ORDER BY version", name
                )
            ]
            raise not_found(name, version, known)
        return self._stored(row, active=False)

    def versions(self, name: str) -> list[StoredVersion]:
        with self._transaction() as tx:
            rows = tx.all(
                f"SELECT {_VERSION_COLUMNS}, r.active_version FROM ruleset_versions v "
                "JOIN rulesets r ON r.name = v.name WHERE v.name = ? ORDER BY v.version",
                name,
            )
        if not rows:
            raise not_found(name, 0, None)
        return [self._stored(row, active=int(row[7]) == int(row[1])) for row in rows]

    def rulesets(self) -> list[RulesetSummary]:
        with self._transaction() as tx:
            rows = tx.all(
                "SELECT r.name, r.active_version, r.latest_version, v.digest FROM rulesets r "
                "JOIN ruleset_versions v ON v.name = r.name AND v.version = r.active_version "
                "ORDER BY r.name"
            )
        return [RulesetSummary(row[0], int(row[1]), int(row[2]), row[3]) for row in rows]

    def active_versions(self) -> dict[str, int]:
        with self._transaction() as tx:
            rows = tx.all("SELECT name, active_version FROM rulesets WHERE active_version > 0")
        return {row[0]: int(row[1]) for row in rows}

    def _stored(self, row: Row, *, active: bool) -> StoredVersion:
        name, version, source, digest, author, comment, created = row[:7]
        return StoredVersion(
            name, int(version), source, digest, author, comment, self._time_value(created), active
        )

    # -- audit log

    def record_audit(self, record: AuditRecord) -> None:
        with self._transaction() as tx:
            tx.run(
                "INSERT INTO audit_log "
                "(created_at, actor, role, action, target, outcome, detail, channel) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._time_param(record.created_at),
                record.actor,
                record.role,
                record.action,
                record.target,
                record.outcome,
                record.detail,
                record.channel,
            )

    def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        with self._transaction() as tx:
            rows = tx.all(
                "SELECT actor, role, action, target, outcome, detail, created_at, channel "
                "FROM audit_log "
                "ORDER BY id DESC LIMIT ?",
                limit,
            )
        return [
            AuditRecord(
                actor=row[0],
                role=row[1],
                action=row[2],
                target=row[3],
                outcome=row[4],
                detail=row[5],
                created_at=self._time_value(row[6]),
                channel=row[7],
            )
            for row in rows
        ]

    # -- decision log

    def record_decisions(self, records: Sequence[DecisionRecord]) -> None:
        if not records:
            return
        with self._transaction() as tx:
            tx.many(
                f"INSERT INTO decision_log ({_DECISION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (decision_id) DO NOTHING",
                [
                    (
                        r.decision_id,
                        r.deal_id,
                        r.ruleset,
                        r.ruleset_version,
                        r.ruleset_digest,
                        r.decision,
                        self._json_param(list(r.violations)),
                        self._json_param(dict(r.package)),
                        self._time_param(r.created_at),
                    )
                    for r in records
                ],
            )

    def decisions(
        self, ruleset: str, *, since: datetime | None = None, limit: int = 1000
    ) -> list[DecisionRecord]:
        where, params = "ruleset = ?", list[object]([ruleset])
        if since is not None:
            where += " AND created_at >= ?"
            params.append(self._time_param(since))
        return self._decisions(where, params, limit)

    def search_decisions(
        self,
        *,
        ruleset: str = "",
        deal_id: str = "",
        decision: str = "",
        ruleset_version: int = 0,
        limit: int = 100,
    ) -> list[DecisionRecord]:
        filters = {
            "ruleset": ruleset,
            "deal_id": deal_id,
            "decision": decision,
            "ruleset_version": ruleset_version,
        }
        given = {column: value for column, value in filters.items() if value}
        where = " AND ".join(f"{column} = ?" for column in given) or "TRUE"
        return self._decisions(where, list(given.values()), limit)

    def decision(self, decision_id: str) -> DecisionRecord:
        found = self._decisions("decision_id = ?", [decision_id], 1)
        if not found:
            raise DecisionNotFoundError(
                f"no logged decision `{decision_id}` (never logged here, or older than the "
                "retention)"
            )
        return found[0]

    def _decisions(self, where: str, params: list[object], limit: int) -> list[DecisionRecord]:
        with self._transaction() as tx:
            rows = tx.all(
                f"SELECT {_DECISION_COLUMNS} FROM decision_log WHERE {where} "
                "ORDER BY created_at DESC LIMIT ?",
                *params,
                limit,
            )
        return [
            DecisionRecord(
                decision_id=row[0],
                deal_id=row[1],
                ruleset=row[2],
                ruleset_version=int(row[3]),
                ruleset_digest=row[4],
                decision=row[5],
                violations=self._json_value(row[6]),
                package=self._json_value(row[7]),
                created_at=self._time_value(row[8]),
            )
            for row in rows
        ]

    def prune_decisions(self, older_than: datetime) -> int:
        with self._transaction() as tx:
            row = tx.one(
                "SELECT COUNT(*) FROM decision_log WHERE created_at < ?",
                self._time_param(older_than),
            )
            tx.run("DELETE FROM decision_log WHERE created_at < ?", self._time_param(older_than))
        return int(row[0]) if row else 0
