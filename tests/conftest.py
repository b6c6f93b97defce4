"""Fixtures shared by the store and admin tests: throwaway stores on both backends.

PostgreSQL is the one at `TERMDESK_TEST_POSTGRES` (default: the local server, trust
auth, database `test`); every test gets a new database of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

POSTGRES_URL = os.environ.get("TERMDESK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _database_url(name: str) -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def postgres_database() -> Iterator[Callable[[], str]]:
    """Creates throwaway PostgreSQL databases on demand; drops them all afterwards."""
    created: list[str] = []

    def create() -> str:
        name = f"termdesk_test_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return _database_url(name)

    yield create
    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as admin:
        for name in created:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(params=BACKENDS)
def store_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_database: Callable[[], str],
) -> str:
    """The URL of an empty store, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'termdesk.db'}"
    return postgres_database()
