"""Broker admission: a private Mosquitto with the dynamic-security plugin admits only registered
devices, each on its own topics, kept in step by the registry.

Each test module run starts its own mosquitto on a free port with a generated configuration, so
the machine's main broker is never touched. Marked ``mqtt``: without the mosquitto binary or the
plugin the tests skip (fail under CI).
"""

from __future__ import annotations

import datetime as dt
import getpass
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.conftest import IN_CI
from tests.devices.conftest import wait_for
from yiyang.access.crypto import generate_key, parse_field_keys
from yiyang.db import Database
from yiyang.devices import broker, service
from yiyang.devices.models import BrokerAdmissionPending, DeviceKind

pytestmark = pytest.mark.mqtt

PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
T0 = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)
ROOT = "yiyang"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class DynsecBroker:
    port: int
    admin_password: str

    def settings(self, **overrides: object) -> broker.BrokerSettings:
        values: dict[str, object] = {
            "admission": "mosquitto-dynsec",
            "host": "127.0.0.1",
            "port": self.port,
            "admin_username": "admin",
            "admin_password": SecretStr(self.admin_password),
            "timeout_s": 3.0,
        }
        values.update(overrides)
        return broker.BrokerSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dynsec_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DynsecBroker]:
    problem = None
    if not Path(MOSQUITTO).exists() or shutil.which("mosquitto_ctrl") is None:
        problem = "mosquitto or mosquitto_ctrl not installed"
    elif not PLUGIN.exists():
        problem = f"dynamic-security plugin not found at {PLUGIN}"
    if problem:
        if IN_CI:
            pytest.fail(problem + " - required under CI")
        pytest.skip(problem + "; install mosquitto 2.x to run the broker admission tests")
    folder = tmp_path_factory.mktemp("dynsec")
    port = _free_port()
    admin_password = "admin-" + generate_key()[:16]
    subprocess.run(
        ["mosquitto_ctrl", "dynsec", "init", str(folder / "dynsec.json"), "admin", admin_password],
        check=True,
        capture_output=True,
    )
    config = folder / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        "persistence false\n"
        # Run as the user running the tests (as root, mosquitto would switch to its own user and
        # could not read the test's private folder).
        f"user {getpass.getuser()}\n"
        f"plugin {PLUGIN}\n"
        f"plugin_opt_config_file {folder / 'dynsec.json'}\n"
    )
    process = subprocess.Popen(
        [MOSQUITTO, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield DynsecBroker(port, admin_password)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def admission(dynsec_broker: DynsecBroker) -> Iterator[broker.Admission]:
    keyring = parse_field_keys(f"k1:{generate_key()}")
    adapter = broker.MosquittoDynsec(dynsec_broker.settings())
    chosen = broker.Admission(adapter, ROOT, keyring)
    previous = broker.use_admission(chosen)
    yield chosen
    broker.use_admission(previous)
    adapter.close()


class Device:
    """A device-side MQTT client: connects with its uid and secret, remembers what happened."""

    def __init__(self, port: int, uid: str, secret: str, client_id: str | None = None) -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or uid, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(uid, secret)
        self.connack: object = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_args: self.disconnected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, reason_code: object, _p: object) -> None:
        self.connack = reason_code
        if not reason_code.is_failure:  # type: ignore[attr-defined]
            self.connected.set()
        else:
            self.disconnected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Listener:
    """Sees everything published under the root (an administrator may subscribe to '#')."""

    def __init__(self, port: int, password: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("admin", password)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.on_message = lambda _c, _u, message: self.messages.append(
            (message.topic, message.payload)
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{ROOT}/#", qos=1)
        assert subscribed.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_grants_name_only_the_devices_own_topics() -> None:
    grant = broker.device_grant("WB-1", DeviceKind.wearable, "yy")
    assert {acl.topic for acl in grant.acls} == {
        "yy/v1/WB-1/telemetry",
        "yy/v1/WB-1/event",
        "yy/v1/WB-1/status",
    }
    assert all(acl.acltype == "publishClientSend" for acl in grant.acls)
    terminal = broker.device_grant("T-1", DeviceKind.terminal, "yy")
    assert ("subscribeLiteral", "yy/v1/T-1/command") in {(acl.acltype, acl.topic) for acl in terminal.acls}
    assert not any("+" in acl.topic or "#" in acl.topic for acl in terminal.acls)


def test_a_registered_device_publishes_only_on_its_own_topics_and_is_cut_off_when_retired(
    sqlite_db: Database, dynsec_broker: DynsecBroker, admission: broker.Admission
) -> None:
    # given two registered devices
    with sqlite_db.unit_of_work() as session:
        own, own_secret = service.register_device(session, "WB-A1", DeviceKind.wearable, now=T0)
        other, _ = service.register_device(session, "WB-B2", DeviceKind.wearable, now=T0)
        own_id = own.id
    listener = Listener(dynsec_broker.port, dynsec_broker.admin_password)
    device = Device(dynsec_broker.port, "WB-A1", own_secret)
    try:
        # when the device connects and publishes on its own topic and on the other device's
        assert device.connected.wait(5), f"refused: {device.connack}"
        device.client.publish(f"{ROOT}/v1/WB-A1/telemetry", b'{"own": 1}', qos=1).wait_for_publish(5)
        device.client.publish(f"{ROOT}/v1/WB-B2/telemetry", b'{"forged": 1}', qos=1).wait_for_publish(5)
        device.client.publish(f"{ROOT}/v1/WB-A1/event", b'{"own": 2}', qos=1).wait_for_publish(5)
        # then only its own messages are delivered
        assert wait_for(lambda: len(listener.messages) >= 2, timeout=5)
        time.sleep(0.3)
        assert [topic for topic, _ in listener.messages] == [
            f"{ROOT}/v1/WB-A1/telemetry",
            f"{ROOT}/v1/WB-A1/event",
        ]

        # when the device is retired, its live connection is cut and it cannot come back
        with sqlite_db.unit_of_work() as session:
            service.retire_device(session, own_id, T0 + dt.timedelta(days=1))
        assert device.disconnected.wait(5)
        again = Device(dynsec_broker.port, "WB-A1", own_secret)
        assert again.disconnected.wait(5) and again.connack is not None and again.connack.is_failure  # type: ignore[attr-defined]
        again.close()
    finally:
        device.close()
        listener.close()
    assert other.uid not in {topic.split("/")[2] for topic, _ in listener.messages}


def test_unknown_clients_wrong_secrets_and_borrowed_client_ids_are_refused(
    sqlite_db: Database, dynsec_broker: DynsecBroker, admission: broker.Admission
) -> None:
    with sqlite_db.unit_of_work() as session:
        _, secret = service.register_device(session, "MT-1", DeviceKind.mattress, now=T0)
    for uid, password, client_id in [
        ("nobody", "anything", "nobody"),  # not registered
        ("MT-1", "not-the-secret", "MT-1"),  # wrong secret
        ("MT-1", secret, "someone-else"),  # the device's credentials under another client id
    ]:
        client = Device(dynsec_broker.port, uid, password, client_id)
        assert client.disconnected.wait(5)
        assert client.connack is not None and client.connack.is_failure  # type: ignore[attr-defined]
        client.close()
    ok = Device(dynsec_broker.port, "MT-1", secret)
    assert ok.connected.wait(5)
    ok.close()


def test_a_rotated_secret_replaces_the_old_password(
    sqlite_db: Database, dynsec_broker: DynsecBroker, admission: broker.Admission
) -> None:
    with sqlite_db.unit_of_work() as session:
        device, old = service.register_device(session, "BP-R1", DeviceKind.bp_meter, now=T0)
        _, new = service.rotate_secret(session, device.id, T0)
    stale = Device(dynsec_broker.port, "BP-R1", old)
    assert stale.disconnected.wait(5) and stale.connack.is_failure  # type: ignore[attr-defined]
    stale.close()
    fresh = Device(dynsec_broker.port, "BP-R1", new)
    assert fresh.connected.wait(5)
    fresh.close()


def test_changes_made_while_the_broker_is_away_are_queued_and_synced_later(
    sqlite_db: Database, dynsec_broker: DynsecBroker, admission: broker.Admission
) -> None:
    # given the broker cannot be reached while a device is registered and another retired
    with sqlite_db.unit_of_work() as session:
        gone, _ = service.register_device(session, "GS-9", DeviceKind.gas_sensor, now=T0)
    away = broker.Admission(
        broker.MosquittoDynsec(dynsec_broker.settings(port=_free_port(), timeout_s=0.5)),
        ROOT,
        admission.keyring,
    )
    with sqlite_db.unit_of_work() as session:
        device, secret = service.register_device(session, "RD-7", DeviceKind.radar, now=T0)
        assert not broker.admit_device(session, device, secret, T0, away)  # what the registry did
        service.retire_device(session, gone.id, T0)  # the reachable broker: revoked at once
    with sqlite_db.unit_of_work() as session:
        pending = session.scalars(select(BrokerAdmissionPending)).all()
        assert [row.uid for row in pending] == ["RD-7"]
        assert pending[0].secret is not None and secret not in pending[0].secret  # sealed
    # and the broker has forgotten the device in the meantime
    admission.adapter.revoke("RD-7", broker.device_role("RD-7"))
    refused = Device(dynsec_broker.port, "RD-7", secret)
    assert refused.disconnected.wait(5)
    refused.close()

    # when the registry is synced with the broker
    with sqlite_db.unit_of_work() as session:
        report = broker.sync_broker(session, T0, admission, ingest=("ingest-w", "ingest-pw", "yiyang"))
    # then the queued secret is delivered, the queue is empty, and the ingest client exists
    assert report.admitted >= 1 and not report.failed and report.ingest == "admitted"
    with sqlite_db.unit_of_work() as session:
        assert session.scalars(select(BrokerAdmissionPending)).all() == []
    device_client = Device(dynsec_broker.port, "RD-7", secret)
    assert device_client.connected.wait(5)
    device_client.close()
    clients = admission.adapter.clients()
    assert "GS-9" not in clients and "ingest-w" in clients

    # and a second sync finds nothing to do
    with sqlite_db.unit_of_work() as session:
        again = broker.sync_broker(session, T0, admission)
    assert again.admitted == 0 and again.revoked == 0 and again.unchanged == again.devices


def test_the_ingest_client_may_subscribe_to_the_shared_subscription_only(
    sqlite_db: Database, dynsec_broker: DynsecBroker, admission: broker.Admission
) -> None:
    admission.adapter.admit(broker.ingest_grant("ingest-s", ROOT, "grp"), "ingest-secret")
    with sqlite_db.unit_of_work() as session:
        _, secret = service.register_device(session, "WB-S1", DeviceKind.wearable, now=T0)
    received: list[str] = []
    granted: list[list[int]] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ingest-s-1", protocol=mqtt.MQTTv5)
    client.username_pw_set("ingest-s", "ingest-secret")
    done = threading.Event()

    def on_subscribe(_c: object, _u: object, _mid: object, codes: list, _p: object) -> None:
        granted.append([code.value for code in codes])
        done.set()

    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, message: received.append(message.topic)
    client.connect("127.0.0.1", dynsec_broker.port)
    client.loop_start()
    try:
        client.subscribe([(f"$share/grp/{ROOT}/v1/+/telemetry", 1), ("other/#", 1)])
        assert done.wait(5)
        assert granted[0][0] == 1 and granted[0][1] >= 0x80  # shared: granted QoS 1; other: refused
        device = Device(dynsec_broker.port, "WB-S1", secret)
        assert device.connected.wait(5)
        device.client.publish(f"{ROOT}/v1/WB-S1/telemetry", b"{}", qos=1).wait_for_publish(5)
        assert wait_for(lambda: received == [f"{ROOT}/v1/WB-S1/telemetry"], timeout=5)
        device.close()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def cli_env(
    sqlite_db: Database, dynsec_broker: DynsecBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Database]:
    """The command line pointed at the test database and the private broker."""
    from yiyang.access.keys import use_keys
    from yiyang.config import get_settings

    for name, value in {
        "YIYANG_DATABASE_URL": str(sqlite_db.engine.url),
        "YIYANG_DATA_DIR": str(tmp_path),
        "YIYANG_BROKER_ADMISSION": "mosquitto-dynsec",
        "YIYANG_BROKER_PORT": str(dynsec_broker.port),
        "YIYANG_BROKER_ADMIN_USERNAME": "admin",
        "YIYANG_BROKER_ADMIN_PASSWORD": dynsec_broker.admin_password,
        "YIYANG_INGEST_USERNAME": "ingest-cli",
        "YIYANG_INGEST_PASSWORD": "ingest-cli-secret",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    keys_before = use_keys(None)  # the keys are loaded again from these settings
    previous = broker.use_admission(None)
    yield sqlite_db
    current = broker.use_admission(previous)
    if current is not None:
        current.adapter.close()
    get_settings.cache_clear()
    use_keys(keys_before)


def test_sync_broker_command_admits_devices_registered_while_the_broker_was_away(
    cli_env: Database, dynsec_broker: DynsecBroker
) -> None:
    from typer.testing import CliRunner

    from yiyang.access.keys import get_keys
    from yiyang.cli import app

    # given a device registered while the broker could not be reached: its secret is queued,
    # sealed with the field key the command line uses too
    unreachable = broker.MosquittoDynsec(dynsec_broker.settings(port=_free_port(), timeout_s=0.3))
    away = broker.Admission(unreachable, ROOT, get_keys().field_keys)
    with cli_env.unit_of_work() as session:
        broker.use_admission(away)
        _, secret = service.register_device(session, "DR-CLI", DeviceKind.door_sensor, now=T0)
        broker.use_admission(None)

    # when the queue is retried, then the whole registry synced
    runner = CliRunner()
    pending = runner.invoke(app, ["devices", "sync-broker", "--pending-only"])
    assert pending.exit_code == 0, pending.output
    assert '"applied": 1' in pending.output and '"pending": 0' in pending.output
    result = runner.invoke(app, ["devices", "sync-broker"])
    assert result.exit_code == 0, result.output
    assert '"ingest": "admitted"' in result.output and '"failed": 0' in result.output

    # then the device and the ingest worker can connect
    device = Device(dynsec_broker.port, "DR-CLI", secret)
    assert device.connected.wait(5)
    device.close()
    worker = Device(dynsec_broker.port, "ingest-cli", "ingest-cli-secret", client_id="ingest-cli-1")
    assert worker.connected.wait(5)
    worker.close()


def test_the_ingest_worker_with_its_own_account_stores_what_admitted_devices_send(
    sqlite_db: Database, dynsec_broker: DynsecBroker, admission: broker.Admission, start_worker
) -> None:
    from sqlalchemy import func

    from tests.devices.conftest import telemetry_payload
    from yiyang.devices.ingest import IngestSettings
    from yiyang.devices.models import Telemetry

    # given the ingest account made by sync-broker and an admitted device
    with sqlite_db.unit_of_work() as session:
        _, secret = service.register_device(session, "WB-W1", DeviceKind.wearable, now=T0)
        broker.sync_broker(session, T0, admission, ingest=("ingest-w1", "w1-secret", "workers"))
    settings = IngestSettings(
        broker_port=dynsec_broker.port,
        username="ingest-w1",
        password="w1-secret",
        client_id="ingest-w1-a",
        topic_root=ROOT,
        share_group="workers",
        session_expiry_s=0,
        batch_ms=20,
        stats_every_s=3600,
    )
    worker = start_worker(sqlite_db, settings)
    # when the device publishes
    device = Device(dynsec_broker.port, "WB-W1", secret)
    assert device.connected.wait(5)
    now = dt.datetime.now(dt.UTC)
    for seq in range(5):
        device.client.publish(
            f"{ROOT}/v1/WB-W1/telemetry", telemetry_payload(seq, now - dt.timedelta(minutes=seq)), qos=1
        ).wait_for_publish(5)
    device.close()

    # then the worker, subscribed through its own role, stores it all
    def stored() -> int:
        with sqlite_db.unit_of_work() as session:
            return session.scalar(select(func.count()).select_from(Telemetry)) or 0

    assert wait_for(lambda: stored() == 5, timeout=10), stored()
    worker.close()


def test_sync_removes_device_clients_the_registry_does_not_know(
    sqlite_db: Database, admission: broker.Admission
) -> None:
    # given a device client left on the broker by a registration that rolled back
    admission.adapter.admit(broker.device_grant("GHOST-1", DeviceKind.wearable, ROOT), "ghost-secret")
    admission.adapter.revoke("GHOST-2", None)  # absent is fine
    assert "GHOST-1" in admission.adapter.clients()
    # when the registry is synced
    with sqlite_db.unit_of_work() as session:
        report = broker.sync_broker(session, T0, admission)
    # then the client and its role are gone, and other clients are untouched
    assert report.revoked >= 1
    assert "GHOST-1" not in admission.adapter.clients()
    assert broker.device_role("GHOST-1") not in admission.adapter.roles()
    assert "admin" in admission.adapter.clients()
