"""What the device API reads and returns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from yiyang.deps import MAX_ID, AwareRequestDateTime
from yiyang.devices.models import DeviceKind, DeviceState
from yiyang.devices.telemetry import UID_PATTERN

MAX_UPLOAD_ITEMS = 1000


class DeviceCreate(BaseModel):
    uid: str = Field(
        pattern=UID_PATTERN.pattern, max_length=64, description="设备编号, as used in MQTT topics"
    )
    kind: DeviceKind
    model: str | None = Field(default=None, max_length=100)


class BindingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    resident_id: int | None
    household_id: int | None
    valid_from: dt.datetime
    valid_to: dt.datetime | None


class DeviceRead(BaseModel):
    id: int
    uid: str
    kind: DeviceKind
    model: str | None
    state: DeviceState
    registered_at: dt.datetime
    last_seen_at: dt.datetime | None
    battery: int | None
    online: bool
    binding: BindingRead | None = Field(default=None, description="the binding in force now, if any")


class DeviceRegistered(DeviceRead):
    secret: str = Field(description="设备密钥: shown once; the device uses it for MQTT and HTTP")


class SecretRotated(BaseModel):
    uid: str
    secret: str


class BindingCreate(BaseModel):
    resident_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    household_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    valid_from: AwareRequestDateTime | None = Field(default=None, description="default: now")
    valid_to: AwareRequestDateTime | None = None


class BindingEnd(BaseModel):
    valid_to: AwareRequestDateTime | None = Field(default=None, description="default: now")


class TelemetryUpload(BaseModel):
    """A gateway's batch for one device: each item is a telemetry, event or status payload (v1)."""

    # Any JSON per item: one that is not an object is refused on its own (payload.not_object)
    # rather than failing the whole request and the good items with it.
    messages: list[Any] = Field(min_length=1, max_length=MAX_UPLOAD_ITEMS)


class ItemRejected(BaseModel):
    index: int
    code: str
    message: str


class TelemetryUploadResult(BaseModel):
    stored: int = Field(description="new telemetry and event messages")
    duplicates: int = Field(description="already stored (safe to resend)")
    statuses: int
    rejected: list[ItemRejected] = Field(description="not stored; do not resend unchanged")
