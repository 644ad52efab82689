"""Shared fixtures: a migrated database on SQLite and, where reachable, on PostgreSQL.

PostgreSQL tests are marked ``postgres``. Under CI (CI=true) an unreachable server fails
them; on a developer's machine they skip with a message saying how to run them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from yiyang.db import Database
from yiyang.migrate import upgrade
from yiyang.models import metadata

# Fixed test keys for the encrypted personal fields (docs/access.md); never used outside tests.
os.environ.setdefault("YIYANG_FIELD_KEYS", "test1:dGVzdC1maWVsZC1rZXktMzItYnl0ZXMtbG9uZyEhISE=")
os.environ.setdefault("YIYANG_BLIND_INDEX_KEY", "dGVzdC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMtbG9uZw==")

PG_ADMIN_URL = os.environ.get("YIYANG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as error:  # noqa: BLE001 - any failure means unreachable
        return f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


@pytest.fixture(autouse=True)
def no_stray_reactions() -> Iterator[None]:
    """Each test starts with no cross-domain reactions; ``create_app`` and the CLI install them."""
    from yiyang.events import unsubscribe_all

    unsubscribe_all()
    yield
    unsubscribe_all()


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    """Argon2 at its cheapest: the tests sign in thousands of times (test_passwords checks the
    production parameters itself)."""
    from argon2 import PasswordHasher
    from argon2.profiles import CHEAPEST

    from yiyang.access import passwords

    previous = passwords.use_hasher(PasswordHasher.from_parameters(CHEAPEST))
    yield
    passwords.use_hasher(previous)


@pytest.fixture
def reactions() -> None:
    """The cross-domain reactions the app and the CLI run with (an import re-tiers, ...)."""
    from yiyang.events import install_handlers

    install_handlers()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session, dropped afterwards."""
    problem = _pg_reachable()
    if problem:
        message = f"PostgreSQL unreachable at YIYANG_TEST_PG_URL ({problem})"
        if IN_CI:
            pytest.fail(message + " - required under CI")
        pytest.skip(message + "; start PostgreSQL or set YIYANG_TEST_PG_URL to run these tests")
    name = f"yiyang_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    database = Database(url)
    upgrade(database.engine)
    database.dispose()
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    database.dispose()
    return path


def _truncate_pg(database: Database) -> None:
    with database.engine.begin() as connection:
        tables = (
            connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            )
            .scalars()
            .all()
        )
        if tables:
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "yiyang.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    _truncate_pg(database)
    yield database
    database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    """The same test on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_db")
    return request.getfixturevalue("pg_db")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def unmigrated_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database, not yet migrated, on each engine (for migration tests); dropped afterwards."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'unmigrated.db'}")
        yield database
        database.dispose()
        return
    problem = _pg_reachable()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable ({problem}) - required under CI")
        pytest.skip(f"PostgreSQL unreachable ({problem})")
    name = f"yiyang_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    yield database
    database.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def schema_drift(database: Database, tables: tuple[str, ...]) -> list[object]:
    """What the migrated schema of ``tables`` lacks or has beyond their models (empty: they match)."""
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    # a table shows in a difference quoted ('x'), as a column's table (<x>) or as a prefix (x.c)
    return [
        diff
        for diff in differences
        if any(
            f"'{table}'" in repr(diff) or f"<{table}>" in repr(diff) or f"{table}." in repr(diff)
            for table in tables
        )
    ]
