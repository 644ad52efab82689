"""Fixtures for device tests: the real Mosquitto broker, publishers, ingest workers, devices.

MQTT tests are marked ``mqtt``. Under CI (CI=true) an unreachable broker fails them; on a
developer's machine they skip with a message saying how to run them. Every test uses its own
topic root, share group and client ids, so parallel runs on one broker do not see each other,
and the persistent sessions a test creates are removed from the broker afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.conftest import IN_CI
from yiyang.db import Database
from yiyang.devices import service
from yiyang.devices.ingest import IngestSettings, IngestWorker, WorkerStats
from yiyang.devices.models import DeviceKind

MQTT_HOST = os.environ.get("YIYANG_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("YIYANG_TEST_MQTT_PORT", "1883"))


def _broker_problem() -> str | None:
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda *_args: connected.set()
    try:
        client.connect(MQTT_HOST, MQTT_PORT, keepalive=5)
        client.loop_start()
        ok = connected.wait(3)
        client.disconnect()
        client.loop_stop()
        return None if ok else "no CONNACK within 3 s"
    except OSError as error:
        return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class Broker:
    host: str
    port: int

    def purge_session(self, client_id: str) -> None:
        """Forget a persistent session: connect clean with a zero expiry, then leave."""
        connected = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.on_connect = lambda *_args: connected.set()
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 0
        client.connect(self.host, self.port, clean_start=True, properties=properties)
        client.loop_start()
        connected.wait(3)
        client.disconnect()
        client.loop_stop()


@pytest.fixture(scope="session")
def broker() -> Broker:
    problem = _broker_problem()
    if problem:
        message = f"MQTT broker unreachable at {MQTT_HOST}:{MQTT_PORT} ({problem})"
        if IN_CI:
            pytest.fail(message + " - required under CI")
        pytest.skip(message + "; start Mosquitto or set YIYANG_TEST_MQTT_HOST/PORT to run these tests")
    return Broker(MQTT_HOST, MQTT_PORT)


class Publisher:
    """A device-side client that publishes QoS 1 and waits until the broker has every message."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        # Bounded in flight: paho's 16-bit message ids must not wrap under our feet.
        self.client.max_inflight_messages_set(500)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, items: Sequence[tuple[str, bytes]], pace: float = 0.0) -> None:
        infos = []
        for topic, payload in items:
            infos.append(self.client.publish(topic, payload, qos=1))
            if pace:
                time.sleep(pace)
        for info in infos:
            info.wait_for_publish(10)
            assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    client = Publisher(broker)
    yield client
    client.close()


@dataclass
class Scene:
    """One test's private corner of the broker."""

    root: str
    broker: Broker
    client_ids: list[str] = field(default_factory=list)

    def client_id(self, name: str = "w1") -> str:
        client_id = f"{self.root}-{name}"
        if client_id not in self.client_ids:
            self.client_ids.append(client_id)
        return client_id

    def settings(self, name: str = "w1", **overrides: Any) -> IngestSettings:
        values: dict[str, Any] = {
            "broker_host": self.broker.host,
            "broker_port": self.broker.port,
            "client_id": self.client_id(name),
            "topic_root": self.root,
            "share_group": self.root,
            "session_expiry_s": 300,
            "batch_ms": 20,
            "batch_size": 200,
            "stats_every_s": 3600,
        }
        values.update(overrides)
        return IngestSettings(**values)

    def topic(self, uid: str, channel: str = "telemetry") -> str:
        return f"{self.root}/v1/{uid}/{channel}"


@pytest.fixture
def scene(broker: Broker) -> Iterator[Scene]:
    scene = Scene(f"yytest-{uuid.uuid4().hex[:10]}", broker)
    yield scene
    for client_id in scene.client_ids:
        broker.purge_session(client_id)


class RunningWorker:
    """An ingest worker on a thread of this process, stopped cleanly at the end."""

    def __init__(self, database: Database, settings: IngestSettings) -> None:
        self.worker = IngestWorker(database, settings)
        self.stop = threading.Event()
        self.result: WorkerStats | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.worker._connected.wait(10), "worker did not connect"
        time.sleep(0.2)  # SUBACK

    def _run(self) -> None:
        self.result = self.worker.run(self.stop)

    def close(self) -> WorkerStats:
        self.stop.set()
        self.thread.join(15)
        assert self.result is not None
        return self.result


@pytest.fixture
def start_worker() -> Iterator[Callable[[Database, IngestSettings], RunningWorker]]:
    running: list[RunningWorker] = []

    def start(database: Database, settings: IngestSettings) -> RunningWorker:
        worker = RunningWorker(database, settings)
        running.append(worker)
        return worker

    yield start
    for worker in running:
        if worker.result is None:
            worker.close()


class WorkerProcess:
    """The ingest worker (``yiyang ingest``) in a child process, for crash tests."""

    def __init__(self, database_url: str, settings: IngestSettings) -> None:
        env = dict(os.environ)
        env.update(
            {
                "YIYANG_DATABASE_URL": database_url,
                "YIYANG_INGEST_BROKER_HOST": settings.broker_host,
                "YIYANG_INGEST_BROKER_PORT": str(settings.broker_port),
                "YIYANG_INGEST_TOPIC_ROOT": settings.topic_root,
                "YIYANG_INGEST_SHARE_GROUP": settings.share_group,
                "YIYANG_INGEST_SESSION_EXPIRY_S": str(settings.session_expiry_s),
                "YIYANG_INGEST_BATCH_MS": str(settings.batch_ms),
                "YIYANG_INGEST_BATCH_SIZE": str(settings.batch_size),
            }
        )
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "yiyang.devices.ingest",
                "--no-migrate",
                "--client-id",
                settings.client_id,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip())

    def wait_subscribed(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any("subscribed to" in line for line in self.lines):
                time.sleep(0.2)  # SUBACK
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("worker did not subscribe:\n" + "\n".join(self.lines[-20:]))

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no flush, no PUBACK, no goodbye
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.terminate()
        return self.process.wait(15)


@pytest.fixture
def spawn_worker() -> Iterator[Callable[[str, IngestSettings], WorkerProcess]]:
    processes: list[WorkerProcess] = []

    def spawn(database_url: str, settings: IngestSettings) -> WorkerProcess:
        process = WorkerProcess(database_url, settings)
        processes.append(process)
        return process

    yield spawn
    for process in processes:
        if process.process.poll() is None:
            process.kill()


def register(
    database: Database, uids: Sequence[str], kind: DeviceKind = DeviceKind.wearable
) -> dict[str, int]:
    ids = {}
    with database.unit_of_work() as session:
        for uid in uids:
            device, _secret = service.register_device(session, uid, kind)
            ids[uid] = device.id
    return ids


def telemetry_payload(seq: int, at: dt.datetime, readings: dict[str, Any] | None = None) -> bytes:
    readings = readings if readings is not None else {"8867-4": 72, "59408-5": 97}
    return orjson.dumps({"seq": seq, "time": at.isoformat(), "readings": readings})


def wait_for(predicate: Callable[[], bool], timeout: float = 15, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()
