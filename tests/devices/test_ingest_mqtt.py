"""The ingest worker against the real Mosquitto and database: nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import threading
import time

import orjson
import pytest
from sqlalchemy import text

from tests.devices.conftest import Publisher, Scene, register, telemetry_payload, wait_for
from yiyang.db import Database, utcnow

pytestmark = pytest.mark.mqtt


def stored(database: Database) -> int:
    with database.unit_of_work() as session:
        return session.execute(text("SELECT count(*) FROM telemetry")).scalar_one()


def keys(database: Database) -> list[tuple[int, int]]:
    with database.unit_of_work() as session:
        return [
            tuple(row) for row in session.execute(text("SELECT device_id, seq FROM telemetry ORDER BY 1, 2"))
        ]


def stream(scene: Scene, uids: list[str], per_device: int, start: dt.datetime) -> list[tuple[str, bytes]]:
    """Messages from several devices, interleaved as they would arrive."""
    return [
        (
            scene.topic(uid),
            telemetry_payload(
                seq, start + dt.timedelta(seconds=seq), {"8867-4": 60 + seq % 40, "59408-5": 97}
            ),
        )
        for seq in range(per_device)
        for uid in uids
    ]


def test_published_messages_become_rows(
    db: Database, scene: Scene, publisher: Publisher, start_worker
) -> None:  # type: ignore[no-untyped-def]
    # given three registered wearables and a running worker (on SQLite and PostgreSQL)
    ids = register(db, ["WB-1", "WB-2", "WB-3"])
    worker = start_worker(db, scene.settings())
    # when they publish 50 readings each
    publisher.publish(stream(scene, list(ids), 50, utcnow()))
    # then 150 rows are stored, one per message, with their readings
    assert wait_for(lambda: stored(db) == 150), stored(db)
    stats = worker.close()
    assert (stats.stored, stats.readings, stats.duplicates) == (150, 300, 0)
    with db.unit_of_work() as session:
        assert (
            session.execute(
                text("SELECT count(*) FROM telemetry WHERE spo2 = 97 AND heart_rate >= 60")
            ).scalar_one()
            == 150
        )
        assert (
            session.execute(
                text("SELECT count(*) FROM device WHERE online AND last_seen_at IS NOT NULL")
            ).scalar_one()
            == 3
        )


@pytest.mark.postgres
def test_the_same_messages_published_twice_are_stored_once(
    pg_db: Database, scene: Scene, publisher: Publisher, start_worker
) -> None:  # type: ignore[no-untyped-def]
    ids = register(pg_db, ["WB-1", "WB-2"])
    worker = start_worker(pg_db, scene.settings())
    messages = stream(scene, list(ids), 100, utcnow())
    publisher.publish(messages)
    assert wait_for(lambda: stored(pg_db) == 200)
    # when a device (or a bridge) sends the whole lot again
    publisher.publish(messages)
    # then the worker sees them all and stores none of them again
    assert wait_for(lambda: worker.worker.stats.received == 400)
    stats = worker.close()
    assert stats.duplicates == 200
    assert stored(pg_db) == 200
    assert keys(pg_db) == sorted((ids[uid], seq) for uid in ids for seq in range(100))


@pytest.mark.postgres
def test_a_worker_killed_mid_stream_loses_nothing_after_restart(
    pg_db: Database, pg_url: str, scene: Scene, publisher: Publisher, spawn_worker
) -> None:  # type: ignore[no-untyped-def]
    # given a worker process with a persistent session, and 4 devices streaming 150 readings each
    ids = register(pg_db, ["WB-1", "WB-2", "WB-3", "WB-4"])
    settings = scene.settings(batch_size=50, batch_ms=20)
    worker = spawn_worker(pg_url, settings)
    worker.wait_subscribed()
    messages = stream(scene, list(ids), 150, utcnow())
    sender = threading.Thread(target=publisher.publish, args=(messages,), kwargs={"pace": 0.002})
    sender.start()
    # when it is killed with SIGKILL while messages are still arriving
    assert wait_for(lambda: stored(pg_db) >= 50, every=0.01)
    worker.kill()
    before_restart = stored(pg_db)
    sender.join()  # the broker queues the rest for the dead worker's session
    assert stored(pg_db) == before_restart  # nobody else is storing them
    # and started again with the same client id
    restarted = spawn_worker(pg_url, settings)
    restarted.wait_subscribed()
    assert any("session present: True" in line for line in restarted.lines)  # the broker kept it
    # then every message is stored exactly once: the unacknowledged ones were redelivered
    assert wait_for(lambda: stored(pg_db) == 600, timeout=20), stored(pg_db)
    time.sleep(0.3)
    assert restarted.terminate() == 0
    assert keys(pg_db) == sorted((ids[uid], seq) for uid in ids for seq in range(150))
    assert before_restart < 600


def test_malformed_and_unknown_device_payloads_are_quarantined_and_the_worker_goes_on(
    db: Database, scene: Scene, publisher: Publisher, start_worker
) -> None:  # type: ignore[no-untyped-def]
    register(db, ["WB-1"])
    worker = start_worker(db, scene.settings())
    now = utcnow()
    publisher.publish(
        [
            (scene.topic("WB-1"), b"\xde\xad\xbe\xef"),
            (
                scene.topic("WB-1"),
                orjson.dumps({"seq": 1, "time": now.isoformat(), "readings": {"8867-4": 999}}),
            ),
            (scene.topic("STRANGER-9"), telemetry_payload(1, now)),
            (
                scene.topic("WB-1", "event"),
                orjson.dumps({"seq": 2, "time": now.isoformat(), "event": "earthquake"}),
            ),
            (scene.topic("WB-1"), telemetry_payload(3, now)),
            (
                scene.topic("WB-1", "event"),
                orjson.dumps({"seq": 4, "time": now.isoformat(), "event": "fall"}),
            ),
        ]
    )
    assert wait_for(lambda: worker.worker.stats.received == 6)
    stats = worker.close()
    # then the good reading and the fall are stored, the four others wait in quarantine
    assert (stats.stored, stats.events) == (1, 1)
    assert stats.quarantined == {
        "payload.not_json": 1,
        "reading.out_of_range": 1,
        "device.unknown": 1,
        "event.unknown": 1,
    }
    with db.unit_of_work() as session:
        rows = session.execute(
            text("SELECT reason, device_uid, topic FROM telemetry_quarantine ORDER BY reason")
        ).all()
        assert [row.reason for row in rows] == [
            "device.unknown",
            "event.unknown",
            "payload.not_json",
            "reading.out_of_range",
        ]
        assert {row.device_uid for row in rows} == {"WB-1", "STRANGER-9"}
        assert session.execute(text("SELECT kind FROM device_event")).scalar_one() == "fall"


def test_an_event_that_cannot_be_stored_again_does_not_stop_the_worker(
    db: Database, scene: Scene, publisher: Publisher, start_worker
) -> None:  # type: ignore[no-untyped-def]
    # given a running worker and a radar whose fall detail is nested 300 levels deep (2 KB)
    register(db, ["RAD-1"])
    worker = start_worker(db, scene.settings())
    now = utcnow()
    nested = b'{"a":' * 300 + b"1" + b"}" * 300
    poison = b'{"seq": 1, "time": "%s", "event": "fall", "detail": %s}' % (now.isoformat().encode(), nested)
    # when it publishes that and then a good reading
    publisher.publish(
        [(scene.topic("RAD-1", "event"), poison), (scene.topic("RAD-1"), telemetry_payload(2, now))]
    )
    # then the bad one waits in quarantine, the good one is stored, and the worker goes on
    assert wait_for(lambda: worker.worker.stats.received == 2)
    stats = worker.close()
    assert stats.stored == 1 and stats.quarantined == {"detail.invalid": 1}
    with db.unit_of_work() as session:
        assert (
            session.execute(text("SELECT reason FROM telemetry_quarantine")).scalar_one() == "detail.invalid"
        )
