"""The telemetry store: idempotent bulk writes, quarantine, rollups, partitions, retention."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from sqlalchemy import func, select, text

from tests.devices.conftest import register
from yiyang.db import Database, utcnow
from yiyang.devices import storage
from yiyang.devices.ingest import (
    Delivery,
    DeviceDirectory,
    IngestSettings,
    Maintenance,
    parse_deliveries,
    store_batch,
)
from yiyang.devices.models import Device, DeviceEvent, TelemetryHour, TelemetryMinute, TelemetryQuarantine
from yiyang.devices.telemetry import READINGS, Channel, TelemetryMessage, TimeLimits

NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
LIMITS = TimeLimits(max_age=dt.timedelta(days=3650))


def reading(seq: int, at: dt.datetime, **columns: float) -> TelemetryMessage:
    values = tuple(columns.get(spec.column) for spec in READINGS)
    return TelemetryMessage(seq, at, values)


def count(database: Database, table: str) -> int:
    with database.unit_of_work() as session:
        return session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()


def prepare(database: Database, days: list[dt.date]) -> None:
    with database.unit_of_work() as session:
        for day in days:
            storage.ensure_partitions(session, day, 1)


def test_a_row_written_twice_is_stored_once_and_reported_as_old(db: Database) -> None:
    ids = register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    rows = [
        storage.telemetry_row(ids["WB-1"], reading(seq, NOW + dt.timedelta(seconds=seq), heart_rate=70 + seq))
        for seq in range(5)
    ]
    with db.unit_of_work() as session:
        assert storage.write_telemetry(session, rows[:3]) == [True, True, True]
    # when the batch arrives again with two new rows (a redelivery after a crash)
    with db.unit_of_work() as session:
        fresh = storage.write_telemetry(session, rows)
    # then only the new rows are new, and the table has one row per message
    assert fresh == [False, False, False, True, True]
    assert count(db, "telemetry") == 5


def test_a_repeat_inside_one_batch_counts_once(db: Database) -> None:
    ids = register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    row = storage.telemetry_row(ids["WB-1"], reading(1, NOW, heart_rate=70))
    with db.unit_of_work() as session:
        assert storage.write_telemetry(session, [row, row]) == [True, False]
    assert count(db, "telemetry") == 1


def test_writing_marks_the_minutes_of_new_rows_for_the_rollups_and_no_others(db: Database) -> None:
    # given a minute already stored and rolled up
    ids = register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    first = storage.telemetry_row(ids["WB-1"], reading(1, NOW + dt.timedelta(seconds=10), heart_rate=70))
    with db.unit_of_work() as session:
        storage.write_telemetry(session, [first])
    with db.unit_of_work() as session:
        pending = session.scalars(select(storage.TelemetryPendingMinute.bucket)).all()
        assert [value.replace(tzinfo=None) for value in pending] == [NOW.replace(second=0, tzinfo=None)]
        session.execute(text("DELETE FROM telemetry_pending_minute"))
    # when the same row comes again with one of the next minute
    later = storage.telemetry_row(
        ids["WB-1"], reading(2, NOW + dt.timedelta(minutes=1, seconds=3), heart_rate=72)
    )
    with db.unit_of_work() as session:
        assert storage.write_telemetry(session, [first, later]) == [False, True]
    # then only the new row's minute waits for its rollup
    with db.unit_of_work() as session:
        pending = session.scalars(select(storage.TelemetryPendingMinute.bucket)).all()
    assert [value.replace(tzinfo=None) for value in pending] == [
        (NOW + dt.timedelta(minutes=1)).replace(second=0, tzinfo=None)
    ]


def test_a_device_whose_counter_restarted_is_not_mistaken_for_a_duplicate(db: Database) -> None:
    # given a wearable that rebooted and counts from seq 0 again, an hour later
    ids = register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    before = storage.telemetry_row(ids["WB-1"], reading(0, NOW, heart_rate=70))
    after = storage.telemetry_row(ids["WB-1"], reading(0, NOW + dt.timedelta(hours=1), heart_rate=75))
    with db.unit_of_work() as session:
        assert storage.write_telemetry(session, [before]) == [True]
        assert storage.write_telemetry(session, [after]) == [True]
    assert count(db, "telemetry") == 2


def deliveries(uid: str, payloads: list[tuple[Channel, bytes]]) -> list[Delivery]:
    return [
        Delivery(uid, channel, payload, NOW, "mqtt", f"t/v1/{uid}/{channel.value}")
        for channel, payload in payloads
    ]


def test_a_mixed_batch_stores_what_is_good_and_quarantines_the_rest(db: Database) -> None:
    ids = register(db, ["MAT-1"])
    prepare(db, [NOW.date()])
    good = orjson.dumps(
        {"seq": 1, "time": NOW.isoformat(), "readings": {"8867-4": 61, "9279-1": 15}, "battery": 77}
    )
    event = orjson.dumps({"seq": 2, "time": NOW.isoformat(), "event": "out_of_bed"})
    batch = deliveries(
        "MAT-1", [(Channel.telemetry, good), (Channel.telemetry, b"\x00garbage"), (Channel.event, event)]
    )
    batch.append(Delivery("MAT-404", Channel.telemetry, good, NOW, "mqtt", "t/v1/MAT-404/telemetry"))
    batch.append(Delivery(None, None, good, NOW, "mqtt", "t/v1/no such/telemetry"))
    parsed = parse_deliveries(batch, NOW, LIMITS)
    with db.unit_of_work() as session:
        devices = DeviceDirectory().resolve(session, [d.uid for d in batch])
        outcome, written = store_batch(session, batch, parsed, devices)
    # then the good message and the event are stored, the three others quarantined with reasons
    assert (outcome.stored, outcome.readings, outcome.events) == (1, 2, 1)
    assert outcome.quarantined == {"payload.not_json": 1, "device.unknown": 1, "topic.invalid": 1}
    with db.unit_of_work() as session:
        reasons = dict(
            session.execute(select(TelemetryQuarantine.reason, TelemetryQuarantine.device_uid)).all()
        )
        assert reasons == {"payload.not_json": "MAT-1", "device.unknown": "MAT-404", "topic.invalid": None}
        kept = session.scalar(
            select(TelemetryQuarantine.payload).where(TelemetryQuarantine.reason == "payload.not_json")
        )
        assert kept == b"\x00garbage"
        assert session.scalar(select(DeviceEvent.kind)) == "out_of_bed"
        device = session.get(Device, ids["MAT-1"])
        assert (device.battery, device.online, device.last_seen_at) == (77, True, NOW)
    assert [item.device_id for item in written] == [ids["MAT-1"]]


def test_rules_see_only_what_is_new(db: Database) -> None:
    register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    payloads = [
        (Channel.telemetry, orjson.dumps({"seq": s, "time": NOW.isoformat(), "readings": {"8867-4": 80}}))
        for s in (1, 2)
    ]
    seen: list[int] = []

    def rules(_session, batch) -> None:  # type: ignore[no-untyped-def]
        seen.extend(item.message.seq for item in batch.telemetry)

    for payload_set in (payloads[:1], payloads):
        batch = deliveries("WB-1", payload_set)
        with db.unit_of_work() as session:
            devices = DeviceDirectory().resolve(session, ["WB-1"])
            store_batch(session, batch, parse_deliveries(batch, NOW, LIMITS), devices, rules=rules)
    assert seen == [1, 2]


def test_rollups_summarise_each_minute_and_hour_and_follow_late_data(db: Database) -> None:
    ids = register(db, ["WB-1"])
    device = ids["WB-1"]
    prepare(db, [NOW.date()])
    start = NOW.replace(minute=0)
    rows = [
        storage.telemetry_row(device, reading(1, start + dt.timedelta(seconds=10), heart_rate=60, spo2=95)),
        storage.telemetry_row(device, reading(2, start + dt.timedelta(seconds=40), heart_rate=80)),
        storage.telemetry_row(device, reading(3, start + dt.timedelta(minutes=1, seconds=5), heart_rate=90)),
    ]
    with db.unit_of_work() as session:
        storage.write_telemetry(session, rows)
        storage.mark_pending_minutes(session, [row[0] for row in rows])
    with db.unit_of_work() as session:
        report = storage.roll_up_pending(session, NOW)
    assert (report.minutes, report.hours) == (2, 1)
    with db.unit_of_work() as session:
        minute = session.get(TelemetryMinute, (device, "8867-4", start.replace(tzinfo=None)))
        assert (minute.n, minute.mean, minute.low, minute.high) == (2, 70.0, 60.0, 80.0)
        hour = session.get(TelemetryHour, (device, "8867-4", start.replace(tzinfo=None)))
        assert (hour.n, round(hour.mean, 3), hour.low, hour.high) == (3, round(230 / 3, 3), 60.0, 90.0)
        assert session.get(TelemetryHour, (device, "59408-5", start.replace(tzinfo=None))).n == 1
        assert session.scalar(select(func.count()).select_from(TelemetryMinute)) == 3
    # when a gateway delivers a late reading for the first minute
    late = storage.telemetry_row(device, reading(4, start + dt.timedelta(seconds=50), heart_rate=100))
    with db.unit_of_work() as session:
        storage.write_telemetry(session, [late])
        storage.mark_pending_minutes(session, [late[0]])
        storage.roll_up_pending(session, NOW)
    # then that minute and its hour are recomputed, not appended to
    with db.unit_of_work() as session:
        minute = session.get(TelemetryMinute, (device, "8867-4", start.replace(tzinfo=None)))
        assert (minute.n, minute.mean, minute.high) == (3, 80.0, 100.0)
        assert session.get(TelemetryHour, (device, "8867-4", start.replace(tzinfo=None))).n == 4
        assert session.scalar(select(func.count()).select_from(storage.TelemetryPendingMinute)) == 0


def test_a_minute_still_filling_is_left_for_later(db: Database) -> None:
    ids = register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    row = storage.telemetry_row(ids["WB-1"], reading(1, NOW - dt.timedelta(seconds=5), heart_rate=70))
    with db.unit_of_work() as session:
        storage.write_telemetry(session, [row])
        storage.mark_pending_minutes(session, [row[0]])
        assert storage.roll_up_pending(session, NOW).minutes == 0
    assert count(db, "telemetry_pending_minute") == 1


def test_retention_removes_old_raw_data_before_rollups(db: Database) -> None:
    ids = register(db, ["WB-1"])
    today = NOW.date()
    old_day = NOW - dt.timedelta(days=40)
    prepare(db, [old_day.date(), today])
    rows = [
        storage.telemetry_row(ids["WB-1"], reading(1, old_day, heart_rate=70)),
        storage.telemetry_row(ids["WB-1"], reading(2, NOW, heart_rate=71)),
    ]
    with db.unit_of_work() as session:
        storage.write_telemetry(session, rows)
        storage.mark_pending_minutes(session, [row[0] for row in rows])
        storage.roll_up_pending(session, NOW + dt.timedelta(minutes=5))
    with db.unit_of_work() as session:
        removed = storage.apply_retention(
            session, today, storage.RetentionPolicy(raw_days=30, minute_days=90)
        )
    # then the raw row from 40 days ago is gone, its rollups stay
    assert removed["telemetry"] == 1
    assert count(db, "telemetry") == 1
    assert count(db, "telemetry_minute") == 2
    assert count(db, "telemetry_hour") == 2


def _partition_count(session) -> int:  # type: ignore[no-untyped-def]
    return sum(
        session.execute(text(f"SELECT count(*) FROM pg_partition_tree('{table}') WHERE isleaf")).scalar_one()
        for table in storage.PARTITIONED_TABLES
    )


@pytest.mark.postgres
def test_partitions_are_made_ahead_and_finished_days_are_compacted(pg_db: Database) -> None:
    ids = register(pg_db, ["WB-1"])
    day = dt.date(2026, 11, 20)
    with pg_db.unit_of_work() as session:
        before = _partition_count(session)  # earlier tests may have made some of these days
        made = storage.ensure_partitions(session, day, 3)
        assert storage.ensure_partitions(session, day, 3) == 0  # already there
        assert made == _partition_count(session) - before
    with pg_db.unit_of_work() as session:
        for table in storage.PARTITIONED_TABLES:  # raw and minute tables, three days each
            days = set(
                session.execute(text(f"SELECT relid::text FROM pg_partition_tree('{table}')")).scalars()
            )
            assert {f"{table}_p2026112{d}" for d in (0, 1, 2)} <= days
    with pg_db.unit_of_work() as session:
        names = set(session.execute(text("SELECT relid::text FROM pg_partition_tree('telemetry')")).scalars())
        assert {"telemetry_p20261120", "telemetry_p20261121", "telemetry_p20261122"} <= names
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        rows = [
            storage.telemetry_row(ids["WB-1"], reading(s, start + dt.timedelta(seconds=s), heart_rate=70))
            for s in range(500)
        ]
        storage.write_telemetry(session, rows)
    compacted = storage.compact_partitions(pg_db.engine, dt.date(2026, 11, 21))
    assert "telemetry_p20261120" in compacted
    assert "telemetry_p20261121" not in compacted
    assert storage.compact_partitions(pg_db.engine, dt.date(2026, 11, 21)) == []  # done once
    assert count(pg_db, "telemetry") == 500
    with pg_db.unit_of_work() as session:
        assert storage.telemetry_bytes(session) > 0


def test_maintenance_prepares_partitions_rolls_up_and_retains(db: Database) -> None:
    # given a reading stored two minutes ago and marked for rollup
    ids = register(db, ["WB-1"])
    now = utcnow()
    settings = IngestSettings(raw_days=30)
    maintenance = Maintenance(db, settings, storage.PartitionKeeper())
    maintenance.daily(now)  # today's partition exists before anything is written
    row = storage.telemetry_row(ids["WB-1"], reading(1, now - dt.timedelta(minutes=2), heart_rate=66))
    with db.unit_of_work() as session:
        storage.write_telemetry(session, [row])
        storage.mark_pending_minutes(session, [row[0]])
    # when the maintenance worker ticks
    maintenance.tick(now)
    # then the partitions for the accepted window and the days ahead exist, and the minute is rolled up
    assert count(db, "telemetry_minute") == 1
    assert count(db, "telemetry_pending_minute") == 0
    if db.engine.dialect.name == "postgresql":
        with db.unit_of_work() as session:
            names = set(
                session.execute(text("SELECT relid::text FROM pg_partition_tree('telemetry')")).scalars()
            )
        for offset in (-7, 0, 3):
            assert f"telemetry_p{(now + dt.timedelta(days=offset)):%Y%m%d}" in names
