"""Telemetry ingest benchmark: a floor and our worker, measured in the same invocation.

    .venv/bin/python bench/ingest.py [--messages 60000] [--devices 2000] [--rounds 3]

Both consume the same QoS 1 stream from the local Mosquitto, published by a separate process
(gmqtt, several connections: Mosquitto's default config lets each publisher have only 20
messages in flight), into a fresh PostgreSQL database:

- floor: paho -> orjson -> COPY straight into ``telemetry``, batched and acknowledged like the
  worker: no checks, no deduplication, no quarantine, no device status, no rules.
- gmqtt floor (``--no-gmqtt`` to skip; once): the same with gmqtt receiving, for comparison.
- ours: ``IngestWorker`` as ``yiyang ingest`` runs it: manual PUBACK after commit, validation,
  device lookup, COPY into staging + INSERT ON CONFLICT DO NOTHING, device status, pending
  rollup minutes, and every alert rule on (``--no-rules`` to leave them off): each device is
  placed with a resident (a third living alone), thresholds are checked on every message,
  absence and silence clocks kept, and the injected anomalies raise alerts; with the
  cross-domain reactions ``yiyang ingest`` installs (``--no-reactions`` to leave them off): a
  raised alert becomes a home visit (care), a fall re-tiers its resident (tiers).

Method: on a shared 2-core machine one run of either moves by a quarter from the next, so the
floor and the worker run ``--rounds`` times each, interleaved in ABBA order (floor then worker,
worker then floor, ...), each on an emptied database. A round's ratio is its worker run over
its floor run; the ratio reported is the median of the rounds, the rates are medians, and the
range of each is printed beside it.

Injected events: ``--inject`` messages on distinct devices, half-way through the stream, carry
SpO2 88 % (below the NEWS2 limit), in every worker run. Recall is the share of them that raised
an alert; their publish-to-alert latency runs from the publisher handing the message to its
client to the commit of the batch that raised the alert (one monotonic clock for both
processes), and includes the broker's backlog at saturation. Event-to-alert latency, the figure
the goal names, is taken from ``--falls`` falls published at a steady pace after the last
worker run's stream.

Absence sweep (``--sweep-residents``, 390,000 by default): that many absence clocks in
``alert_deadline``, ``--sweep-due`` of them falling due within one simulated hour (those belong
to real elders living alone, each with a device placed and quiet, since the sweep drops a clock
whose elder no device watches any more), swept every 30 s as ``yiyang worker`` does. It reports the latest detection after a deadline and the sweep's
wall time as a share of one core (an upper bound of its CPU, the database's included).

The publisher stays at most ``--ahead`` messages beyond what the consumer has stored: with
Mosquitto's default ``max_queued_messages`` (1000) a subscriber that falls further behind has
QoS 1 messages dropped, and we measure the consumer, not that policy.

Readings/s is sustained: stored readings over the time from the first message received to the
last batch committed. Bytes per reading come from pg_total_relation_size over every telemetry
partition (indexes included) after a worker run, as written and, after the last run, again
after the finished-day compaction: the compacted figure is the one compared with the goal,
since every finished day is compacted. The goals are printed with the figure each is compared
with; the last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from scratch import scratch_database  # bench/scratch.py
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from yiyang.alerts.engine import AlertRules, sweep_job  # noqa: E402
from yiyang.db import (
    Database,  # noqa: E402
    bulk_insert,  # noqa: E402
)
from yiyang.devices import service, storage  # noqa: E402
from yiyang.devices.ingest import IngestSettings, IngestWorker, no_rules, settle_collector  # noqa: E402
from yiyang.devices.models import (
    DeviceBinding,  # noqa: E402
    DeviceKind,  # noqa: E402
)
from yiyang.devices.telemetry import READING_BY_CODE, READINGS  # noqa: E402
from yiyang.events import install_handlers  # noqa: E402
from yiyang.geo.models import LivingArrangement  # noqa: E402
from yiyang.migrate import upgrade  # noqa: E402
from yiyang.residents.models import Resident  # noqa: E402

SHAPES: dict[str, list[dict[str, object]]] = {
    # a wearable's minute: heart rate, SpO2, respiratory rate, temperature
    "wearable": [{"8867-4": 72, "59408-5": 97, "9279-1": 16, "8310-5": 36.6}],
    # a mattress: heart and breathing rate
    "mattress": [{"8867-4": 61, "9279-1": 14}],
    # a district mix: wearables, mattresses and radars, and a BP meter now and then
    "mix": [
        {"8867-4": 72, "59408-5": 97, "9279-1": 16, "8310-5": 36.6},
        {"8867-4": 72, "59408-5": 97, "9279-1": 16, "8310-5": 36.6},
        {"8867-4": 72, "59408-5": 97, "9279-1": 16, "8310-5": 36.6},
        {"8867-4": 61, "9279-1": 14},
        {"8867-4": 61, "9279-1": 14},
        {"85354-9": [132, 84], "8867-4": 70},
    ],
}


def payloads(
    root: str,
    uids: list[str],
    messages: int,
    shape: str,
    start: dt.datetime,
    inject: frozenset[int] = frozenset(),
) -> list[tuple[str, bytes]]:
    shapes = SHAPES[shape]
    items = []
    for index in range(messages):
        seq, device = divmod(index, len(uids))
        at = start + dt.timedelta(seconds=seq, milliseconds=device % 1000)
        readings = shapes[index % len(shapes)]
        if index in inject:
            readings = {**readings, "59408-5": INJECTED_SPO2}
        body = {"seq": seq, "time": at.isoformat(), "readings": readings}
        items.append((f"{root}/v1/{uids[device]}/telemetry", orjson.dumps(body)))
    return items


INJECTED_SPO2 = 88  # NEWS2: SpO2 <= 91 % scores 3, the default spo2_low rule


def injected_indexes(messages: int, devices: int, count: int) -> dict[int, int]:
    """Message index -> device index: ``count`` distinct devices, half-way through the stream."""
    count = min(count, devices)
    if count <= 0:
        return {}
    middle = (messages // devices) // 2
    step = max(1, devices // count)
    chosen = {}
    for k in range(count):
        device = k * step
        index = middle * devices + device
        if index < messages:
            chosen[index] = device
    return chosen


def readings_in(shape: str, messages: int) -> int:
    shapes = SHAPES[shape]
    per_shape = [len(readings) + ("85354-9" in readings) for readings in shapes]  # the BP panel is two
    return sum(per_shape[index % len(shapes)] for index in range(messages))


# ---- the publisher (its own process) --------------------------------------------------------


def publisher_main(args: tuple, ready: mp.Event, done: mp.Queue, progress: mp.Value) -> None:  # type: ignore[type-arg]
    root, uids, messages, shape, start, connections, window, ahead, host, port, inject = args
    items = payloads(root, uids, messages, shape, start, frozenset(inject))
    ready.wait()
    began = time.perf_counter()
    published: dict[int, float] = {}
    asyncio.run(
        _publish_all(items, connections, window, ahead, progress, host, port, frozenset(inject), published)
    )
    done.put((time.perf_counter() - began, published))


async def _publish_all(
    items: list[tuple[str, bytes]],
    connections: int,
    window: int,
    ahead: int,
    progress: mp.Value,  # type: ignore[type-arg]
    host: str,
    port: int,
    inject: frozenset[int] = frozenset(),
    published: dict[int, float] | None = None,
) -> None:
    """Publish everything, never more than ``ahead`` messages beyond what the consumer stored:
    with Mosquitto's default max_queued_messages, a subscriber that falls further behind
    loses messages, and we measure the consumer, not the broker's drop policy."""
    from gmqtt import Client

    sent = [0]

    async def one(index: int, part: list[tuple[int, str, bytes]]) -> None:
        client = Client(f"bench-pub-{uuid.uuid4().hex[:8]}-{index}")
        await client.connect(host, port, version=5)
        inflight = client._persistent_storage  # gmqtt keeps unacknowledged QoS 1 messages here
        for number, topic, payload in part:
            while len(inflight._messages) >= window or sent[0] - progress.value >= ahead:
                await asyncio.sleep(0.0005)
            client.publish(topic, payload, qos=1)
            if number in inject and published is not None:
                published[number] = time.monotonic()
            sent[0] += 1
        await inflight.wait_empty()
        await client.disconnect()

    numbered = [(number, topic, payload) for number, (topic, payload) in enumerate(items)]
    await asyncio.gather(*(one(k, numbered[k::connections]) for k in range(connections)))


# ---- the floor consumer -----------------------------------------------------------------------


@dataclass
class RunResult:
    messages: int
    readings: int
    seconds: float
    publish_seconds: float
    published: dict[int, float] | None = None  # injected message index -> monotonic publish time
    raised: dict[int, float] | None = None  # resident -> monotonic commit time of its alert
    falls: dict[int, float] | None = None  # device index -> monotonic publish time of a fall
    fall_raised: dict[int, float] | None = None  # resident -> commit of its second alert (the fall)

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


class FloorConsumer:
    """paho -> orjson -> COPY, batched and acknowledged like the worker: the hot path with
    nothing else on it (no validation, no deduplication, no quarantine, no device status)."""

    def __init__(
        self, database: Database, root: str, device_ids: dict[str, int], host: str, port: int
    ) -> None:
        import paho.mqtt.client as mqtt

        self.database = database
        self.device_ids = device_ids
        self.pending: list[tuple[str, bytes, float, int]] = []
        self.lock = threading.Lock()
        self.first_arrival: float | None = None
        self.last_commit: float | None = None
        self.stored = 0
        self.readings = 0
        self.subscribed = threading.Event()
        # PUBACKs after the COPY commits, sent in a burst from this thread, like the worker's:
        # paho's automatic PUBACK, one write per message on its network thread, is slower.
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"{root}-floor", protocol=mqtt.MQTTv5, manual_ack=True
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.on_connect = lambda client, *_args: client.subscribe(f"{root}/v1/+/telemetry", qos=1)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.CONNECT)
        # Without a large receive maximum Mosquitto keeps 20 in flight and, by default, drops
        # QoS 1 messages once 1,000 more are queued for a subscriber that falls behind.
        properties.ReceiveMaximum = 65535
        self.client.connect(host, port, properties=properties)
        self.client.loop_start()

    def _on_message(self, _client: object, _userdata: object, message: object) -> None:
        arrived = time.monotonic()
        if self.first_arrival is None:
            self.first_arrival = arrived
        with self.lock:
            self.pending.append((message.topic, message.payload, arrived, message.mid))  # type: ignore[attr-defined]

    def run(self, expected: int, deadline: float, batch_size: int) -> None:
        columns = ", ".join(storage.TELEMETRY_COLUMNS)
        width = len(READINGS)
        while self.stored < expected and time.monotonic() < deadline:
            # The worker's batching: a full batch, or whatever came within 100 ms of the oldest.
            with self.lock:
                full = len(self.pending) >= batch_size
                due = bool(self.pending) and time.monotonic() - self.pending[0][2] >= 0.1
                if full or due:
                    batch, self.pending = self.pending[:batch_size], self.pending[batch_size:]
                else:
                    batch = []
            if not batch:
                time.sleep(0.002)
                continue
            rows = []
            for topic, payload, _arrived, _mid in batch:
                body = orjson.loads(payload)
                values: list[float | None] = [None] * width
                for code, value in body["readings"].items():
                    if code == "85354-9":
                        values[0], values[1] = float(value[0]), float(value[1])
                    else:
                        values[READING_BY_CODE[code]] = float(value)
                measured_at = dt.datetime.fromisoformat(body["time"]).astimezone(dt.UTC).replace(tzinfo=None)
                uid = topic.split("/")[2]
                rows.append((measured_at, self.device_ids[uid], body["seq"], *values))
                self.readings += sum(v is not None for v in values)
            with self.database.unit_of_work() as session:
                raw = session.connection().connection.driver_connection
                with (
                    raw.cursor() as cursor,
                    cursor.copy(f"COPY telemetry ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(["timestamp", "int4", "int4", *(["float4"] * width)])
                    for row in rows:
                        copy.write_row(row)
            self.acknowledge(batch)
            self.stored += len(rows)
            self.last_commit = time.monotonic()

    def acknowledge(self, batch: list[tuple[str, bytes, float, int]]) -> None:
        for item in batch:
            self.client.ack(item[3], 1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class GmqttFloorConsumer(FloorConsumer):
    """The same floor with gmqtt (asyncio, on its own thread, acknowledging on receipt) receiving."""

    def __init__(
        self, database: Database, root: str, device_ids: dict[str, int], host: str, port: int
    ) -> None:
        from gmqtt import Client

        self.database = database
        self.device_ids = device_ids
        self.pending = []
        self.lock = threading.Lock()
        self.first_arrival = None
        self.last_commit = None
        self.stored = 0
        self.readings = 0
        self.subscribed = threading.Event()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

        async def connect() -> Client:
            client = Client(f"{root}-gfloor", receive_maximum=65535)
            client.on_message = self._on_gmqtt_message
            await client.connect(host, port, version=5)
            client.subscribe(f"{root}/v1/+/telemetry", qos=1)
            await asyncio.sleep(0.3)  # SUBACK
            return client

        self.gclient = asyncio.run_coroutine_threadsafe(connect(), self.loop).result(15)
        self.subscribed.set()

    def _on_gmqtt_message(
        self, _client: object, topic: str, payload: bytes, _qos: int, _properties: object
    ) -> int:
        arrived = time.monotonic()
        if self.first_arrival is None:
            self.first_arrival = arrived
        with self.lock:
            self.pending.append((topic, payload, arrived, 0))
        return 0

    def acknowledge(self, batch: list[tuple[str, bytes, float, int]]) -> None:
        pass  # gmqtt acknowledged on receipt

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gclient.disconnect(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


# ---- running one consumer against one publisher ---------------------------------------------


def start_publisher(
    root: str, uids: list[str], args: argparse.Namespace, start: dt.datetime
) -> tuple[mp.Process, mp.Event, mp.Queue, mp.Value]:  # type: ignore[type-arg]
    context = mp.get_context("spawn")
    ready, done, progress = context.Event(), context.Queue(), context.Value("q", 0)
    process = context.Process(
        target=publisher_main,
        args=(
            (
                root,
                uids,
                args.messages,
                args.shape,
                start,
                args.connections,
                args.window,
                args.ahead,
                args.host,
                args.port,
                sorted(injected_indexes(args.messages, len(uids), args.inject)),
            ),
            ready,
            done,
            progress,
        ),
    )
    process.start()
    return process, ready, done, progress


def report_progress(progress: mp.Value, count: Callable[[], int], stop: threading.Event) -> threading.Thread:  # type: ignore[type-arg]
    """Tell the publisher how far the consumer has got, every few milliseconds."""

    def loop() -> None:
        while not stop.wait(0.005):
            progress.value = count()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def run_floor(
    database: Database,
    device_ids: dict[str, int],
    args: argparse.Namespace,
    start: dt.datetime,
    consumer_class: type[FloorConsumer] = FloorConsumer,
) -> RunResult:
    root = f"bench-{uuid.uuid4().hex[:8]}"
    uids = list(device_ids)
    process, ready, done, progress = start_publisher(root, uids, args, start)
    settle_collector()  # as the worker does when it starts: both run with the same collector
    consumer = consumer_class(database, root, device_ids, args.host, args.port)
    consumer.subscribed.wait(10)
    finished = threading.Event()
    report_progress(progress, lambda: consumer.stored, finished)
    ready.set()
    try:
        consumer.run(args.messages, time.monotonic() + args.timeout, args.batch_size)
    finally:
        finished.set()
        consumer.close()
        process.join(30)
    publish_seconds, _published = _publish_seconds(done)
    seconds = (consumer.last_commit or 0) - (consumer.first_arrival or 0)
    return RunResult(consumer.stored, consumer.readings, seconds, publish_seconds)


def run_ours(
    database: Database,
    device_ids: dict[str, int],
    args: argparse.Namespace,
    start: dt.datetime,
    *,
    falls: bool = True,
) -> RunResult:
    root = f"bench-{uuid.uuid4().hex[:8]}"
    settings = IngestSettings(
        broker_host=args.host,
        broker_port=args.port,
        client_id=f"{root}-w1",
        topic_root=root,
        share_group=root,
        session_expiry_s=60,
        batch_size=args.batch_size,
        batch_ms=100,
        receive_maximum=65535,
        stats_every_s=3600,
    )
    process, ready, done, progress = start_publisher(root, list(device_ids), args, start)
    rules = AlertRules(keep_raised=True) if args.rules else None
    worker = TimedWorker(database, settings, rules)
    finished = threading.Event()
    report_progress(progress, lambda: worker.stats.stored, finished)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    if not worker._connected.wait(10):
        raise SystemExit("the ingest worker could not connect to the broker")
    time.sleep(0.3)  # SUBACK
    ready.set()
    deadline = time.monotonic() + args.timeout
    while worker.stats.stored < args.messages and time.monotonic() < deadline:
        time.sleep(0.01)
    # The sustained rate is the stream's: taken before the paced falls, which leave the worker
    # idle for --falls / --fall-rate seconds and would otherwise count as ingest time.
    stream = (
        worker.stats.stored,
        worker.stats.readings,
        worker.stats.last_commit,
        worker.stats.first_arrival,
    )
    paced: dict[int, float] = {}
    if rules is not None and args.falls and falls:
        paced = publish_falls(root, list(device_ids), args, worker)
    stop.set()
    finished.set()
    thread.join(30)
    process.join(30)
    _purge_session(args.host, args.port, settings.client_id)
    publish_seconds, published = _publish_seconds(done)
    stored, readings, last_commit, first_arrival = stream
    seconds = (last_commit or 0) - (first_arrival or 0)
    result = RunResult(stored, readings, seconds, publish_seconds, published, worker.raised_at)
    result.falls = paced
    result.fall_raised = worker.fall_at
    return result


def publish_falls(
    root: str, uids: list[str], args: argparse.Namespace, worker: TimedWorker
) -> dict[int, float]:
    """After the stream: falls on devices that had no anomaly, paced at ``--fall-rate`` a second
    while the worker is otherwise idle. Returns device index -> monotonic publish time."""
    import paho.mqtt.client as mqtt

    injected = set(injected_indexes(args.messages, len(uids), args.inject).values())
    chosen = [index for index in range(len(uids)) if index not in injected][: args.falls]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(args.host, args.port)
    client.loop_start()
    published: dict[int, float] = {}
    try:
        for number, index in enumerate(chosen):
            body = {
                "seq": 2_000_000_000 + number,
                "time": dt.datetime.now(dt.UTC).isoformat(),
                "event": "fall",
            }
            published[index] = time.monotonic()
            client.publish(f"{root}/v1/{uids[index]}/event", orjson.dumps(body), qos=1)
            time.sleep(1 / args.fall_rate)
        wait_until = time.monotonic() + 10
        while worker.stats.events < len(chosen) and time.monotonic() < wait_until:
            time.sleep(0.01)
    finally:
        client.disconnect()
        client.loop_stop()
    return published


class TimedWorker(IngestWorker):
    """The worker, noting when each batch that raised an alert was committed."""

    def __init__(self, database: Database, settings: IngestSettings, rules: AlertRules | None) -> None:
        super().__init__(database, settings, rules or no_rules)
        self.alert_rules = rules
        self.raised_at: dict[int, float] = {}
        self.fall_at: dict[int, float] = {}

    def _flush(self, batch: list, stop: threading.Event) -> None:  # type: ignore[type-arg]
        before = len(self.alert_rules.stats.raised_alerts) if self.alert_rules else 0
        super()._flush(batch, stop)
        if self.alert_rules:
            committed = time.monotonic()
            for _alert, resident in self.alert_rules.stats.raised_alerts[before:]:
                if resident in self.raised_at:
                    self.fall_at.setdefault(resident, committed)
                self.raised_at.setdefault(resident, committed)


def _rate(count: int, seconds: float) -> int | None:
    return round(count / seconds) if seconds and seconds == seconds else None  # NaN: publisher died


def _publish_seconds(done: mp.Queue) -> tuple[float, dict[int, float]]:  # type: ignore[type-arg]
    try:
        return done.get(timeout=10)
    except Exception:  # noqa: BLE001 - the publisher died or timed out
        return float("nan"), {}


def _purge_session(host: str, port: int, client_id: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(host, port, clean_start=True, properties=properties)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


# ---- residents, alerts and the absence sweep ------------------------------------------------


def place_devices(
    session: object, device_ids: list[int], since: dt.datetime, *, all_alone: bool = False
) -> dict[int, int]:
    """One resident per device (a third living alone, or all of them), the device bound to
    them. Returns device id -> resident id."""
    from sqlalchemy import insert

    now = dt.datetime.now(dt.UTC)
    arrangements = [LivingArrangement.alone, LivingArrangement.spouse_only, LivingArrangement.with_family]
    if all_alone:
        arrangements = [LivingArrangement.alone]
    rows = [
        {
            "name": f"居民{index}", "name_pinyin": f"ju min {index}",
            "living_arrangement": arrangements[index % len(arrangements)],
            "status": "active", "needs_review": False, "provenance": {}, "created_at": now, "updated_at": now,
        }
        for index in range(len(device_ids))
    ]  # fmt: skip
    resident_ids = list(
        session.scalars(insert(Resident).returning(Resident.id, sort_by_parameter_order=True), rows)
    )  # type: ignore[attr-defined]
    session.execute(  # type: ignore[attr-defined]
        insert(DeviceBinding),
        [
            {"device_id": device_id, "resident_id": resident_id, "valid_from": since, "created_at": now}
            for device_id, resident_id in zip(device_ids, resident_ids, strict=True)
        ],
    )
    return dict(zip(device_ids, resident_ids, strict=True))


def alert_figures(
    ours: RunResult, args: argparse.Namespace, uids: list[str], resident_of: dict[int, int]
) -> tuple[float, float, float, int]:
    """Recall of the injected anomalies and the publish-to-commit latency of their alerts."""
    chosen = injected_indexes(args.messages, len(uids), args.inject)
    device_ids = sorted(resident_of)  # registration order: the publisher's device index
    latencies = []
    found = 0
    for index, device in chosen.items():
        resident = resident_of[device_ids[device]]
        committed = (ours.raised or {}).get(resident)
        published = (ours.published or {}).get(index)
        if committed is not None:
            found += 1
            if published is not None:
                latencies.append((committed - published) * 1000)
    latencies.sort()

    def percentile(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] if latencies else float("nan")

    recall = found / len(chosen) if chosen else 1.0
    return recall, percentile(0.5), percentile(0.99), len(chosen)


def fall_figures(ours: RunResult, resident_of: dict[int, int]) -> tuple[float, float, float, int]:
    """Falls published at a steady pace: recall and publish-to-commit latency of their alerts."""
    device_ids = sorted(resident_of)
    latencies = []
    for index, published in (ours.falls or {}).items():
        resident = resident_of[device_ids[index]]
        raised = (ours.fall_raised or {}).get(resident, (ours.raised or {}).get(resident))
        if raised is not None and raised >= published:
            latencies.append((raised - published) * 1000)
    latencies.sort()
    count = len(ours.falls or {})

    def percentile(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] if latencies else float("nan")

    return (len(latencies) / count if count else 1.0), percentile(0.5), percentile(0.99), count


def run_sweep(database: Database, clocks: int, due: int, seed: int = 7) -> dict[str, float]:
    """Absence clocks for ``clocks`` residents, ``due`` of them running out within one simulated
    hour; the sweep job runs every 30 s of that hour. Only rows past their deadline are read."""
    import random

    chooser = random.Random(seed)
    base = dt.datetime.now(dt.UTC).replace(microsecond=0)
    hour = dt.timedelta(hours=1)
    # The clocks that run out are real: elders living alone, each with a device placed and no
    # activity since, as the sweep checks before it raises (docs/alerts.md); the others only give
    # the table its size and never come due within the hour.
    with database.unit_of_work() as session:
        devices = [
            service.register_device(session, f"SW-{index:06d}", DeviceKind.wearable)[0].id
            for index in range(due)
        ]
        watched = list(place_devices(session, devices, base - dt.timedelta(days=1), all_alone=True).values())
    due_at: dict[int, dt.datetime] = {}
    rows = []
    for index in range(clocks):
        subject = watched[index] if index < due else 50_000_000 + index
        if index < due:
            when = base + dt.timedelta(seconds=chooser.uniform(0, 3600))
            due_at[subject] = when
        else:
            when = base + hour + dt.timedelta(seconds=chooser.uniform(60, 12 * 3600))
        at = when.astimezone(dt.UTC).replace(tzinfo=None)
        rows.append(("no_activity", subject, subject, None, at - dt.timedelta(hours=12), at))
    with database.unit_of_work() as session:
        bulk_insert(
            session,
            "alert_deadline",
            ("rule", "subject_id", "resident_id", "device_id", "started_at", "due_at"),
            rows,
        )
    with database.engine.connect() as connection:
        connection.execute(text("ANALYZE alert_deadline"))
    raised_at: dict[int, dt.datetime] = {}
    wall = 0.0
    idle: list[float] = []
    for step in range(0, 3600 + 30, 30):
        now = base + dt.timedelta(seconds=step)
        began = time.perf_counter()
        report = sweep_job(database, now)
        spent = time.perf_counter() - began
        wall += spent
        if report["due"] == 0:
            idle.append(spent)
        with database.unit_of_work() as session:
            for (resident,) in session.execute(
                text("SELECT resident_id FROM alert WHERE kind = 'no_activity'")
            ):
                raised_at.setdefault(resident, now)
    lags = [
        (raised_at[subject] - when).total_seconds()
        for subject, when in due_at.items()
        if subject in raised_at
    ]
    return {
        "clocks": clocks,
        "due": due,
        "raised": len(raised_at),
        "max_lag_s": max(lags) if lags else float("nan"),
        "share_of_core": wall / 3600,
        "idle_ms": (sum(idle) / len(idle) * 1000) if idle else 0.0,
    }


# ---- main -----------------------------------------------------------------------------------


def reset_run_state(database: Database) -> None:
    """What one run wrote, gone before the next: every run replays the same stream (same
    devices, sequence numbers and times), so left-over rows would turn it into duplicates, and
    left-over open alerts would turn the injected anomalies into repeats."""
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "TRUNCATE telemetry, telemetry_pending_minute, device_event, telemetry_quarantine, "
                "alert, alert_transition, alert_delivery, inbox_item, alert_deadline, work_item, care_history"
            )
        )
        connection.execute(text("UPDATE device SET last_seen_at = NULL, battery = NULL, online = false"))


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def spread(values: list[float], digits: int = 0) -> str:
    if digits:
        return f"{min(values):.{digits}f}-{max(values):.{digits}f}"
    return f"{min(values):,.0f}-{max(values):,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=2_000)
    parser.add_argument("--shape", choices=sorted(SHAPES), default="wearable")
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="floor and worker runs each, interleaved (ABBA order)"
    )
    parser.add_argument("--connections", type=int, default=6, help="publisher connections")
    parser.add_argument(
        "--window", type=int, default=18, help="QoS 1 messages in flight per connection (broker allows 20)"
    )
    parser.add_argument(
        "--ahead", type=int, default=8_000, help="most messages the publisher may be ahead of what is stored"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per run")
    parser.add_argument(
        "--gmqtt",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure a gmqtt floor (once)",
    )
    parser.add_argument(
        "--inject", type=int, default=200, help="anomalous messages injected, on distinct devices"
    )
    parser.add_argument(
        "--rules",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the worker with the alert rules on",
    )
    parser.add_argument(
        "--reactions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with the cross-domain reactions yiyang ingest installs (a raised alert becomes a home visit, "
        "a fall re-tiers its resident)",
    )
    parser.add_argument(
        "--falls", type=int, default=200, help="falls published after the last worker run's stream, paced"
    )
    parser.add_argument("--fall-rate", type=float, default=5.0, help="falls a second")
    parser.add_argument(
        "--sweep-residents", type=int, default=390_000, help="absence clocks for the sweep run"
    )
    parser.add_argument("--sweep-due", type=int, default=200, help="clocks falling due in the simulated hour")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="admin URL")
    args = parser.parse_args()
    rounds = max(1, args.rounds)

    with scratch_database(args.pg) as url:
        database = Database(url)
        try:
            measure(database, args, rounds)
        finally:
            database.dispose()


def measure(database: Database, args: argparse.Namespace, rounds: int) -> None:
    upgrade(database.engine)
    if args.reactions:
        install_handlers()  # as ``yiyang ingest`` does before it starts its worker
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(seconds=args.messages // args.devices + 60)
    with database.unit_of_work() as session:
        storage.ensure_partitions(session, (start - dt.timedelta(days=1)).date(), 3)
        device_ids = {}
        for index in range(args.devices):
            device, _secret = service.register_device(session, f"WB-{index:06d}", DeviceKind.wearable)
            device_ids[device.uid] = device.id
        resident_of = place_devices(session, list(device_ids.values()), start - dt.timedelta(days=1))
    expected_readings = readings_in(args.shape, args.messages)
    print(
        f"{args.messages:,} messages ({expected_readings:,} readings, shape {args.shape}) from {args.devices:,} devices; "
        f"publisher: {args.connections} connections x {args.window} in flight; "
        f"{rounds} floor and {rounds} worker runs, interleaved; rules {'on' if args.rules else 'off'}, "
        f"reactions {'on' if args.reactions else 'off'}"
    )
    label = "rules on " if args.rules else "rules off"
    floors: list[RunResult] = []
    ours_runs: list[RunResult] = []
    pairs: list[float] = []
    written_per_reading: list[float] = []
    written_per_message: list[float] = []
    compacted_per_reading = float("nan")
    stored_rows = 0
    gmqtt_floor = None
    last_ours = None
    for number in range(rounds):
        # ABBA: floor first in even rounds, the worker first in odd ones, so neither always
        # runs on a database the other has just written to.
        order = ("floor", "ours") if number % 2 == 0 else ("ours", "floor")
        for which in order:
            reset_run_state(database)
            if which == "floor":
                floor = run_floor(database, device_ids, args, start)
                floors.append(floor)
                print(
                    f"round {number + 1}  floor  paho -> parse -> COPY     {floor.messages:>8,} msgs  "
                    f"{floor.readings_per_s:>9,.0f} readings/s  (publisher {_rate(args.messages, floor.publish_seconds)} msg/s)"
                )
                continue
            with_falls = number == rounds - 1
            ours = run_ours(database, device_ids, args, start, falls=with_falls)
            ours_runs.append(ours)
            last_ours = ours
            print(
                f"round {number + 1}  ours   yiyang ingest ({label}) {ours.messages:>8,} msgs  "
                f"{ours.readings_per_s:>9,.0f} readings/s  (publisher {_rate(args.messages, ours.publish_seconds)} msg/s)"
            )
            with database.unit_of_work() as session:
                written = int(storage.telemetry_bytes(session))
                stored_rows = int(session.execute(text("SELECT count(*) FROM telemetry")).scalar_one())
            written_per_reading.append(written / ours.readings if ours.readings else 0.0)
            written_per_message.append(written / max(stored_rows, 1))
            if with_falls:
                storage.compact_partitions(database.engine, (now + dt.timedelta(days=2)).date())
                with database.unit_of_work() as session:
                    compacted = int(storage.telemetry_bytes(session))
                compacted_per_reading = compacted / ours.readings if ours.readings else 0.0
        floor_now, ours_now = floors[-1], ours_runs[-1]
        pairs.append(ours_now.readings_per_s / floor_now.readings_per_s if floor_now.readings_per_s else 0.0)
        print(f"round {number + 1}  ratio {pairs[-1]:.2f}")
        if number == 0 and args.gmqtt:
            reset_run_state(database)
            gmqtt_floor = run_floor(database, device_ids, args, start, GmqttFloorConsumer)
            print(
                f"round 1  floor  gmqtt -> parse -> COPY    {gmqtt_floor.messages:>8,} msgs  "
                f"{gmqtt_floor.readings_per_s:>9,.0f} readings/s  (for comparison; not the hot path)"
            )
    assert last_ours is not None

    floor_rates = [run.readings_per_s for run in floors]
    ours_rates = [run.readings_per_s for run in ours_runs]
    floor_median, ours_median, ratio = median(floor_rates), median(ours_rates), median(pairs)
    print(f"floor  median {floor_median:,.0f} readings/s (range {spread(floor_rates)}, {rounds} runs)")
    print(
        f"ours   median {ours_median:,.0f} readings/s (range {spread(ours_rates)}, {rounds} runs, {label.strip()}); "
        f"ratio median {ratio:.2f} (rounds {', '.join(f'{pair:.2f}' for pair in pairs)}; "
        f"ratio of the medians {ours_median / floor_median if floor_median else 0.0:.2f})"
    )
    stream = [alert_figures(run, args, list(device_ids), resident_of) for run in ours_runs]
    recall = min(figures[0] for figures in stream)
    stream_p99 = [figures[2] for figures in stream if figures[2] == figures[2]]
    stream_p50 = [figures[1] for figures in stream if figures[1] == figures[1]]
    injected = stream[-1][3]
    fall_recall, fall_p50, fall_p99, falls = fall_figures(last_ours, resident_of)
    if args.rules:
        print(
            f"alerts {injected} injected in the stream of each run (SpO2 {INJECTED_SPO2} %): recall {recall:.3f} (lowest), "
            f"publish-to-alert p99 {spread(stream_p99) if stream_p99 else 'nan'} ms "
            f"(includes the broker backlog at saturation)"
        )
        print(
            f"alerts {falls} falls at {args.fall_rate:g}/s after the last run's stream: recall {fall_recall:.3f}, "
            f"event-to-alert p50 {fall_p50:.0f} ms, p99 {fall_p99:.0f} ms"
        )
    print(
        f"stored {stored_rows:,} rows: {median(written_per_message):.1f} bytes/message and "
        f"{median(written_per_reading):.1f} bytes/reading as written, {compacted_per_reading:.1f} bytes/reading "
        f"after the finished-day compaction (pg_total_relation_size over every partition, indexes included)"
    )
    sweep = run_sweep(database, args.sweep_residents, args.sweep_due) if args.sweep_residents else None
    if sweep:
        print(
            f"sweep  {sweep['clocks']:,} absence clocks, {sweep['due']} due in a simulated hour, swept every 30 s: "
            f"raised {sweep['raised']}, latest detection {sweep['max_lag_s']:.0f} s after the deadline, "
            f"sweep wall time {sweep['share_of_core'] * 100:.3f} % of one core (idle sweep {sweep['idle_ms']:.1f} ms)"
        )
    complete = all(run.messages == args.messages for run in (*floors, *ours_runs))
    if not complete:
        print(
            f"INCOMPLETE: floor stored {', '.join(f'{run.messages:,}' for run in floors)}, "
            f"ours {', '.join(f'{run.messages:,}' for run in ours_runs)} of {args.messages:,} within {args.timeout:.0f}s"
        )
    report_goals(ours_median, ratio, fall_p99, compacted_per_reading, sweep, recall if args.rules else None)
    print(
        orjson.dumps(
            {
                "messages": args.messages,
                "devices": args.devices,
                "shape": args.shape,
                "rounds": rounds,
                "readings": last_ours.readings,
                "readings_per_message": round(expected_readings / args.messages, 2),
                "readings_per_s": round(ours_median),
                "readings_per_s_runs": [round(rate) for rate in ours_rates],
                "floor_readings_per_s": round(floor_median),
                "floor_readings_per_s_runs": [round(rate) for rate in floor_rates],
                "ratio": round(ratio, 3),
                "ratio_rounds": [round(pair, 3) for pair in pairs],
                "ratio_of_medians": round(ours_median / floor_median, 3) if floor_median else None,
                "bytes_per_message": round(median(written_per_message), 1),
                "bytes_per_reading": round(median(written_per_reading), 1),
                "bytes_per_reading_compacted": round(compacted_per_reading, 1),
                "publisher_msgs_per_s": _rate(args.messages, last_ours.publish_seconds),
                "gmqtt_floor_readings_per_s": round(gmqtt_floor.readings_per_s) if gmqtt_floor else None,
                "rules": "on" if args.rules else "off",
                "reactions": "on" if args.reactions else "off",
                "injected": injected,
                "recall": round(recall, 4) if args.rules else None,
                "stream_alert_p50_ms": round(median(stream_p50)) if args.rules and stream_p50 else None,
                "stream_alert_p99_ms": round(median(stream_p99)) if args.rules and stream_p99 else None,
                "falls": falls,
                "fall_recall": round(fall_recall, 4) if args.rules else None,
                "event_to_alert_p50_ms": round(fall_p50) if args.rules and fall_p50 == fall_p50 else None,
                "event_to_alert_p99_ms": round(fall_p99) if args.rules and fall_p99 == fall_p99 else None,
                "sweep_clocks": sweep["clocks"] if sweep else None,
                "sweep_max_lag_s": round(sweep["max_lag_s"], 1) if sweep else None,
                "sweep_share_of_core": round(sweep["share_of_core"], 5) if sweep else None,
                "complete": complete,
            }
        ).decode()
    )


# The goals (issue 4, home sensing), each with the figure it is compared with.
GOAL_READINGS_PER_S = 20_000
GOAL_RATIO = 0.7
GOAL_EVENT_TO_ALERT_P99_MS = 500
GOAL_BYTES_PER_READING = 25
GOAL_SWEEP_LAG_S = 60
GOAL_SWEEP_SHARE = 0.02


def report_goals(
    readings_per_s: float,
    ratio: float,
    event_p99_ms: float,
    bytes_per_reading: float,
    sweep: dict[str, float] | None,
    recall: float | None,
) -> None:
    def line(what: str, figure: str, goal: str, met: bool) -> None:
        print(f"goal   {what:<44} {figure:>12}  goal {goal:<10} {'met' if met else 'NOT MET'}")

    line("sustained readings/s, rules on (median)", f"{readings_per_s:,.0f}", f">= {GOAL_READINGS_PER_S:,}",
         readings_per_s >= GOAL_READINGS_PER_S)  # fmt: skip
    line("ratio to the floor (median of the rounds)", f"{ratio:.2f}", f">= {GOAL_RATIO}", ratio >= GOAL_RATIO)
    line("event-to-alert p99, paced falls", f"{event_p99_ms:.0f} ms", f"<= {GOAL_EVENT_TO_ALERT_P99_MS} ms",
         event_p99_ms <= GOAL_EVENT_TO_ALERT_P99_MS)  # fmt: skip
    line("bytes per reading, after compaction", f"{bytes_per_reading:.1f}", f"<= {GOAL_BYTES_PER_READING}",
         bytes_per_reading <= GOAL_BYTES_PER_READING)  # fmt: skip
    if sweep:
        line("absence detection after the deadline", f"{sweep['max_lag_s']:.0f} s", f"<= {GOAL_SWEEP_LAG_S} s",
             sweep["max_lag_s"] <= GOAL_SWEEP_LAG_S)  # fmt: skip
        line("absence sweep, share of one core", f"{sweep['share_of_core'] * 100:.3f} %",
             f"<= {GOAL_SWEEP_SHARE * 100:g} %", sweep["share_of_core"] <= GOAL_SWEEP_SHARE)  # fmt: skip
    if recall is not None:
        line("recall of the injected anomalies (lowest run)", f"{recall:.3f}", "1.0", recall == 1.0)


if __name__ == "__main__":
    main()
