"""Where ruleset versions, the audit log and the decision log live: `open_store(url)`.

    sqlite:///PATH           a SQLite file (the default: DATA_DIR/termdesk.db)
    postgresql://...         a PostgreSQL database shared by several replicas

Opening a store applies its pending schema migrations.
"""

from __future__ import annotations

from pathlib import Path

from termdesk.store.base import (
    AuditRecord,
    DecisionNotFoundError,
    DecisionRecord,
    RulesetSummary,
    Store,
    StoredVersion,
    StoreError,
    VersionConflictError,
)
from termdesk.store.postgres import PostgresStore
from termdesk.store.sqlite import SqliteStore

__all__ = [
    "AuditRecord",
    "DecisionNotFoundError",
    "DecisionRecord",
    "RulesetSummary",
    "Store",
    "StoreError",
    "StoredVersion",
    "VersionConflictError",
    "open_store",
    "sqlite_url",
]


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir.resolve() / 'termdesk.db'}"


def open_store(url: str) -> Store:
    """Opens (creating when needed) and migrates the store at `url`."""
    store: Store
    if url.startswith("sqlite:///"):
        store = SqliteStore(Path(url.removeprefix("sqlite:///")))
    elif url.startswith(("postgresql://", "postgres://")):
        store = PostgresStore(url)
    else:
        scheme = url.split("://", maxsplit=1)[0]
        raise StoreError(f"unsupported store `{scheme}`: use sqlite:///PATH or postgresql://...")
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store
