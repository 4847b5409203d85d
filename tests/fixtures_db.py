"""Database fixtures (a pytest plugin): real SQLite files and a real PostgreSQL, never mocks.

PostgreSQL gets one throw-away database per test session, uniquely named so parallel sessions
and leftovers from a killed run never collide, dropped at the end. Each test that asks for
``pg_url`` starts from an empty schema, like a fresh SQLite file.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from leadshop import db

POSTGRES_SERVER_URL = os.environ.get(
    "LEADSHOP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
START_POSTGRES = (
    "Start PostgreSQL with trust auth on 127.0.0.1:5432, e.g. "
    "`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16` or "
    "`sudo pg_ctlcluster 15 main start`, or point LEADSHOP_TEST_POSTGRES_URL at another server "
    "(the URL of any database there; the tests create their own)."
)


def _admin_engine() -> Engine:
    return create_engine(
        POSTGRES_SERVER_URL,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 5},
    )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of this session's PostgreSQL database; fails in CI, skips elsewhere, if none runs."""
    admin = _admin_engine()
    name = f"leadshop_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except OperationalError as exc:
        where = make_url(POSTGRES_SERVER_URL).render_as_string(hide_password=True)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        message = f"PostgreSQL does not answer at {where} ({reason}). {START_POSTGRES}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    yield make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        # FORCE: engines cached by leadshop.db.make_engine still hold idle connections.
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied: no tables, no Alembic version."""
    engine = create_engine(pg_database, poolclass=NullPool)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    return pg_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'leadshop.db'}"


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def db_engine(db_url: str) -> Engine:
    """A migrated, empty database on each backend."""
    db.migrate(db_url)
    return db.make_engine(db_url)
