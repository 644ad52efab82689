"""Device routes: the registry (administrators) and telemetry upload (devices, HTTP Basic)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlalchemy.orm import Session

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.deps import MAX_ID, IdPath, SessionDep
from yiyang.devices import schemas, service
from yiyang.devices.ingest import no_rules
from yiyang.devices.models import Device, DeviceBinding, DeviceKind
from yiyang.devices.telemetry import Rejection
from yiyang.errors import Forbidden

router = APIRouter(prefix="/api", tags=["devices"])
# Which device sits in whose home is part of the registry an administrator keeps (identity);
# the readings themselves are sensor data.
_PLACEMENT = resident_data(DataCategory.identity)
_PLACEMENTS = resident_data(DataCategory.identity, many=True)
_basic = HTTPBasic(auto_error=False, description="设备编号 : 设备密钥 (device uid : device secret)")


def _admin(actor: Actor) -> None:
    # Registering devices and placing them in homes is an administrator's job for now.
    if not actor.is_admin:
        raise Forbidden("device.forbidden", "仅管理员可管理设备 (only administrators manage devices)")


def _read(session: Session, device: Device, now: dt.datetime) -> schemas.DeviceRead:
    return _as_read(device, now, service.binding_at(session, device.id, now))


def _as_read(device: Device, now: dt.datetime, binding: DeviceBinding | None) -> schemas.DeviceRead:
    return schemas.DeviceRead(
        id=device.id,
        uid=device.uid,
        kind=device.kind,
        model=device.model,
        state=device.state,
        registered_at=device.registered_at,
        last_seen_at=device.last_seen_at,
        battery=device.battery,
        online=service.is_online(device.kind, device.last_seen_at, device.online, now),
        binding=schemas.BindingRead.model_validate(binding) if binding else None,
    )


@router.post("/devices", response_model=schemas.DeviceRegistered, status_code=201, openapi_extra=_PLACEMENTS)
def register_device(
    body: schemas.DeviceCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.DeviceRegistered:
    _admin(actor)
    now = clock()
    device, secret = service.register_device(session, body.uid, body.kind, body.model, now)
    return schemas.DeviceRegistered(**_read(session, device, now).model_dump(), secret=secret)


@router.get("/devices", response_model=list[schemas.DeviceRead], openapi_extra=_PLACEMENTS)
def list_devices(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    kind: DeviceKind | None = None,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    household_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[schemas.DeviceRead]:
    """Devices an administrator may manage: those bound now to a resident the actor may see
    (identity) or to a household with a current member the actor may see, and those bound to no
    one. Filtering by a resident or household the actor may not see is refused, not emptied."""
    _admin(actor)
    now = clock()
    if resident_id is not None:
        policy.authorize(session, actor, resident_id, category=DataCategory.identity, what="device", now=now)
    if household_id is not None:
        service.authorize_household(session, actor, household_id, what="device", now=now)
    devices = service.list_devices(
        session,
        kind=kind,
        resident_id=resident_id,
        household_id=household_id,
        at=now,
        limit=limit,
        offset=offset,
        visible=service.device_scope(session, actor, now),
        administered=service.administered_households(session, actor),
    )
    # One query for the page's bindings, not one per device (a page holds up to 500).
    bindings = service.bindings_at(session, [device.id for device in devices], now)
    return [_as_read(device, now, bindings.get(device.id)) for device in devices]


def _authorize_holder(
    session: Session, actor: Actor, device: Device, now: dt.datetime, *, action: str = "read"
) -> None:
    """A device bound now to a resident or household is their data: the policy decides, audited."""
    binding = service.binding_at(session, device.id, now)
    if binding is not None:
        service.authorize_holder(session, actor, binding, what="device", action=action, now=now)


@router.get("/devices/{device_id}", response_model=schemas.DeviceRead, openapi_extra=_PLACEMENT)
def read_device(
    device_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.DeviceRead:
    _admin(actor)
    now = clock()
    device = service.get_device(session, device_id)
    _authorize_holder(session, actor, device, now)
    return _read(session, device, now)


@router.post("/devices/{device_id}/secret", response_model=schemas.SecretRotated, openapi_extra=_PLACEMENT)
def rotate_secret(
    device_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.SecretRotated:
    _admin(actor)
    now = clock()
    # A new secret decides what may speak for the device in its holder's home (and cuts it off).
    _authorize_holder(session, actor, service.get_device(session, device_id), now, action="update")
    device, secret = service.rotate_secret(session, device_id, now)
    return schemas.SecretRotated(uid=device.uid, secret=secret)


@router.post("/devices/{device_id}/retire", response_model=schemas.DeviceRead, openapi_extra=_PLACEMENT)
def retire_device(
    device_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.DeviceRead:
    _admin(actor)
    now = clock()
    # Retiring ends the holder's binding, and drops any agreed for later: a change to each
    # holder's placement, so each holder decides before anything changes.
    service.get_device(session, device_id)
    for binding in service.bindings_from(session, device_id, now):
        service.authorize_holder(session, actor, binding, what="device", action="update", now=now)
    return _read(session, service.retire_device(session, device_id, now), now)


@router.get(
    "/devices/{device_id}/bindings", response_model=list[schemas.BindingRead], openapi_extra=_PLACEMENTS
)
def list_bindings(
    device_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.BindingRead]:
    _admin(actor)
    bindings = service.bindings_of(session, device_id)
    now = clock()
    for resident_id in sorted({b.resident_id for b in bindings if b.resident_id}):
        policy.authorize(
            session, actor, resident_id, category=DataCategory.identity, what="device_binding", now=now
        )
    for household_id in sorted({b.household_id for b in bindings if b.household_id}):
        service.authorize_household(session, actor, household_id, what="device_binding", now=now)
    return [schemas.BindingRead.model_validate(b) for b in bindings]


@router.post(
    "/devices/{device_id}/bindings",
    response_model=schemas.BindingRead,
    status_code=201,
    openapi_extra=_PLACEMENT,
)
def bind_device(
    device_id: IdPath, body: schemas.BindingCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.BindingRead:
    _admin(actor)
    now = clock()
    if body.resident_id is not None:
        policy.authorize(
            session, actor, body.resident_id, category=DataCategory.identity, what="device_binding",
            action="create", now=now,
        )  # fmt: skip
    if body.household_id is not None:
        service.authorize_household(
            session, actor, body.household_id, what="device_binding", action="create", now=now
        )
    binding = service.bind_device(
        session,
        device_id,
        resident_id=body.resident_id,
        household_id=body.household_id,
        valid_from=body.valid_from or now,
        valid_to=body.valid_to,
    )
    return schemas.BindingRead.model_validate(binding)


@router.post(
    "/devices/{device_id}/bindings/{binding_id}/end",
    response_model=schemas.BindingRead,
    openapi_extra=_PLACEMENT,
)
def end_binding(
    device_id: IdPath,
    binding_id: IdPath,
    body: schemas.BindingEnd,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> schemas.BindingRead:
    _admin(actor)
    now = clock()
    # The holder decides before anything changes.
    held = service.get_binding(session, device_id, binding_id)
    service.authorize_holder(session, actor, held, what="device_binding", action="update", now=now)
    binding = service.end_binding(session, device_id, binding_id, body.valid_to or now)
    return schemas.BindingRead.model_validate(binding)


@router.post(
    "/telemetry", response_model=schemas.TelemetryUploadResult,
    openapi_extra=no_resident_data("devices upload; they authenticate as devices, not people"),
)  # fmt: skip
def upload_telemetry(
    body: schemas.TelemetryUpload,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> schemas.TelemetryUploadResult:
    """Gateways: the same v1 payloads as MQTT, in a batch for one device (docs/telemetry.md)."""
    if credentials is None:
        raise service.DeviceUnauthorized(
            "device.auth", "需要设备认证 (device credentials required: HTTP Basic)"
        )
    device = service.authenticate_device(session, credentials.username, credentials.password)
    rules = getattr(request.app.state, "telemetry_rules", no_rules)
    outcome = service.ingest_uploaded(session, device, body.messages, clock(), rules=rules)
    return schemas.TelemetryUploadResult(
        stored=outcome.stored + outcome.events,
        duplicates=outcome.duplicates,
        statuses=outcome.statuses,
        rejected=[
            schemas.ItemRejected(index=index, code=result.code, message=result.message)
            for index, result in enumerate(outcome.results)
            if isinstance(result, Rejection)
        ],
    )
