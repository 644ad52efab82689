"""End to end on the real broker and PostgreSQL: a fall published over MQTT becomes an alert in
the worker's batch, and the escalation job moves it up its chain five minutes later."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import orjson
import pytest
from sqlalchemy import select

from tests.alerts.conftest import Scene, build_scene
from tests.devices.conftest import Broker, Publisher, wait_for
from yiyang.alerts.channels import RecordingGateway
from yiyang.alerts.engine import AlertRules, escalation_job
from yiyang.alerts.models import Alert, AlertState, InboxItem
from yiyang.db import Database, utcnow
from yiyang.devices.ingest import IngestSettings, IngestWorker

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]


def test_a_published_fall_becomes_an_alert_and_escalates(
    pg_db: Database, broker: Broker, gateway: RecordingGateway
) -> None:
    scene: Scene = build_scene(pg_db, gateway)
    root = f"yytest-{uuid.uuid4().hex[:10]}"
    settings = IngestSettings(
        broker_host=broker.host, broker_port=broker.port, client_id=f"{root}-w1", topic_root=root, share_group=root,
        session_expiry_s=60, batch_ms=20, batch_size=200, stats_every_s=3600,
    )  # fmt: skip
    rules = AlertRules()
    worker = IngestWorker(pg_db, settings, rules)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    publisher = Publisher(broker)
    try:
        assert worker._connected.wait(10)
        time.sleep(0.3)  # SUBACK
        # when the radar publishes a fall (and, before it, an ordinary presence event)
        now = utcnow()
        started = time.monotonic()
        publisher.publish(
            [
                (
                    f"{root}/v1/RADAR-1/event",
                    orjson.dumps({"seq": 1, "time": now.isoformat(), "event": "presence"}),
                ),
                (
                    f"{root}/v1/RADAR-1/event",
                    orjson.dumps({"seq": 2, "time": now.isoformat(), "event": "fall"}),
                ),
            ]
        )

        def raised() -> bool:
            with pg_db.unit_of_work() as session:
                return session.scalar(select(Alert.id).where(Alert.kind == "fall")) is not None

        # then the alert is there within the batch, well inside half a second of the broker having it
        assert wait_for(raised, timeout=10)
        assert time.monotonic() - started < 5
    finally:
        publisher.close()
        stop.set()
        thread.join(15)
        broker.purge_session(settings.client_id)
    with pg_db.unit_of_work() as session:
        (alert,) = session.scalars(select(Alert))
        assert (alert.resident_id, alert.state) == (scene.resident_id, AlertState.open)
        first = {item.user_id for item in session.scalars(select(InboxItem))}
        raised_at = alert.raised_at
    assert first == {scene.grid_worker, scene.daughter}
    # and five minutes on, the escalation job tells the family-doctor team
    assert escalation_job(pg_db, raised_at + dt.timedelta(minutes=5))["steps"] == 1
    with pg_db.unit_of_work() as session:
        assert session.scalar(select(Alert.state)) == AlertState.escalated
        assert scene.doctor in {item.user_id for item in session.scalars(select(InboxItem))}
    assert rules.stats.raised == 1
