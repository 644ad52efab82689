"""Running a simulation: homes chosen among registered residents, their devices registered and
bound through the registry, the generated stream published over MQTT or fed to the ingest
pipeline in-process, paced in real or accelerated time or replayed as fast as it goes.

The generator itself is pure (``simulate``); this module owns the side effects. Functions that
take a session leave the commit to their caller.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from yiyang.db import Database
from yiyang.devices import service, storage
from yiyang.devices.ingest import (
    BatchOutcome,
    Delivery,
    DeviceDirectory,
    Rules,
    no_rules,
    parse_deliveries,
    store_batch,
    telemetry_days,
)
from yiyang.devices.models import Device, DeviceState
from yiyang.devices.simulate import HOUSEHOLD_KINDS, Home, Scenario, SimDevice, SimMessage, care_need, stream
from yiyang.devices.telemetry import DEFAULT_LIMITS, Channel, TimeLimits
from yiyang.errors import Conflict
from yiyang.geo.models import LivingArrangement
from yiyang.residents.models import Condition, Resident, ResidentStatus

SIM_MODEL = "yiyang-simulate"
HYPERTENSION = ("I10", "I11", "I12", "I13", "I15")  # ICD-10 hypertensive diseases
DIABETES = ("E10", "E11", "E12", "E13", "E14")  # ICD-10 diabetes mellitus


def select_homes(session: Session, count: int, seed: int, among: Sequence[int] | None = None) -> list[Home]:
    """``count`` registered residents, drawn by ``seed``, as simulated homes (one elder each);
    ``among`` restricts the draw to these residents (the demo: a team's contracted panel)."""
    query = (
        select(Resident.id)
        .where(Resident.status == ResidentStatus.active, Resident.merged_into_id.is_(None))
        .order_by(Resident.id)
    )
    if among is not None:
        query = query.where(Resident.id.in_(sorted(set(among))))
    ids = session.scalars(query).all()
    chosen = sorted(random.Random(f"{seed}:residents").sample(list(ids), min(count, len(ids))))
    homes: list[Home] = []
    for begin in range(0, len(chosen), 500):
        chunk = chosen[begin : begin + 500]
        codes: dict[int, list[str]] = collections.defaultdict(list)
        for resident_id, code in session.execute(
            select(Condition.resident_id, Condition.code).where(Condition.resident_id.in_(chunk))
        ):
            codes[resident_id].append(code)
        rows = session.execute(
            select(
                Resident.id,
                Resident.household_id,
                Resident.living_arrangement,
                Resident.capability_level,
                Resident.disability_cert_grade,
            ).where(Resident.id.in_(chunk))
        ).all()
        for row in sorted(rows, key=lambda r: r.id):
            found = codes[row.id]
            homes.append(
                Home(
                    key=row.id,
                    need=care_need(row.capability_level, row.disability_cert_grade, found),
                    living_alone=row.living_arrangement == LivingArrangement.alone,
                    hypertension=any(code.startswith(HYPERTENSION) for code in found),
                    diabetes=any(code.startswith(DIABETES) for code in found),
                    resident_id=row.id,
                    household_id=row.household_id,
                )
            )
    return homes


@dataclass
class Provisioned:
    registered: int = 0
    existing: int = 0
    bound: int = 0
    retired: list[str] = field(default_factory=list)  # simulated devices someone retired: left out


def provision(
    session: Session,
    homes: Sequence[Home],
    devices: Sequence[SimDevice],
    valid_from: dt.datetime,
    now: dt.datetime,
) -> Provisioned:
    """Register the simulated devices that are not registered yet and place each with its elder
    (worn and personal devices) or household (radar, terminal, alarms, door) from ``valid_from``.
    Re-running with the same seed finds the devices already there."""
    result = Provisioned()
    by_key = {home.key: home for home in homes}
    known = {
        device.uid: device
        for begin in range(0, len(devices), 500)
        for device in session.scalars(
            select(Device).where(Device.uid.in_([d.uid for d in devices[begin : begin + 500]]))
        )
    }
    for sim in devices:
        home = by_key[sim.home]
        device = known.get(sim.uid)
        if device is None:
            device, _secret = service.register_device(session, sim.uid, sim.kind, SIM_MODEL, now)
            result.registered += 1
        elif device.state != DeviceState.active:
            result.retired.append(sim.uid)
            continue
        else:
            result.existing += 1
        if service.binding_at(session, device.id, valid_from) is not None:
            continue
        holder: dict[str, Any]
        if sim.kind in HOUSEHOLD_KINDS and home.household_id is not None:
            holder = {"household_id": home.household_id}
        elif home.resident_id is not None:
            holder = {"resident_id": home.resident_id}
        else:
            continue
        try:
            service.bind_device(session, device.id, valid_from=valid_from, **holder)
            result.bound += 1
        except Conflict:
            pass  # bound later on in an earlier run: the readings before that belong to nobody
    return result


# ---- where the messages go ----------------------------------------------------------------------


class Sink(Protocol):
    def send(self, message: SimMessage) -> None: ...

    def idle(self) -> None:
        """Nothing to send for a while: push out what is buffered."""

    def close(self) -> None: ...


def topic_of(root: str, message: SimMessage) -> str:
    return f"{root}/v1/{message.uid}/{message.channel}"


class MqttSink:
    """Publishes with QoS 1 over one connection, at most ``max_inflight`` unacknowledged (paho's
    16-bit message ids must not wrap while messages are still in flight)."""

    def __init__(
        self,
        host: str,
        port: int,
        topic_root: str,
        *,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = 1000,
        client_id: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        import paho.mqtt.client as mqtt

        self.topic_root = topic_root
        self.max_inflight = max(1, min(max_inflight, 20_000))
        self.timeout_s = timeout_s
        self._inflight: collections.deque[Any] = collections.deque()
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"yiyang-simulate-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_inflight_messages_set(self.max_inflight)
        self.client.max_queued_messages_set(0)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(timeout_s) or self._refused:
            self.close()
            raise ConnectionError(f"broker refused the simulator ({self._refused or 'no answer'})")

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        self._connected.set()

    def send(self, message: SimMessage) -> None:
        info = self.client.publish(topic_of(self.topic_root, message), orjson.dumps(message.payload), qos=1)
        self._inflight.append(info)
        while self._inflight and self._inflight[0].is_published():
            self._inflight.popleft()
        while len(self._inflight) >= self.max_inflight:
            oldest = self._inflight.popleft()
            oldest.wait_for_publish(self.timeout_s)
            if not oldest.is_published():
                raise ConnectionError("broker did not acknowledge in time")

    def idle(self) -> None:
        while self._inflight and self._inflight[0].is_published():
            self._inflight.popleft()

    def close(self) -> None:
        try:
            while self._inflight:
                self._inflight.popleft().wait_for_publish(self.timeout_s)
        finally:
            self.client.disconnect()
            self.client.loop_stop()


class PipelineSink:
    """Feeds the ingest pipeline in-process (the embedded demo): the worker's parse, store and
    rules, in batches, each message received at its own simulated time."""

    def __init__(
        self,
        database: Database,
        topic_root: str = "yiyang",
        *,
        batch_size: int = 500,
        rules: Rules = no_rules,
        limits: TimeLimits | None = None,
    ) -> None:
        self.database = database
        self.topic_root = topic_root
        self.batch_size = batch_size
        self.rules = rules
        self.limits = limits or DEFAULT_LIMITS
        self.directory = DeviceDirectory(ttl=30.0, negative_ttl=5.0)
        self.keeper = storage.PartitionKeeper()
        self.outcome = BatchOutcome()
        self._pending: list[Delivery] = []

    def send(self, message: SimMessage) -> None:
        received = dt.datetime.fromtimestamp(message.at + 1, dt.UTC)
        self._pending.append(
            Delivery(
                message.uid,
                Channel(message.channel),
                orjson.dumps(message.payload),
                received,
                "sim",
                topic_of(self.topic_root, message),
            )
        )
        if len(self._pending) >= self.batch_size:
            self.idle()

    def idle(self) -> None:
        if not self._pending:
            return
        deliveries, self._pending = self._pending, []
        parsed = parse_deliveries(deliveries, deliveries[-1].received_at, self.limits)
        days = telemetry_days(parsed)
        if self.keeper.missing(days):
            with self.database.unit_of_work() as session:
                self.keeper.cover(session, days)
        with self.database.unit_of_work() as session:
            devices = self.directory.resolve(session, (d.uid for d in deliveries))
            outcome, _written = store_batch(session, deliveries, parsed, devices, rules=self.rules)
        total = self.outcome
        total.received += outcome.received
        total.stored += outcome.stored
        total.readings += outcome.readings
        total.events += outcome.events
        total.statuses += outcome.statuses
        total.duplicates += outcome.duplicates
        total.quarantined.update(outcome.quarantined)

    def close(self) -> None:
        self.idle()


# ---- pacing --------------------------------------------------------------------------------------


@dataclass
class RunStats:
    messages: int = 0
    by_channel: collections.Counter[str] = field(default_factory=collections.Counter)
    readings: int = 0
    wall_s: float = 0.0
    simulated_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "telemetry": self.by_channel["telemetry"],
            "events": self.by_channel["event"],
            "statuses": self.by_channel["status"],
            "readings": self.readings,
            "wall_s": round(self.wall_s, 2),
            "simulated_s": round(self.simulated_s),
        }


def run(
    scenario: Scenario,
    sink: Sink,
    *,
    speed: float = 0.0,
    not_ahead_of: Callable[[], float] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[float, int], None] | None = None,
    stop: threading.Event | None = None,
) -> RunStats:
    """Send the scenario's stream to ``sink``. ``speed`` 0 sends as fast as the sink takes it;
    otherwise simulated time runs ``speed`` times wall time. ``not_ahead_of`` (the wall clock,
    epoch seconds) holds back messages stamped in the future, which the ingest would refuse.
    ``progress(simulated_seconds_done, messages)`` is called every 500 messages and at the end."""
    stats = RunStats()
    began = clock()
    for message in stream(scenario):
        if stop is not None and stop.is_set():
            break
        waits = []
        if speed > 0:
            waits.append((message.at - scenario.start) / speed - (clock() - began))
        if not_ahead_of is not None:
            waits.append(message.at - not_ahead_of())
        wait = max(waits, default=0.0)
        if wait > 0:
            sink.idle()
            while wait > 0 and not (stop is not None and stop.is_set()):
                sleep(min(wait, 0.5))
                wait -= min(wait, 0.5)
        sink.send(message)
        stats.messages += 1
        stats.by_channel[message.channel] += 1
        readings = message.payload.get("readings")
        if readings:
            stats.readings += sum(2 if code == "85354-9" else 1 for code in readings)
        if progress is not None and stats.messages % 500 == 0:
            progress(message.at - scenario.start, stats.messages)
    sink.close()
    stats.wall_s = clock() - began
    stats.simulated_s = scenario.end - scenario.start
    if progress is not None:
        progress(scenario.end - scenario.start, stats.messages)
    return stats


def write_truth(path: Path, scenario: Scenario) -> int:
    """The injected events as JSON lines, in time order: what alerts should find."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: Iterable[bytes] = (orjson.dumps(item.truth()) + b"\n" for item in scenario.injections)
    with path.open("wb") as handle:
        handle.writelines(lines)
    return len(scenario.injections)
