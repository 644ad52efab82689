"""Migration 0014 keys telemetry by time first, on both engines, and can be undone."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from tests.conftest import PG_ADMIN_URL, _pg_reachable
from yiyang.db import Database
from yiyang.migrate import alembic_config, upgrade

TIME_FIRST = ["measured_at", "device_id", "seq"]
DEVICE_FIRST = ["device_id", "seq", "measured_at"]


def telemetry_key(database: Database) -> tuple[list[str], list[str]]:
    """The key's columns in order, and the names of the other indexes on telemetry."""
    inspector = inspect(database.engine)
    key = inspector.get_pk_constraint("telemetry")["constrained_columns"]
    return key, [index["name"] for index in inspector.get_indexes("telemetry")]


def downgrade(database: Database, revision: str) -> None:
    config = alembic_config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def test_telemetry_is_keyed_by_time_first_with_no_other_index(db: Database) -> None:
    assert telemetry_key(db) == (TIME_FIRST, [])


def round_trip(database: Database) -> None:
    # given a stored reading under the time-first key
    upgrade(database.engine)
    with database.engine.begin() as connection:
        if database.engine.dialect.name == "postgresql":
            connection.execute(text("SELECT yiyang_ensure_daily_partitions('telemetry', '2026-11-24', 1)"))
        connection.execute(
            text("INSERT INTO telemetry (measured_at, device_id, seq, heart_rate) VALUES (:at, 7, 1, 70)"),
            {"at": dt.datetime(2026, 11, 24, 9, 30)},
        )
    # when the migration is undone, then the old key and its BRIN index are back, the row kept
    downgrade(database, "0013")
    assert telemetry_key(database) == (DEVICE_FIRST, ["ix_telemetry_measured_at"])
    # and when it is applied again, the time-first key returns with the row
    upgrade(database.engine)
    assert telemetry_key(database) == (TIME_FIRST, [])
    with database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM telemetry")).scalar_one() == 1


def test_the_migration_can_be_undone_and_redone_on_sqlite(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'round-trip.db'}")
    try:
        round_trip(database)
    finally:
        database.dispose()


@pytest.mark.postgres
def test_the_migration_can_be_undone_and_redone_on_postgres() -> None:
    problem = _pg_reachable()
    if problem:
        pytest.skip(f"PostgreSQL unreachable ({problem})")
    name = f"yiyang_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        round_trip(database)
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
