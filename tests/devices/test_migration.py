"""Migration 0014 keys telemetry by time first, on both engines, and can be undone."""

from __future__ import annotations

import datetime as dt

from alembic import command
from sqlalchemy import inspect, text

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


def test_the_migration_can_be_undone_and_redone(unmigrated_db: Database) -> None:
    round_trip(unmigrated_db)
