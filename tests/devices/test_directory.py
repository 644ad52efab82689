"""The ingest's device directory: cached, yet a retired or newly registered device is seen promptly."""

from __future__ import annotations

import datetime as dt

import orjson
from sqlalchemy import event

from tests.devices.conftest import register
from tests.devices.test_storage import LIMITS, NOW, prepare
from yiyang.db import Database
from yiyang.devices import service
from yiyang.devices.ingest import Delivery, DeviceDirectory, parse_deliveries, store_batch
from yiyang.devices.telemetry import Channel


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def heart_rate(uid: str, seq: int) -> Delivery:
    payload = orjson.dumps({"seq": seq, "time": NOW.isoformat(), "readings": {"8867-4": 72}})
    return Delivery(uid, Channel.telemetry, payload, NOW, "mqtt", f"t/v1/{uid}/telemetry")


def test_a_device_retired_while_cached_is_refused_from_the_next_check_on(db: Database) -> None:
    # given the worker's directory knows the wearable as active (admission "none": the broker
    # lets anything publish, so the directory is the only gate)
    ids = register(db, ["WB-1"])
    prepare(db, [NOW.date()])
    ticks = Ticks()
    directory = DeviceDirectory(clock=ticks)
    with db.unit_of_work() as session:
        assert directory.resolve(session, ["WB-1"])["WB-1"].active
    # when an administrator retires it (in the web app), and it publishes a few seconds later
    with db.unit_of_work() as session:
        service.retire_device(session, ids["WB-1"], NOW - dt.timedelta(minutes=1))
    ticks.now += 6
    batch = [heart_rate("WB-1", 1)]
    with db.unit_of_work() as session:
        devices = directory.resolve(session, ["WB-1"])
        outcome, _ = store_batch(session, batch, parse_deliveries(batch, NOW, LIMITS), devices)
    # then the message is refused as from a retired device, not stored
    assert (outcome.stored, dict(outcome.quarantined)) == (0, {"device.retired": 1})


def test_a_device_registered_after_its_first_message_is_accepted_from_the_next_check_on(
    db: Database,
) -> None:
    # given a device that published before it was registered (remembered as unknown)
    prepare(db, [NOW.date()])
    ticks = Ticks()
    directory = DeviceDirectory(clock=ticks)
    with db.unit_of_work() as session:
        assert directory.resolve(session, ["WB-9"]) == {}
    # when it is registered, then it is known a few seconds later
    register(db, ["WB-9"])
    ticks.now += 6
    with db.unit_of_work() as session:
        assert directory.resolve(session, ["WB-9"])["WB-9"].active


def test_the_directory_checks_at_most_once_per_interval(db: Database) -> None:
    # given a cached device; when batches come more often than the check interval
    register(db, ["WB-1"])
    ticks = Ticks()
    directory = DeviceDirectory(clock=ticks)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            with db.unit_of_work() as session:
                directory.resolve(session, ["WB-1"])
            ticks.now += 1
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    # then the device is read once and the version checked once in those 5 seconds
    reads = [s for s in statements if "FROM device" in s]
    checks = [s for s in statements if "FROM cache_version" in s]
    assert (len(reads), len(checks)) == (1, 1), statements
