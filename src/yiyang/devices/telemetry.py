"""Telemetry schema v1: topics, payloads and their parsing. Pure: no database, no clock.

Devices publish JSON to ``{root}/v1/{device_uid}/{channel}`` where channel is ``telemetry``
(readings), ``event`` (fall, SOS, presence ...) or ``status`` (online, battery). Gateways post
the same payloads over HTTP. docs/telemetry.md is the contract; this module enforces it and
turns each payload into a plain value or a ``Rejection`` that says why.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 16_384
MAX_SEQ = 2_147_483_647  # stored as a 32-bit integer; devices wrap to 0 after this
MAX_READINGS = 16
MAX_DETAIL_BYTES = 1_024
UID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class ReadingSpec:
    """One kind of reading: its LOINC code, storage column, UCUM unit and plausible range."""

    loinc: str
    column: str
    unit: str
    low: float
    high: float
    zh: str
    en: str


# Column order of the telemetry table. Ranges reject sensor faults, not clinical extremes:
# thresholds for alerts live with the rules, not here.
READINGS: tuple[ReadingSpec, ...] = (
    ReadingSpec("8480-6", "systolic", "mm[Hg]", 40, 300, "收缩压", "systolic blood pressure"),
    ReadingSpec("8462-4", "diastolic", "mm[Hg]", 20, 200, "舒张压", "diastolic blood pressure"),
    ReadingSpec("8867-4", "heart_rate", "/min", 20, 300, "心率", "heart rate"),
    ReadingSpec("9279-1", "respiratory_rate", "/min", 2, 80, "呼吸频率", "respiratory rate"),
    ReadingSpec("59408-5", "spo2", "%", 50, 100, "血氧饱和度", "oxygen saturation (SpO2)"),
    ReadingSpec("8310-5", "body_temperature", "Cel", 30, 45, "体温", "body temperature"),
    ReadingSpec("29463-7", "body_weight", "kg", 2, 400, "体重", "body weight"),
    ReadingSpec("14771-0", "fasting_glucose", "mmol/L", 0.5, 50, "空腹血糖", "fasting glucose"),
)
READING_COLUMNS: tuple[str, ...] = tuple(spec.column for spec in READINGS)
READING_BY_CODE: dict[str, int] = {spec.loinc: index for index, spec in enumerate(READINGS)}
# LOINC 85354-9 blood pressure panel: sent as [systolic, diastolic], stored as its two components.
BP_PANEL = "85354-9"
_LOW = tuple(spec.low for spec in READINGS)
_HIGH = tuple(spec.high for spec in READINGS)
_SYSTOLIC = READING_BY_CODE["8480-6"]
_DIASTOLIC = READING_BY_CODE["8462-4"]


class Channel(enum.StrEnum):
    telemetry = "telemetry"
    event = "event"
    status = "status"


_CHANNELS = {channel.value: channel for channel in Channel}


class EventKind(enum.StrEnum):
    presence = "presence"  # 有人
    absence = "absence"  # 无人
    motion = "motion"  # 活动
    in_bed = "in_bed"  # 在床
    out_of_bed = "out_of_bed"  # 离床
    fall = "fall"  # 跌倒
    sos = "sos"  # 一键呼叫
    smoke = "smoke"  # 烟雾
    gas = "gas"  # 燃气泄漏
    door_open = "door_open"  # 门开
    door_closed = "door_closed"  # 门关


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a payload was not accepted: a machine code and a message for people."""

    code: str
    message: str


@dataclass(slots=True)  # one per message: plain slots, as a frozen __init__ costs twice as much
class TelemetryMessage:
    seq: int
    measured_at: dt.datetime  # device time, UTC
    values: tuple[float | None, ...]  # one slot per READINGS entry
    battery: int | None = None

    @property
    def reading_count(self) -> int:
        return len(self.values) - self.values.count(None)


@dataclass(frozen=True, slots=True)
class EventMessage:
    seq: int
    measured_at: dt.datetime
    kind: EventKind
    detail: dict[str, Any] | None = None
    battery: int | None = None


@dataclass(frozen=True, slots=True)
class StatusMessage:
    measured_at: dt.datetime | None  # absent in a Last Will, which is written long before it is sent
    online: bool | None
    battery: int | None


Message = TelemetryMessage | EventMessage | StatusMessage


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How far a device clock may be from ours before a message is refused."""

    max_age: dt.timedelta = dt.timedelta(days=7)
    max_ahead: dt.timedelta = dt.timedelta(minutes=10)


DEFAULT_LIMITS = TimeLimits()


class _Reject(Exception):
    def __init__(self, code: str, message: str) -> None:
        self.rejection = Rejection(code, message)


def parse_topic(topic: str, root: str) -> tuple[str, Channel] | None:
    """``{root}/v1/{uid}/{channel}`` -> (uid, channel); None for any other topic."""
    prefix = f"{root}/v{SCHEMA_VERSION}/"
    if not topic.startswith(prefix):
        return None
    uid, _, channel = topic[len(prefix) :].partition("/")
    if not UID_PATTERN.match(uid):
        return None
    found = _CHANNELS.get(channel)
    return (uid, found) if found is not None else None


def topic_for(root: str, uid: str, channel: Channel) -> str:
    return f"{root}/v{SCHEMA_VERSION}/{uid}/{channel.value}"


def decode(payload: bytes) -> dict[str, Any] | Rejection:
    """The JSON object in a payload, or why there is none."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejection("payload.too_large", f"消息过大 (payload over {MAX_PAYLOAD_BYTES} bytes)")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Rejection("payload.not_json", "消息不是有效的JSON (payload is not valid JSON)")
    if not isinstance(body, dict):
        return Rejection("payload.not_object", "消息应为JSON对象 (payload must be a JSON object)")
    return body


def parse(
    channel: Channel, payload: bytes | dict[str, Any], now: dt.datetime, limits: TimeLimits = DEFAULT_LIMITS
) -> Message | Rejection:
    """Parse one payload (raw bytes or an already decoded object) for its channel."""
    body = decode(payload) if isinstance(payload, bytes | bytearray) else payload
    if type(body) is not dict:
        if isinstance(body, Rejection):
            return body
        return Rejection("payload.not_object", "消息应为JSON对象 (payload must be a JSON object)")
    try:
        if "v" in body:
            _check_version(body)
        if channel is Channel.telemetry:
            return _telemetry(body, now, limits)
        if channel is Channel.event:
            return _event(body, now, limits)
        return _status(body, now, limits)
    except _Reject as reject:
        return reject.rejection


def _check_version(body: dict[str, Any]) -> None:
    version = body.get("v", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise _Reject(
            "schema.version", f"不支持的数据格式版本 (unsupported schema version, expected {SCHEMA_VERSION})"
        )


def _telemetry(body: dict[str, Any], now: dt.datetime, limits: TimeLimits) -> TelemetryMessage:
    # The common case is checked inline; anything unusual takes the slow path that names the fault.
    seq = body.get("seq")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        seq = _seq(body)
    measured_at = _time(body, now, limits)
    readings = body.get("readings")
    if type(readings) is not dict or not 0 < len(readings) <= MAX_READINGS:
        _check_readings(readings)
    values: list[float | None] = [None] * len(READINGS)
    for code, value in readings.items():
        index = READING_BY_CODE.get(code)
        kind = type(value)
        if (
            index is not None
            and (kind is float or kind is int)
            and values[index] is None
            and _LOW[index] <= value <= _HIGH[index]
        ):
            values[index] = float(value)
            continue
        if code == BP_PANEL:
            if not isinstance(value, list) or len(value) != 2:
                raise _Reject(
                    "reading.type", "血压应为 [收缩压, 舒张压] (85354-9 must be [systolic, diastolic])"
                )
            _put(values, _SYSTOLIC, value[0])
            _put(values, _DIASTOLIC, value[1])
            continue
        if index is None:
            raise _Reject("reading.unknown_code", f"未知的读数代码 (unknown reading code {code[:20]!r})")
        _put(values, index, value)
    battery = body.get("battery")
    return TelemetryMessage(seq, measured_at, tuple(values), None if battery is None else _battery(body))


def _check_readings(readings: Any) -> None:
    if readings is None:
        raise _Reject("field.missing", "缺少字段 readings (missing field: readings)")
    if not isinstance(readings, dict):
        raise _Reject("field.type", "readings 应为对象 (readings must be an object of LOINC code -> value)")
    if not readings:
        raise _Reject("readings.empty", "readings 为空 (readings is empty)")
    if len(readings) > MAX_READINGS:
        raise _Reject("readings.too_many", f"读数过多 (more than {MAX_READINGS} readings)")


def _put(values: list[float | None], index: int, value: Any) -> None:
    spec = READINGS[index]
    kind = type(value)
    if kind is not float and kind is not int:  # a bool is not a reading, though Python calls it an int
        raise _Reject("reading.type", f"{spec.zh}应为数值 ({spec.loinc} must be a number)")
    if not spec.low <= value <= spec.high:
        raise _Reject(
            "reading.out_of_range",
            f"{spec.zh}超出测量范围 ({spec.loinc} outside {spec.low:g}-{spec.high:g} {spec.unit})",
        )
    if values[index] is not None:
        raise _Reject("reading.duplicate", f"{spec.zh}重复 ({spec.loinc} given twice)")
    values[index] = float(value)


def _event(body: dict[str, Any], now: dt.datetime, limits: TimeLimits) -> EventMessage:
    seq = _seq(body)
    measured_at = _time(body, now, limits)
    kind = body.get("event")
    if kind is None:
        raise _Reject("field.missing", "缺少字段 event (missing field: event)")
    try:
        event = EventKind(kind) if isinstance(kind, str) else None
    except ValueError:
        event = None
    if event is None:
        raise _Reject("event.unknown", "未知的事件类型 (unknown event kind)")
    detail = body.get("detail")
    if detail is not None:
        if not isinstance(detail, dict):
            raise _Reject("field.type", "detail 应为对象 (detail must be an object)")
        try:
            size = len(orjson.dumps(detail))
        except TypeError:
            # What JSON allows but the store cannot write: nesting past orjson's 255 levels (a
            # 2 KB payload reaches it), an integer beyond 64 bits, a lone surrogate (HTTP only).
            raise _Reject(
                "detail.invalid",
                "detail 无法保存 (detail must be at most 255 levels deep, integers within 64 bits, valid text)",
            ) from None
        if size > MAX_DETAIL_BYTES:
            raise _Reject("detail.too_large", f"detail 过大 (detail over {MAX_DETAIL_BYTES} bytes)")
    return EventMessage(seq, measured_at, event, detail or None, _battery(body))


def _status(body: dict[str, Any], now: dt.datetime, limits: TimeLimits) -> StatusMessage:
    measured_at = _time(body, now, limits) if "time" in body else None
    online = body.get("online")
    if online is not None and not isinstance(online, bool):
        raise _Reject("field.type", "online 应为 true/false (online must be a boolean)")
    battery = _battery(body)
    if online is None and battery is None:
        raise _Reject("field.missing", "状态消息应含 online 或 battery (status needs online or battery)")
    return StatusMessage(measured_at, online, battery)


def _seq(body: dict[str, Any]) -> int:
    seq = body.get("seq")
    if seq is None:
        raise _Reject("field.missing", "缺少字段 seq (missing field: seq)")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise _Reject("field.type", "seq 应为整数 (seq must be an integer)")
    if not 0 <= seq <= MAX_SEQ:
        raise _Reject("seq.range", f"seq 超出范围 (seq must be 0-{MAX_SEQ})")
    return seq


def _time(body: dict[str, Any], now: dt.datetime, limits: TimeLimits) -> dt.datetime:
    raw = body.get("time")
    if raw is None:
        raise _Reject("field.missing", "缺少字段 time (missing field: time)")
    measured_at = parse_device_time(raw)
    if measured_at > now + limits.max_ahead:
        raise _Reject("time.future", "设备时间超前 (device time is in the future; check the device clock)")
    if measured_at < now - limits.max_age:
        raise _Reject("time.too_old", f"数据过旧 (device time older than {limits.max_age.days} days)")
    return measured_at


def parse_device_time(raw: Any) -> dt.datetime:
    """RFC 3339 with an offset, or integer milliseconds since the Unix epoch; returned in UTC."""
    if isinstance(raw, str):
        try:
            value = dt.datetime.fromisoformat(raw)
        except ValueError:
            raise _Reject(
                "time.format", "time 格式错误 (time must be RFC 3339, e.g. 2026-11-24T08:15:00+08:00)"
            ) from None
        if value.tzinfo is None:
            raise _Reject("time.no_offset", "time 缺少时区 (time needs an offset such as +08:00 or Z)")
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            # in UTC, 9999-12-31T23:00-05:00 is after year 9999 and 0001-01-01T00:00+14:00 before year 1
            raise _Reject("time.format", "time 超出范围 (time out of range)") from None
    if isinstance(raw, int) and not isinstance(raw, bool):
        try:
            return _EPOCH + dt.timedelta(milliseconds=raw)
        except OverflowError:
            raise _Reject("time.format", "time 超出范围 (time out of range)") from None
    raise _Reject(
        "time.format", "time 应为字符串或毫秒时间戳 (time must be an RFC 3339 string or epoch milliseconds)"
    )


def _battery(body: dict[str, Any]) -> int | None:
    battery = body.get("battery")
    if battery is None:
        return None
    if isinstance(battery, bool) or not isinstance(battery, int) or not 0 <= battery <= 100:
        raise _Reject("battery.range", "battery 应为 0-100 的整数 (battery must be an integer 0-100)")
    return battery
