"""``yiyang ingest``: the telemetry worker. MQTT in, micro-batches out, acknowledged after commit.

The hot path: paho's network thread appends each QoS 1 message to a list; the main thread takes
up to ``batch_size`` messages (or whatever arrived within ``batch_ms``), parses them, writes
them in one transaction (COPY on PostgreSQL), hands the new rows to the rules, commits, and only
then sends the PUBACKs. A worker killed at any point loses nothing: the broker keeps the
persistent session (fixed client id, clean_start off, session expiry) and redelivers whatever
was not acknowledged, and the (device, seq, time) key makes the second copy a no-op. Several
workers share the load through one MQTT 5 shared subscription (``$share/{group}/...``).
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from yiyang import cache_version
from yiyang.db import Database, utcnow
from yiyang.devices import storage
from yiyang.devices.models import Device, DeviceKind, DeviceState
from yiyang.devices.telemetry import (
    Channel,
    EventMessage,
    Message,
    Rejection,
    StatusMessage,
    TelemetryMessage,
    TimeLimits,
    parse,
    parse_topic,
)

log = logging.getLogger("yiyang.ingest")


class IngestSettings(BaseSettings):
    """Worker settings from the environment (prefix ``YIYANG_INGEST_``)."""

    model_config = SettingsConfigDict(env_prefix="YIYANG_INGEST_", env_file=".env", extra="ignore")

    broker_host: str = "127.0.0.1"
    broker_port: int = 1883
    username: str | None = None
    password: str | None = None
    # Fixed per worker: the broker keeps this id's session (and its unacknowledged messages).
    client_id: str = "yiyang-ingest-1"
    topic_root: str = "yiyang"
    share_group: str = "yiyang"
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    batch_size: int = 2000
    batch_ms: int = 200
    # Unacknowledged messages the broker may have in flight to us (MQTT 5 Receive Maximum); must
    # exceed batch_size. The most MQTT allows: past it Mosquitto queues, and by default drops
    # QoS 1 messages once 1,000 are queued for one subscriber.
    receive_maximum: int = 65535
    max_age_days: int = 7
    max_ahead_s: int = 600
    status_every_s: int = 60
    quarantine_per_minute: int = 30
    stats_every_s: float = 10.0
    maintenance: bool = False
    rollup_every_s: float = 30.0
    partitions_ahead_days: int = 3
    raw_days: int = 30
    minute_days: int = 90
    hour_days: int = 1825
    event_days: int = 365
    quarantine_days: int = 30

    def limits(self) -> TimeLimits:
        return TimeLimits(
            max_age=dt.timedelta(days=min(self.max_age_days, self.raw_days)),
            max_ahead=dt.timedelta(seconds=self.max_ahead_s),
        )

    def retention(self) -> storage.RetentionPolicy:
        return storage.RetentionPolicy(
            self.raw_days, self.minute_days, self.hour_days, self.event_days, self.quarantine_days
        )

    def subscriptions(self) -> list[str]:
        return [f"$share/{self.share_group}/{self.topic_root}/v1/+/{channel.value}" for channel in Channel]


# ---- one batch: parse, resolve devices, store, rules ------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceRef:
    id: int
    uid: str
    kind: DeviceKind
    active: bool


@dataclass(slots=True)
class Delivery:
    """One payload as it arrived, from MQTT (uid and channel read from the topic) or HTTP."""

    uid: str | None
    channel: Channel | None
    payload: bytes | dict[str, Any]
    received_at: dt.datetime
    source: str = "mqtt"
    topic: str | None = None


@dataclass(slots=True)
class AcceptedTelemetry:
    device: DeviceRef
    message: TelemetryMessage


@dataclass(slots=True)
class AcceptedEvent:
    device: DeviceRef
    message: EventMessage


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """What one batch newly stored (duplicates left out), as the rules receive it."""

    telemetry: list[AcceptedTelemetry]
    events: list[AcceptedEvent]
    received_at: dt.datetime


# The hand-over to the alert rules: called inside the batch's transaction, before commit.
Rules = Callable[[Session, TelemetryBatch], None]


def no_rules(_session: Session, _batch: TelemetryBatch) -> None:
    """Rules are not switched on yet."""


STORED = "stored"
DUPLICATE = "duplicate"
APPLIED = "applied"  # a status message: nothing stored, the device record updated


@dataclass
class BatchOutcome:
    received: int = 0
    stored: int = 0
    readings: int = 0
    events: int = 0
    statuses: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    # Per delivery, in order: STORED, DUPLICATE, APPLIED or the Rejection.
    results: list[str | Rejection] = field(default_factory=list)


def parse_deliveries(
    deliveries: Sequence[Delivery], now: dt.datetime, limits: TimeLimits
) -> list[Message | Rejection]:
    """Parse every delivery (pure): each gives its message or why it was refused, never an error."""
    parsed: list[Message | Rejection] = []
    for delivery in deliveries:
        if delivery.uid is None:
            parsed.append(
                Rejection("topic.invalid", "主题不符合格式 (topic is not {root}/v1/{device}/{channel})")
            )
        elif delivery.channel is None:
            parsed.append(Rejection("payload.channel", "无法判断消息类型 (give readings or event, not both)"))
        else:
            try:
                parsed.append(parse(delivery.channel, delivery.payload, now, limits))
            except Exception as error:  # noqa: BLE001 - a payload the parser trips on is quarantined
                # Unacknowledged, it would come back after every restart and stop the worker again.
                log.error("payload could not be parsed (%s); quarantined", type(error).__name__)
                parsed.append(
                    Rejection(
                        "payload.invalid",
                        f"消息无法解析 (payload could not be parsed: {type(error).__name__})",
                    )
                )
    return parsed


def telemetry_days(parsed: Iterable[Message | Rejection]) -> set[dt.date]:
    return {item.measured_at.date() for item in parsed if isinstance(item, TelemetryMessage)}


Seen = tuple[dt.datetime, int | None, bool]  # when a device was last heard, its battery, online


class SeenTracker:
    """Writes a device's last-seen time at most once per interval, unless something changed."""

    def __init__(self, every: dt.timedelta = dt.timedelta(seconds=60)) -> None:
        self.every = every
        self._written: dict[int, Seen] = {}

    def due(self, seen: Mapping[int, Seen]) -> list[storage.DeviceSeen]:
        written = self._written
        due = []
        for device_id, item in seen.items():
            last = written.get(device_id)
            if (
                last is None
                or item[2] != last[2]
                or (item[1] is not None and item[1] != last[1])
                or item[0] - last[0] >= self.every
            ):
                due.append(storage.DeviceSeen(device_id, *item))
        return due

    def written(self, items: Iterable[storage.DeviceSeen]) -> None:
        for item in items:
            self._written[item.device_id] = (item.seen_at, item.battery, item.online)


class QuarantineLimiter:
    """At most ``per_minute`` quarantine rows per (device, reason): a misconfigured device that
    sends garbage every second is counted in full but stored as a sample."""

    def __init__(self, per_minute: int = 30, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._window = 0
        self._counts: Counter[tuple[str | None, str]] = Counter()

    def allow(self, uid: str | None, reason: str) -> bool:
        window = int(self.clock() // 60)
        if window != self._window:
            self._window = window
            self._counts.clear()
        self._counts[(uid, reason)] += 1
        return self._counts[(uid, reason)] <= self.per_minute


def store_batch(
    session: Session,
    deliveries: Sequence[Delivery],
    parsed: Sequence[Message | Rejection],
    devices: Mapping[str, DeviceRef],
    *,
    rules: Rules = no_rules,
    seen_tracker: SeenTracker | None = None,
    limiter: QuarantineLimiter | None = None,
) -> tuple[BatchOutcome, list[storage.DeviceSeen]]:
    """Write one parsed batch in the caller's transaction. Returns the outcome and the device
    status rows written (give them to ``seen_tracker.written`` once the transaction commits)."""
    outcome = BatchOutcome(received=len(deliveries))
    results: list[str | Rejection | None] = [None] * len(deliveries)
    rows: list[storage.TelemetryRow] = []
    row_index: list[int] = []
    accepted: list[AcceptedTelemetry] = []
    event_rows: list[storage.EventRow] = []
    event_index: list[int] = []
    event_accepted: list[AcceptedEvent] = []
    quarantine: list[storage.QuarantineRow] = []
    seen: dict[int, Seen] = {}  # device -> its latest (time, battery, online) in this batch

    def reject(index: int, rejection: Rejection) -> None:
        delivery = deliveries[index]
        results[index] = rejection
        outcome.quarantined[rejection.code] += 1
        if limiter is None or limiter.allow(delivery.uid, rejection.code):
            payload = (
                delivery.payload if isinstance(delivery.payload, bytes) else _json_bytes(delivery.payload)
            )
            quarantine.append(
                storage.QuarantineRow(
                    delivery.received_at,
                    delivery.source,
                    delivery.topic,
                    delivery.uid,
                    rejection.code,
                    rejection.message,
                    payload,
                )
            )

    for index, (delivery, item) in enumerate(zip(deliveries, parsed, strict=True)):
        if isinstance(item, Rejection):
            reject(index, item)
            continue
        device = devices.get(delivery.uid or "")
        if device is None:
            reject(index, Rejection("device.unknown", "未登记的设备 (device is not registered)"))
            continue
        if not device.active:
            reject(index, Rejection("device.retired", "设备已停用 (device is retired)"))
            continue
        measured_at = item.measured_at or delivery.received_at
        online = item.online if isinstance(item, StatusMessage) and item.online is not None else True
        at = measured_at if measured_at < delivery.received_at else delivery.received_at
        previous = seen.get(device.id)
        if previous is None or at >= previous[0]:
            battery = item.battery if item.battery is not None or previous is None else previous[1]
            seen[device.id] = (at, battery, online)
        if isinstance(item, TelemetryMessage):
            rows.append((measured_at.replace(tzinfo=None), device.id, item.seq, *item.values))
            row_index.append(index)
            accepted.append(AcceptedTelemetry(device, item))
        elif isinstance(item, EventMessage):
            event_rows.append(
                storage.EventRow(
                    device.id, item.measured_at, item.seq, item.kind.value, item.detail, delivery.received_at
                )
            )
            event_index.append(index)
            event_accepted.append(AcceptedEvent(device, item))
        else:
            results[index] = APPLIED
            outcome.statuses += 1

    fresh = storage.write_telemetry(session, rows)
    new_telemetry = []
    for index, is_new, item in zip(row_index, fresh, accepted, strict=True):
        results[index] = STORED if is_new else DUPLICATE
        if is_new:
            new_telemetry.append(item)
            outcome.readings += item.message.reading_count
    outcome.stored = len(new_telemetry)
    fresh_events = storage.write_events(session, event_rows)
    new_events = []
    for index, is_new, item in zip(event_index, fresh_events, event_accepted, strict=True):
        results[index] = STORED if is_new else DUPLICATE
        if is_new:
            new_events.append(item)
    outcome.events = len(new_events)
    outcome.duplicates = (len(rows) - outcome.stored) + (len(event_rows) - outcome.events)

    if seen_tracker is not None:
        due = seen_tracker.due(seen)
    else:
        due = [storage.DeviceSeen(device_id, *values) for device_id, values in seen.items()]
    storage.touch_devices(session, due)
    storage.write_quarantine(session, quarantine)
    received_at = deliveries[0].received_at if deliveries else utcnow()
    rules(session, TelemetryBatch(new_telemetry, new_events, received_at))
    outcome.results = [result if result is not None else DUPLICATE for result in results]
    return outcome, due


def _json_bytes(value: Any) -> bytes:
    import orjson

    try:
        return orjson.dumps(value)
    except TypeError:
        return repr(value).encode()


class DeviceDirectory:
    """uid -> device, cached. Unknown uids are remembered briefly, so a stray device costs one
    query per ``negative_ttl`` rather than one per message.

    A device retired or registered elsewhere (the web app) is seen within ``check_every``
    seconds: a version check (the ``devices`` counter those services bump, one small read)
    empties the cache when it moves. With broker admission ``none`` the directory is the only gate a retired
    device's messages meet."""

    def __init__(
        self,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        check_every: float = 5.0,
    ):
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.clock = clock
        self.check_every = check_every
        self._known: dict[str, tuple[float, DeviceRef | None]] = {}
        self._version: tuple[Any, ...] | None = None
        self._next_check = 0.0

    def _check_version(self, session: Session, now: float) -> None:
        if now < self._next_check:
            return
        self._next_check = now + self.check_every
        version = (cache_version.read(session).get(cache_version.DEVICES, 0),)
        if self._version is not None and version != self._version:
            self._known.clear()
        self._version = version

    def resolve(self, session: Session, uids: Iterable[str | None]) -> dict[str, DeviceRef]:
        now = self.clock()
        self._check_version(session, now)
        found: dict[str, DeviceRef] = {}
        lookup: list[str] = []
        for uid in set(uids):
            if uid is None:
                continue
            cached = self._known.get(uid)
            if cached is not None and cached[0] > now:
                if cached[1] is not None:
                    found[uid] = cached[1]
            else:
                lookup.append(uid)
        for start in range(0, len(lookup), 500):
            chunk = lookup[start : start + 500]
            rows = session.execute(
                select(Device.id, Device.uid, Device.kind, Device.state).where(Device.uid.in_(chunk))
            ).all()
            for row in rows:
                ref = DeviceRef(row.id, row.uid, DeviceKind(row.kind), row.state == DeviceState.active)
                found[row.uid] = ref
                self._known[row.uid] = (now + self.ttl, ref)
            for uid in set(chunk) - {row.uid for row in rows}:
                self._known[uid] = (now + self.negative_ttl, None)
        return found


# ---- the MQTT worker ---------------------------------------------------------------------


@dataclass(slots=True)
class _Received:
    mid: int
    qos: int
    topic: str
    payload: bytes
    arrived: float  # monotonic
    generation: int  # which connection it came on; a PUBACK is only valid on that connection


@dataclass
class WorkerStats:
    batches: int = 0
    received: int = 0
    stored: int = 0
    readings: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    first_arrival: float | None = None  # monotonic time of the first message received
    last_commit: float | None = None  # monotonic time the latest batch was committed and acknowledged


_RETRYABLE = (OperationalError, InterfaceError)
TOPIC_CACHE_SIZE = 200_000  # topics remembered as parsed; emptied when full
_UNSEEN: Any = object()


def settle_collector() -> None:
    """Take what is alive once the worker has started (modules, mappers, compiled statements,
    caches) out of the cyclic collector's sight.

    Each batch makes tens of thousands of small objects that live until the batch is stored,
    long enough to reach the oldest generation; its full collections then walked the whole
    start-up heap again and again to find nothing (measured: about a third of the worker's CPU
    on the benchmark's stream). Objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()


class IngestWorker:
    """One ingest process: ``run()`` until ``stop`` is set (SIGTERM/SIGINT from the CLI)."""

    def __init__(
        self, database: Database, settings: IngestSettings | None = None, rules: Rules = no_rules
    ) -> None:
        self.database = database
        self.settings = settings or IngestSettings()
        self.rules = rules
        self.stats = WorkerStats()
        self.directory = DeviceDirectory()
        self.keeper = storage.PartitionKeeper()
        self.seen_tracker = SeenTracker(dt.timedelta(seconds=self.settings.status_every_s))
        self.limiter = QuarantineLimiter(self.settings.quarantine_per_minute)
        self.limits = self.settings.limits()
        self.maintenance = (
            Maintenance(database, self.settings, self.keeper) if self.settings.maintenance else None
        )
        self._pending: list[_Received] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._generation = 0
        self._connected = threading.Event()
        self._client: Any = None
        self._prefix = f"{self.settings.topic_root}/v1/"
        self._topics: dict[str, tuple[str | None, Channel | None]] = {}  # topic -> (uid, channel)

    # paho callbacks run on its network thread: keep them short.
    def _on_connect(
        self, client: Any, _userdata: Any, flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        with self._lock:
            self._generation += 1
        from paho.mqtt.subscribeoptions import SubscribeOptions

        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.settings.subscriptions()])
        log.info(
            "connected as %s (session present: %s), subscribed to %s",
            self.settings.client_id,
            flags.session_present,
            ", ".join(self.settings.subscriptions()),
        )
        self._connected.set()

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        self._connected.clear()
        log.warning("disconnected from broker: %s", reason_code)

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        received = _Received(
            message.mid, message.qos, message.topic, message.payload, time.monotonic(), self._generation
        )
        if self.stats.first_arrival is None:
            self.stats.first_arrival = received.arrived
        with self._lock:
            self._pending.append(received)
            full = len(self._pending) >= self.settings.batch_size
        if full:
            self._wake.set()

    def _make_client(self) -> Any:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.settings.username:
            client.username_pw_set(self.settings.username, self.settings.password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = min(
            max(self.settings.receive_maximum, 2 * self.settings.batch_size), 65535
        )
        client.connect_async(
            self.settings.broker_host,
            self.settings.broker_port,
            keepalive=self.settings.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        return client

    def run(self, stop: threading.Event) -> WorkerStats:
        settle_collector()
        self._client = self._make_client()
        self._client.loop_start()
        next_stats = time.monotonic() + self.settings.stats_every_s
        try:
            while not stop.is_set():
                batch = self._take(stop)
                if batch:
                    self._flush(batch, stop)
                if self.maintenance is not None:
                    self.maintenance.tick(utcnow())
                if time.monotonic() >= next_stats:
                    self._log_stats()
                    next_stats = time.monotonic() + self.settings.stats_every_s
            # Stopping: store what already arrived, so its PUBACKs go out before we leave.
            with self._lock:
                rest, self._pending = self._pending, []
            for start in range(0, len(rest), self.settings.batch_size):
                self._flush(rest[start : start + self.settings.batch_size], stop)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._log_stats()
        return self.stats

    def _take(self, stop: threading.Event) -> list[_Received]:
        """Wait for a full batch, or for the oldest message to be batch_ms old."""
        limit = self.settings.batch_size
        max_wait = self.settings.batch_ms / 1000
        while not stop.is_set():
            with self._lock:
                count = len(self._pending)
                oldest = self._pending[0].arrived if count else None
                if count >= limit or (oldest is not None and time.monotonic() - oldest >= max_wait):
                    batch, self._pending = self._pending[:limit], self._pending[limit:]
                    return batch
            timeout = max_wait if oldest is None else max(0.0, oldest + max_wait - time.monotonic())
            self._wake.wait(min(timeout, 0.5))
            self._wake.clear()
        return []

    def _deliveries(self, batch: Sequence[_Received]) -> list[Delivery]:
        # One receipt time per batch: at most batch_ms late, and a clock read per message saved.
        received_at = utcnow()
        root = self.settings.topic_root
        topics = self._topics
        if len(topics) > TOPIC_CACHE_SIZE:
            topics.clear()
        deliveries = []
        for item in batch:
            # A device publishes on the same few topics all day: each is checked once.
            target = topics.get(item.topic, _UNSEEN)
            if target is _UNSEEN:
                target = topics[item.topic] = parse_topic(item.topic, root) or (None, None)
            deliveries.append(Delivery(target[0], target[1], item.payload, received_at, "mqtt", item.topic))
        return deliveries

    def _flush(self, batch: list[_Received], stop: threading.Event) -> None:
        deliveries = self._deliveries(batch)
        parsed = parse_deliveries(deliveries, utcnow(), self.limits)
        delay = 0.5
        while True:
            try:
                outcome = self._store(deliveries, parsed)
                break
            except _RETRYABLE as error:
                # The database is away: keep the batch unacknowledged and try again.
                log.warning("database unavailable (%s); retrying in %.1fs", type(error).__name__, delay)
                if stop.wait(delay):
                    return  # not acknowledged: the broker redelivers after restart
                delay = min(delay * 2, 10.0)
            except Exception:  # noqa: BLE001 - one bad message must not stop the worker
                log.exception("batch of %d failed; storing one by one", len(batch))
                outcome = self._store_one_by_one(deliveries, parsed)
                break
        self._ack(batch)
        self._count(outcome)
        self.stats.last_commit = time.monotonic()

    def _store(self, deliveries: Sequence[Delivery], parsed: Sequence[Message | Rejection]) -> BatchOutcome:
        days = telemetry_days(parsed)
        if self.keeper.missing(days):
            with self.database.unit_of_work() as session:
                self.keeper.cover(session, days)
        with self.database.unit_of_work() as session:
            devices = self.directory.resolve(session, (d.uid for d in deliveries))
            outcome, written = store_batch(
                session,
                deliveries,
                parsed,
                devices,
                rules=self.rules,
                seen_tracker=self.seen_tracker,
                limiter=self.limiter,
            )
        self.seen_tracker.written(written)
        return outcome

    def _store_one_by_one(
        self, deliveries: Sequence[Delivery], parsed: Sequence[Message | Rejection]
    ) -> BatchOutcome:
        total = BatchOutcome(received=len(deliveries))
        for delivery, item in zip(deliveries, parsed, strict=True):
            try:
                outcome = self._store([delivery], [item])
            except _RETRYABLE:
                raise
            except Exception as error:  # noqa: BLE001
                log.error("message could not be stored (%s); quarantined", type(error).__name__)
                rejection = Rejection(
                    "storage.error", f"存储失败 (could not be stored: {type(error).__name__})"
                )
                outcome = self._store([delivery], [rejection])
            total.stored += outcome.stored
            total.readings += outcome.readings
            total.events += outcome.events
            total.duplicates += outcome.duplicates
            total.statuses += outcome.statuses
            total.quarantined.update(outcome.quarantined)
        return total

    def _ack(self, batch: Sequence[_Received]) -> None:
        # In arrival order (MQTT requires PUBACKs in the order the PUBLISHes came), and only on
        # the connection that delivered them: after a reconnect the broker sends them again.
        generation = self._generation
        for item in batch:
            if item.qos > 0 and item.generation == generation:
                self._client.ack(item.mid, item.qos)

    def _count(self, outcome: BatchOutcome) -> None:
        stats = self.stats
        stats.batches += 1
        stats.received += outcome.received
        stats.stored += outcome.stored
        stats.readings += outcome.readings
        stats.events += outcome.events
        stats.duplicates += outcome.duplicates
        stats.quarantined.update(outcome.quarantined)

    def _log_stats(self) -> None:
        stats = self.stats
        elapsed = max(time.monotonic() - stats.started, 1e-9)
        log.info(
            "ingest: received=%d stored=%d readings=%d (%.0f/s) events=%d duplicates=%d quarantined=%s",
            stats.received,
            stats.stored,
            stats.readings,
            stats.readings / elapsed,
            stats.events,
            stats.duplicates,
            dict(stats.quarantined) or 0,
        )


class Maintenance:
    """Partitions ahead, rollups and retention, run by the one worker started with maintenance on."""

    def __init__(self, database: Database, settings: IngestSettings, keeper: storage.PartitionKeeper) -> None:
        self.database = database
        self.settings = settings
        self.keeper = keeper
        self._next_rollup = 0.0
        self._next_daily = 0.0

    def tick(self, now: dt.datetime) -> None:
        clock = time.monotonic()
        try:
            if clock >= self._next_daily:
                self._next_daily = clock + 60  # if it fails, again in a minute
                self.daily(now)
                self._next_daily = clock + 3600  # hourly check; the work itself is per day
            if clock >= self._next_rollup:
                self._next_rollup = clock + self.settings.rollup_every_s
                with self.database.unit_of_work() as session:
                    storage.roll_up_pending(session, now)
        except _RETRYABLE as error:
            log.warning("maintenance skipped: database unavailable (%s)", type(error).__name__)
        except Exception:  # noqa: BLE001 - maintenance must never stop the ingest
            log.exception("maintenance failed")

    def daily(self, now: dt.datetime) -> None:
        today = now.astimezone(dt.UTC).date()
        first = today - dt.timedelta(days=self.settings.limits().max_age.days)
        days = (today - first).days + 1 + self.settings.partitions_ahead_days
        with self.database.unit_of_work() as session:
            made = storage.ensure_partitions(session, first, days)
        with self.database.unit_of_work() as session:
            removed = storage.apply_retention(session, today, self.settings.retention())
        compacted = storage.compact_partitions(self.database.engine, today - dt.timedelta(days=1))
        log.info("maintenance: partitions made=%d removed=%s compacted=%d", made, removed, len(compacted))


def run_worker(
    database: Database, settings: IngestSettings | None = None, rules: Rules = no_rules
) -> WorkerStats:
    """Run until SIGTERM or SIGINT; the CLI entry point."""
    stop = threading.Event()

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return IngestWorker(database, settings, rules).run(stop)


def ingest_command(
    client_id: str = typer.Option(
        None, help="this worker's fixed MQTT client id (default: YIYANG_INGEST_CLIENT_ID or yiyang-ingest-1)"
    ),
    maintenance: bool = typer.Option(
        None, "--maintenance/--no-maintenance", help="also create partitions ahead, roll up, apply retention"
    ),
    migrate: bool = typer.Option(
        True, "--migrate/--no-migrate", help="bring the database schema up to date first"
    ),
    alert_rules: bool = typer.Option(
        True, "--rules/--no-rules", help="evaluate the alert rules on every batch (docs/alerts.md)"
    ),
) -> None:
    """遥测接入 Run a telemetry ingest worker: MQTT -> parse -> batched writes (docs/telemetry.md)."""
    from yiyang.config import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = {"client_id": client_id, "maintenance": maintenance}
    settings = IngestSettings(**{key: value for key, value in overrides.items() if value is not None})
    db = Database(settings=get_settings())
    try:
        if migrate:
            from yiyang.migrate import upgrade

            upgrade(db.engine)
        rules: Rules = no_rules
        if alert_rules:
            from yiyang.alerts.engine import make_rules  # the rules hook: wired here, not imported by devices
            from yiyang.events import install_handlers

            install_handlers()
            rules = make_rules()
        stats = run_worker(db, settings, rules)
    finally:
        db.dispose()
    log.info("stopped after %d messages", stats.received)


if __name__ == "__main__":
    # ``python -m yiyang.devices.ingest``: the same worker without loading every other command.
    typer.run(ingest_command)
