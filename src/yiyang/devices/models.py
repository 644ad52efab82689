"""Device registry, bindings, and the telemetry store.

Telemetry is written by the bulk paths in ``storage`` (COPY / executemany), never through the
ORM; the classes here describe the tables for reads and for the migration. On PostgreSQL
``telemetry`` and ``telemetry_minute`` are range-partitioned by day (see the 0002 migration).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    REAL,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class DeviceKind(enum.StrEnum):
    wearable = "wearable"  # 智能手环/手表
    mattress = "mattress"  # 智能床垫
    radar = "radar"  # 毫米波雷达
    bp_meter = "bp_meter"  # 血压计
    glucose_meter = "glucose_meter"  # 血糖仪
    terminal = "terminal"  # 一键式智能服务终端
    gas_sensor = "gas_sensor"  # 燃气探测器
    smoke_sensor = "smoke_sensor"  # 烟雾探测器
    door_sensor = "door_sensor"  # 门磁


class DeviceState(enum.StrEnum):
    active = "active"
    retired = "retired"  # no longer accepted; kept for the history of its readings


class Device(Base):
    """A sensor in a home. ``uid`` is what the device calls itself in its MQTT topics."""

    __tablename__ = "device"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[DeviceKind] = mapped_column(Enum(DeviceKind, native_enum=False, length=16))
    model: Mapped[str | None] = mapped_column(String(100))
    # SHA-256 of a random 256-bit secret: a slow password hash buys nothing for a random key.
    secret_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[DeviceState] = mapped_column(
        Enum(DeviceState, native_enum=False, length=16), default=DeviceState.active
    )
    registered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column()
    battery: Mapped[int | None] = mapped_column(SmallInteger)  # percent
    online: Mapped[bool] = mapped_column(Boolean, default=False)


class DeviceBinding(Base):
    """A device placed with a resident or a household for a period (valid_to open = still there)."""

    __tablename__ = "device_binding"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"), index=True)
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_to: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("(resident_id IS NULL) <> (household_id IS NULL)", name="one_holder"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period"),
    )


class Telemetry(Base):
    """One row per accepted telemetry message; a reading absent from the message is NULL.

    The key (device, time, seq) makes redelivery idempotent and still accepts a device whose
    sequence counter restarted after a reboot.
    """

    __tablename__ = "telemetry"

    # Column order keeps the 8-byte timestamp first so no padding is stored between fields.
    measured_at: Mapped[dt.datetime] = mapped_column()
    device_id: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    systolic: Mapped[float | None] = mapped_column(REAL)  # LOINC 8480-6, mm[Hg]
    diastolic: Mapped[float | None] = mapped_column(REAL)  # LOINC 8462-4, mm[Hg]
    heart_rate: Mapped[float | None] = mapped_column(REAL)  # LOINC 8867-4, /min
    respiratory_rate: Mapped[float | None] = mapped_column(REAL)  # LOINC 9279-1, /min
    spo2: Mapped[float | None] = mapped_column(REAL)  # LOINC 59408-5, %
    body_temperature: Mapped[float | None] = mapped_column(REAL)  # LOINC 8310-5, Cel
    body_weight: Mapped[float | None] = mapped_column(REAL)  # LOINC 29463-7, kg
    fasting_glucose: Mapped[float | None] = mapped_column(REAL)  # LOINC 14771-0, mmol/L

    # No foreign key to device: a key check per row would cost more than the insert itself.
    # Time first: rows arrive in time order, so the key grows at its right edge (packed pages,
    # writes on the pages last touched), and it serves the rollups' time ranges (0014).
    __table_args__ = (PrimaryKeyConstraint("measured_at", "device_id", "seq"),)


class TelemetryMinute(Base):
    """1-minute rollup of one reading code for one device."""

    __tablename__ = "telemetry_minute"

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)  # LOINC
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    mean: Mapped[float] = mapped_column(REAL)
    low: Mapped[float] = mapped_column(REAL)
    high: Mapped[float] = mapped_column(REAL)

    __table_args__ = (Index("ix_telemetry_minute_bucket", "bucket", postgresql_using="brin"),)


class TelemetryHour(Base):
    """1-hour rollup, built from the minute rollups; kept longest."""

    __tablename__ = "telemetry_hour"

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    mean: Mapped[float] = mapped_column(REAL)
    low: Mapped[float] = mapped_column(REAL)
    high: Mapped[float] = mapped_column(REAL)

    __table_args__ = (Index("ix_telemetry_hour_bucket", "bucket"),)


class TelemetryPendingMinute(Base):
    """Minutes that received data since their rollup was last computed."""

    __tablename__ = "telemetry_pending_minute"

    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)


class DeviceEvent(Base):
    """Presence, motion, in/out of bed, fall, SOS, smoke, gas, door: one row per event message."""

    __tablename__ = "device_event"

    device_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    measured_at: Mapped[dt.datetime] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column()

    __table_args__ = (Index("ix_device_event_kind_time", "kind", "measured_at"),)


class TelemetryQuarantine(Base):
    """A payload that was not accepted, kept with the reason so a person can look at it."""

    __tablename__ = "telemetry_quarantine"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(8))  # mqtt | http
    topic: Mapped[str | None] = mapped_column(String(200))
    device_uid: Mapped[str | None] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)


class BrokerAdmissionPending(Base):
    """A device whose broker client may be out of step with the registry, because the broker could
    not be reached when the device changed. ``secret`` is the password still to be delivered,
    sealed with the field key (the registry itself keeps only the hash), cleared once delivered."""

    __tablename__ = "broker_admission_pending"

    uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(String(200))
    queued_at: Mapped[dt.datetime] = mapped_column()
    last_attempt_at: Mapped[dt.datetime] = mapped_column()
